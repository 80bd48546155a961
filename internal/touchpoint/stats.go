package touchpoint

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/hearth-cdp/hearth"
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
	// AddTouchCounts adds a pass's counts and records how far each count has read, in one transaction; a
	// hearth.Conflict error, adding nothing, when an offset is no longer where the pass read from (another
	// node counted those touches).
	AddTouchCounts(ctx context.Context, c TouchCounts) error
}

// TouchHour is a touchpoint's touches in one hour.
type TouchHour struct {
	TouchpointID string
	Hour         time.Time // its start, UTC
	Touches      int64     // by people
	BotTouches   int64
}

// TouchCounts is what one pass of the touch counter adds: to each touchpoint's totals (TouchStats) and to
// its hours, each with the seq it read from and the seq it has read through (StatsConsumer's and
// HoursConsumer's offsets before and after).
type TouchCounts struct {
	Stats                   []TouchStats
	StatsFrom, StatsThrough int64
	Hours                   []TouchHour
	HoursFrom, HoursThrough int64
}

// The touch counter's offsets among the event log's consumers: the totals', and the hours', which a store
// made before the hours were counted starts at 0 (the counter reads from the lower of the two and adds to
// each what it has not counted yet).
const (
	StatsConsumer = "touch-stats"
	HoursConsumer = "touch-hours"
)

// statsBatch is how many events one pass of the counter reads.
const statsBatch = 5000

// CountTouches reads the event log from where it last stopped and adds its touches to the touchpoints'
// counts, until it has read everything; it returns how many touch events it read. A touch counts only when its
// token is genuine: a "Touch" event sent through the tracking API with a made-up token counts for nothing.
func (s *Service) CountTouches(ctx context.Context, log EventLog, store StatsStore) (int, error) {
	statsPos, err := log.ConsumerOffset(ctx, StatsConsumer)
	if err != nil {
		return 0, err
	}
	hoursPos, err := log.ConsumerOffset(ctx, HoursConsumer)
	if err != nil {
		return 0, err
	}
	pos := min(statsPos, hoursPos)
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
		type hourKey struct {
			id   string
			hour time.Time
		}
		hours := map[hourKey]*TouchHour{}
		for _, e := range evs {
			id, ok, err := s.touchOf(ctx, e.Token)
			if err != nil {
				return read, err
			}
			if !ok {
				continue
			}
			if e.Seq > statsPos {
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
			if e.Seq > hoursPos {
				k := hourKey{id, e.At.UTC().Truncate(time.Hour)}
				h := hours[k]
				if h == nil {
					h = &TouchHour{TouchpointID: id, Hour: k.hour}
					hours[k] = h
				}
				if e.Bot {
					h.BotTouches++
				} else {
					h.Touches++
				}
			}
		}
		pos = head // every touch up to head is counted, unless the batch was full
		if len(evs) == statsBatch {
			pos = evs[len(evs)-1].Seq
		}
		c := TouchCounts{StatsFrom: statsPos, StatsThrough: max(statsPos, pos), HoursFrom: hoursPos, HoursThrough: max(hoursPos, pos)}
		for _, d := range deltas {
			c.Stats = append(c.Stats, *d)
		}
		for _, h := range hours {
			c.Hours = append(c.Hours, *h)
		}
		// In key order: the store's upserts then walk each table's B-tree from one end to the other.
		slices.SortFunc(c.Stats, func(a, b TouchStats) int { return cmp.Compare(a.TouchpointID, b.TouchpointID) })
		slices.SortFunc(c.Hours, func(a, b TouchHour) int {
			return cmp.Or(cmp.Compare(a.TouchpointID, b.TouchpointID), a.Hour.Compare(b.Hour))
		})
		if err := store.AddTouchCounts(ctx, c); err != nil {
			if hearth.KindOf(err) == hearth.Conflict { // another node counted them: the next pass reads on from there
				return read, nil
			}
			return read, err
		}
		statsPos, hoursPos = c.StatsThrough, c.HoursThrough
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
