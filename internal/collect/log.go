package collect

import (
	"context"
	"time"
)

// Batch is what one ingestion request brings to the event log: the valid events, and the refused ones with
// their reasons (kept briefly for the console's debugger).
type Batch struct {
	SourceID   string
	ReceivedAt time.Time
	Events     []Event
	Rejected   []Rejected
}

// Rejected is an event refused at the door.
type Rejected struct {
	Index   int    // position in the request's batch
	Reason  string // what is wrong, for the integrator
	Payload []byte // the event as sent, cut to a few KiB
}

// AppendResult tells what the log did with a batch.
type AppendResult struct {
	Accepted   int // newly stored
	Duplicates int // already stored within the deduplication window: stored once
}

// Log is the durable event log as the ingestion side sees it. Append returns only once the batch is durable.
type Log interface {
	Append(ctx context.Context, b *Batch) (AppendResult, error)
}

// SetAsideEvent is an event that a consumer of the log failed on alone, again and again, and set aside so as
// to read on. It stays in the log.
type SetAsideEvent struct {
	Consumer string
	Seq      int64
	Reason   string // the error, which holds no personal data
	At       time.Time
}

// RejectedEvent is an event refused at the door, as the debugger shows it.
type RejectedEvent struct {
	ID         int64
	SourceID   string
	ReceivedAt time.Time
	Reason     string
	Payload    string // as sent, cut to a few KiB; not necessarily JSON
}

// SourceStats are a source's ingestion counts.
type SourceStats struct {
	Accepted, Duplicates, Rejected int64
	LastEventAt                    *time.Time
}

// EventViewer reads what the console's live event debugger shows.
type EventViewer interface {
	// SourceEvents returns a source's events: with after = 0 its latest, newest first, else those after the
	// cursor, oldest first; and the cursor for the next read.
	SourceEvents(ctx context.Context, sourceID string, after int64, limit int) ([]Event, int64, error)
	// SourceRejections returns a source's refused events after an id (0: the latest), newest first.
	SourceRejections(ctx context.Context, sourceID string, after int64, limit int) ([]RejectedEvent, error)
	AllSourceStats(ctx context.Context) (map[string]SourceStats, error)
}
