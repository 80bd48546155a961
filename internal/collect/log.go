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
