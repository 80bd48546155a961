package touchpoint

import (
	"context"
	"time"
)

// TouchRecord is what counting needs of a touch event in the log.
type TouchRecord struct {
	Seq   int64
	Token string // properties.token
	Bot   bool
	At    time.Time
}

// EventLog is what counting touches reads: the event log's touch events, from an offset.
type EventLog interface {
	LogHead(ctx context.Context) (int64, error)
	ReadTouches(ctx context.Context, after, upto int64, limit int) ([]TouchRecord, error)
	ConsumerOffset(ctx context.Context, name string) (int64, error)
}

// StatsStore keeps the counts.
type StatsStore interface {
	AddTouchStats(ctx context.Context, consumer string, upto int64, deltas []TouchStats) error
}

// statsConsumer names the touch counter among the event log's consumers.
const statsConsumer = "touch-stats"

// statsBatch is how many events one pass of the counter reads.
const statsBatch = 5000

// CountTouches reads the event log from where it last stopped and adds its touches to the touchpoints'
// counts, until it has read everything; it returns how many touch events it read. A touch counts only when its
// token is genuine: a "Touch" event sent through the tracking API with a made-up token counts for nothing.
func (s *Service) CountTouches(ctx context.Context, log EventLog, store StatsStore) (int, error) {
	pos, err := log.ConsumerOffset(ctx, statsConsumer)
	if err != nil {
		return 0, err
	}
	head, err := log.LogHead(ctx)
	if err != nil || head <= pos {
		return 0, err
	}
	read := 0
	for {
		evs, err := log.ReadTouches(ctx, pos, head, statsBatch)
		if err != nil {
			return read, err
		}
		deltas := map[string]*TouchStats{}
		for _, e := range evs {
			id, ok, err := s.touchOf(ctx, e.Token)
			if err != nil {
				return read, err
			}
			if !ok {
				continue
			}
			d := deltas[id]
			if d == nil {
				d = &TouchStats{TouchpointID: id}
				deltas[id] = d
			}
			if e.Bot {
				d.BotTouches++
			} else {
				d.Touches++
			}
			if at := e.At; d.LastTouchAt == nil || at.After(*d.LastTouchAt) {
				d.LastTouchAt = &at
			}
		}
		list := make([]TouchStats, 0, len(deltas))
		for _, d := range deltas {
			list = append(list, *d)
		}
		pos = head // every touch up to head is counted, unless the batch was full
		if len(evs) == statsBatch {
			pos = evs[len(evs)-1].Seq
		}
		if err := store.AddTouchStats(ctx, statsConsumer, pos, list); err != nil {
			return read, err
		}
		read += len(evs)
		if pos == head {
			return read, nil
		}
	}
}

// touchOf returns the touchpoint a touch's token genuinely names.
func (s *Service) touchOf(ctx context.Context, token string) (string, bool, error) {
	tok, err := s.keys.Verify(token)
	if err != nil { // the counter runs every second: it counts a touch long before its key could retire
		return "", false, nil
	}
	entry, err := s.entry(ctx, tok.Number)
	if err != nil || entry.err != nil {
		return "", false, err
	}
	return entry.touchpoint.ID, true, nil
}
