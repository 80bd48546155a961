package store

import (
	"context"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
)

// EventWriter appends to the event log with group commit: concurrent requests' batches are written in one
// transaction, so that many requests share one fsync. Append returns once its batch is durable.
type EventWriter struct {
	db      *DB
	opts    EventWriterOptions
	reqs    chan *appendReq
	done    chan struct{}
	observe func(requests, events int, t WriteTimes)
}

// EventWriterOptions tune the writer.
type EventWriterOptions struct {
	// DedupeWindow: an event whose message id its source already sent within this window is stored once.
	DedupeWindow time.Duration // default 7 days
	// MaxEvents bounds one transaction.
	MaxEvents int // default 20,000
	// Observe, if set, is told about each transaction (for metrics, and the profile processor's rests).
	Observe func(requests, events int, t WriteTimes)
	// SaveEvery is how often, while events arrive, the deduplication index is saved for the next start
	// (SQLite), beside the save when the writer stops: after a crash, the start reads only the events logged
	// since. A failed save leaves the previous file, which still serves.
	SaveEvery time.Duration // default 5 minutes
}

// WriteTimes are how long one transaction of the event log held its writer, without the wait for it, and how
// much of that was its commit: writing the WAL and waiting for the disk to sync it (with a few events a
// commit, most of the time).
type WriteTimes struct {
	Held, Commit time.Duration
}

// appendReq is one caller's batches, written in their order in one transaction.
type appendReq struct {
	batches []logBatch
	events  int
	result  chan appendResult
}

type appendResult struct {
	res []collect.AppendResult // one a batch
	err error
}

// NewEventWriter returns a writer; call Run to start it.
func NewEventWriter(db *DB, opts EventWriterOptions) *EventWriter {
	if opts.DedupeWindow == 0 {
		opts.DedupeWindow = 7 * 24 * time.Hour
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = 20000
	}
	if opts.SaveEvery == 0 {
		opts.SaveEvery = 5 * time.Minute
	}
	return &EventWriter{db: db, opts: opts, reqs: make(chan *appendReq, 4096), done: make(chan struct{}), observe: opts.Observe}
}

var errWriterStopped = &hearth.Error{Kind: hearth.Unavailable, Op: "store.append_events", Msg: "Hearth is shutting down; try again."}

// Append hands a batch to the writer and waits until it is durable.
func (w *EventWriter) Append(ctx context.Context, b *collect.Batch) (collect.AppendResult, error) {
	res, err := w.AppendBatches(ctx, []*collect.Batch{b})
	if err != nil {
		return collect.AppendResult{}, err
	}
	return res[0], nil
}

// AppendBatches hands several batches to the writer, which stores their events in the order given, all in
// one transaction, and waits until they are durable: a result for each batch, or the error of them all.
// Several sources' events keep their order so at the cost of one commit, where an Append each would cost one
// each.
func (w *EventWriter) AppendBatches(ctx context.Context, bs []*collect.Batch) ([]collect.AppendResult, error) {
	req := &appendReq{batches: make([]logBatch, len(bs)), result: make(chan appendResult, 1)}
	for i, b := range bs {
		req.batches[i] = w.db.newLogBatch(b)
		req.events += len(b.Events)
	}
	select {
	case w.reqs <- req:
	case <-w.done:
		return nil, errWriterStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.result:
		return r.res, r.err
	case <-ctx.Done():
		// The batches may still be written; the caller did not get an acknowledgement, so a retry is safe:
		// deduplication stores them once.
		return nil, ctx.Err()
	}
}

// Run writes batches until ctx ends, then finishes what it has taken, saves the deduplication index for the
// next start (also every SaveEvery while events arrive) and returns. Stop the HTTP server first, so that no request is left waiting. It first prepares
// deduplication (from the saved index and the log); appends that arrive meanwhile wait.
func (w *EventWriter) Run(ctx context.Context) error {
	defer close(w.done)
	if err := w.db.LoadDedupe(ctx, w.opts.DedupeWindow); err != nil {
		return err
	}
	var pending []*appendReq
	tick := time.NewTicker(w.opts.SaveEvery)
	defer tick.Stop()
	saved := make(chan struct{}, 1) // a save on another goroutine has finished
	saving, appended := false, false
	for {
		select {
		case <-ctx.Done():
			w.drain()
			if saving {
				<-saved // the final save must not be overwritten by an older one
			}
			return w.db.SaveDedupe(w.opts.DedupeWindow)
		case <-tick.C:
			if !appended || saving {
				continue
			}
			if save := w.db.SaveDedupeLater(w.opts.DedupeWindow); save != nil {
				saving, appended = true, false
				go func() {
					_ = save() // a failed save leaves the previous file, which still serves
					saved <- struct{}{}
				}()
			}
			continue
		case <-saved:
			saving = false
			continue
		case r := <-w.reqs:
			pending = append(pending[:0], r)
			appended = true
		}
		events := pending[0].events
	more:
		for events < w.opts.MaxEvents {
			select {
			case r := <-w.reqs:
				pending = append(pending, r)
				events += r.events
			default:
				break more
			}
		}
		w.write(context.WithoutCancel(ctx), pending, events)
	}
}

// drain writes whatever is queued when the writer stops.
func (w *EventWriter) drain() {
	for {
		select {
		case r := <-w.reqs:
			w.write(context.Background(), []*appendReq{r}, r.events)
		default:
			return
		}
	}
}

func (w *EventWriter) write(ctx context.Context, pending []*appendReq, events int) {
	n := 0
	for _, r := range pending {
		n += len(r.batches)
	}
	batches := make([]logBatch, 0, n)
	for _, r := range pending {
		batches = append(batches, r.batches...)
	}
	since := w.db.clock.Now().Add(-w.opts.DedupeWindow)
	results, held, err := w.db.appendBatches(ctx, batches, since)
	if err != nil && len(pending) > 1 && hearth.KindOf(err) != hearth.Unavailable {
		// One caller's bad batch must not fail its neighbours: write each caller's on their own.
		for _, r := range pending {
			res, _, err := w.db.appendBatches(ctx, r.batches, since)
			r.result <- appendResult{res: res, err: err}
		}
		return
	}
	if w.observe != nil && err == nil {
		w.observe(len(pending), events, held)
	}
	for _, r := range pending {
		if err != nil {
			r.result <- appendResult{err: err}
			continue
		}
		r.result <- appendResult{res: results[:len(r.batches):len(r.batches)]}
		results = results[len(r.batches):]
	}
}
