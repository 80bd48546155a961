// Package demo builds a retail brand's world with known ground truth: its sources, campaigns and
// touchpoints, made through the real services, and months of people's events, appended to the event log as
// the collector would. Each person's true identifiers are written out, so that identity resolution can be
// checked against them: no false merge, no missed deterministic merge.
//
// The events arrive as live traffic would: everyone's interleaved in time order, within parts of whole
// people (Options.OrderEvents), so that the latest activity is at the log's end.
//
// Speed, measured with hearth demo on SQLite (a 2-core virtual machine, writes through the event writer's
// group commit): 10,000 people are about 121,000 events in 2.2 s; 100,000 people are 1.2 million events in
// 14 s (86,000 events/s, a 1.1 GB database); 1.65 million people, 20 million events, about 6 minutes.
package demo

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// SourceMaker makes and lists sources (collect.Sources).
type SourceMaker interface {
	Create(ctx context.Context, name string, kind collect.SourceKind) (collect.Source, error)
	List(ctx context.Context) ([]collect.Source, error)
	EnsureTouchSource(ctx context.Context) (collect.Source, error)
}

// TouchpointMaker makes campaigns and touchpoints and signs their tokens (touchpoint.Service).
type TouchpointMaker interface {
	CreateCampaign(ctx context.Context, c touchpoint.Campaign) (touchpoint.Campaign, error)
	CreateTouchpoint(ctx context.Context, t touchpoint.Touchpoint) (touchpoint.Touchpoint, error)
	Token(t touchpoint.Touchpoint, serial int64, expires time.Time) (string, error)
}

// Services are what the demo writes through.
type Services struct {
	Sources     SourceMaker
	Touchpoints TouchpointMaker
	Resolver    collect.TouchResolver // resolves the touchpoints' tokens as the touch link does
	Log         Log
	// ProfileSettings stores the brand's profile settings, JSON as the admin API takes them, unless the store
	// has settings already; nil leaves them alone.
	ProfileSettings func(ctx context.Context, config []byte) error
}

// Log is the event log as the demo appends to it (store.EventWriter): several batches at once, their
// events stored in the order given, so that the world's events of several sources arrive in time order.
type Log interface {
	AppendBatches(ctx context.Context, bs []*collect.Batch) ([]collect.AppendResult, error)
}

// Options size the world.
type Options struct {
	People int       // default 2,000
	Days   int       // how far back the stories start; default 90
	Seed   uint64    // the same seed gives the same world
	Now    time.Time // the stories end before it
	// Progress, if set, is told after each appended batch.
	Progress func(Summary)
	// Person, if set, is told each person, with their truth and their events, before the events are
	// appended: a check of identity resolution learns from it which person each event is of.
	Person func(Truth, []collect.Event)
	// BatchEvents is how many events are appended at once; default 5,000.
	BatchEvents int
	// OrderEvents is how many events, of whole people, are put in time order together before they are
	// appended; default 50,000 (two parts are in memory, one made while one is appended: about 300 MB).
	// Within each part the log reads as live traffic does, everyone's events interleaved by time.
	OrderEvents int
}

func (o *Options) defaults() {
	if o.People <= 0 {
		o.People = 2000
	}
	if o.Days <= 0 {
		o.Days = 90
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC()
	if o.BatchEvents <= 0 {
		o.BatchEvents = 5000
	}
	if o.OrderEvents <= 0 {
		o.OrderEvents = 50_000
	}
}

// Summary counts what was written.
type Summary struct {
	People      int
	Identified  int // people who registered or signed in
	Events      int
	Touches     int
	Orders      int
	Revenue     int64 // CNY
	Sources     int
	Campaigns   int
	Touchpoints int
	Elapsed     time.Duration
}

// Run builds the world through svc and appends its events; each person's truth goes to truth as JSON.
func Run(ctx context.Context, svc Services, opts Options, truth io.Writer) (Summary, error) {
	opts.defaults()
	start := time.Now()
	env, setup, err := Setup(ctx, svc, opts.Now)
	if err != nil {
		return setup, err
	}
	sum, err := Append(ctx, env, svc.Log, opts, truth)
	sum.Sources, sum.Campaigns, sum.Touchpoints = setup.Sources, setup.Campaigns, setup.Touchpoints
	sum.Elapsed = time.Since(start)
	return sum, err
}

// Append generates the people of an environment and appends their events to log, as Run does once it has
// set the brand up; with FakeEnv, tests and benchmarks fill a log without the services. Each person's truth
// goes to truth as JSON. Events are appended in time order within parts of opts.OrderEvents; the next part
// is made while one is appended.
func Append(ctx context.Context, env *Env, log Log, opts Options, truth io.Writer) (Summary, error) {
	opts.defaults()
	start := time.Now()
	var sum Summary
	tw := newTruthWriter(truth, opts)
	w := newBatcher(ctx, log, opts.BatchEvents)
	stop := make(chan struct{})
	defer close(stop)
	parts := makeParts(opts, env, stop)
	var order []int32
	for p := range parts {
		if p.err != nil {
			w.close()
			return sum, p.err
		}
		from := 0
		for k, t := range p.people {
			if err := tw.person(t); err != nil {
				w.close()
				return sum, err
			}
			if opts.Person != nil {
				opts.Person(t, p.events[from:p.ends[k]])
			}
			from = p.ends[k]
			sum.People++
			if t.Identified {
				sum.Identified++
			}
			sum.Touches += t.touches
			sum.Orders += t.orders
			sum.Revenue += t.revenue
		}
		// In time order; a person's events keep theirs among equal times.
		order = order[:0]
		for i := range p.events {
			order = append(order, int32(i))
		}
		slices.SortFunc(order, func(a, b int32) int { // indexes: the events are large to move
			return cmp.Or(p.events[a].Timestamp.Compare(p.events[b].Timestamp), cmp.Compare(a, b))
		})
		for _, i := range order {
			flushed, err := w.add(p.events[i])
			if err != nil {
				w.close()
				return sum, err
			}
			sum.Events++
			if flushed && opts.Progress != nil {
				sum.Elapsed = time.Since(start)
				opts.Progress(sum)
			}
		}
	}
	if err := w.close(); err != nil {
		return sum, err
	}
	if err := tw.close(); err != nil {
		return sum, err
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// part is people made together, whose events are put in time order together.
type part struct {
	people []Truth
	events []collect.Event // the people's, one after another
	ends   []int           // where each person's events end
	err    error           // the generator's, which ends the parts
}

// makeParts makes the world's people on another goroutine, in parts of about opts.OrderEvents events, one
// part ahead of the reader, until the people are made or stop is closed.
func makeParts(opts Options, env *Env, stop <-chan struct{}) <-chan part {
	parts := make(chan part)
	go func() {
		defer close(parts)
		send := func(p part) bool {
			select {
			case parts <- p:
				return true
			case <-stop:
				return false
			}
		}
		g := NewGenerator(opts, env)
		var p part
		for g.Next() {
			t, evs, err := g.Person()
			if err != nil {
				send(part{err: err})
				return
			}
			p.people = append(p.people, t)
			p.events = append(p.events, evs...)
			p.ends = append(p.ends, len(p.events))
			if len(p.events) >= opts.OrderEvents || !g.Next() {
				if !send(p) {
					return
				}
				p = part{}
			}
		}
	}()
	return parts
}

// batcher appends events in the order it is given them, in the background, so that generation and writing
// overlap: each flush is one call of the log, a batch for each run of one source's events.
type batcher struct {
	max    int
	events []collect.Event
	queue  chan []*collect.Batch
	failed chan struct{} // closed when an append fails; err says why
	done   chan struct{} // closed when the writer has stopped
	err    error
}

func newBatcher(ctx context.Context, log Log, max int) *batcher {
	b := &batcher{max: max, queue: make(chan []*collect.Batch, 2), failed: make(chan struct{}), done: make(chan struct{})}
	queue := b.queue
	go func() {
		defer close(b.done)
		for bs := range queue {
			if _, err := log.AppendBatches(ctx, bs); err != nil {
				b.err = fmt.Errorf("demo: append: %w", err)
				close(b.failed)
				for range queue { // let the producer finish
				}
				return
			}
		}
	}()
	return b
}

func (b *batcher) add(ev collect.Event) (bool, error) {
	b.events = append(b.events, ev)
	if len(b.events) < b.max {
		return false, nil
	}
	return true, b.flush()
}

func (b *batcher) flush() error {
	var bs []*collect.Batch
	for run := b.events; len(run) > 0; {
		n := 1
		for n < len(run) && run[n].SourceID == run[0].SourceID {
			n++
		}
		bs = append(bs, &collect.Batch{SourceID: run[0].SourceID, ReceivedAt: run[n-1].ReceivedAt, Events: run[:n:n]})
		run = run[n:]
	}
	b.events = make([]collect.Event, 0, b.max) // the batches hold the old ones now
	select {
	case b.queue <- bs:
		return nil
	case <-b.failed:
		return b.err
	}
}

// close appends what is left, waits for the writes and says whether they all succeeded.
func (b *batcher) close() error {
	if b.queue != nil {
		if len(b.events) > 0 {
			b.flush()
		}
		close(b.queue)
		b.queue = nil
	}
	<-b.done
	return b.err
}

// Truth is the ground truth of one person: the identifiers that are theirs, normalised as identity
// resolution normalises them (phones in E.164, emails lower-cased).
type Truth struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	UserID        string   `json:"user_id,omitempty"`
	AnonymousIDs  []string `json:"anonymous_ids"`
	Emails        []string `json:"emails,omitempty"`
	Phones        []string `json:"phones,omitempty"`
	WeChatOpenID  string   `json:"wechat_openid,omitempty"`
	WeChatUnionID string   `json:"wechat_unionid,omitempty"`
	DeviceIDs     []string `json:"device_ids,omitempty"` // the app's context.device.id
	// Profiles are the groups of the person's identifiers ("type:value") that their events link: correct
	// resolution makes each group one profile (or part of one of this person's), and never puts two people's
	// identifiers in one profile. A shared device's id is in no group.
	Profiles [][]string `json:"profiles"`
	// Shared are anonymous ids of a device another person used too (a family tablet): resolution keeps
	// such an id with one of them only.
	Shared []string `json:"shared,omitempty"`
	// Junk are values the person's events carried that are no identifiers ("null", "test@test.com").
	Junk       []string `json:"junk,omitempty"`
	Identified bool     `json:"identified"`
	Events     int      `json:"events"`

	touches, orders int
	revenue         int64
}

// TruthFile is the shape of the truth file.
type TruthFile struct {
	Seed   uint64    `json:"seed"`
	Days   int       `json:"days"`
	Now    time.Time `json:"now"`
	People []Truth   `json:"people"`
}

// truthWriter streams a TruthFile, one person a line, so that a million people need no memory.
type truthWriter struct {
	w     io.Writer
	n     int
	err   error
	first bool
}

func newTruthWriter(w io.Writer, o Options) *truthWriter {
	if w == nil {
		w = io.Discard
	}
	t := &truthWriter{w: w, first: true}
	now, _ := json.Marshal(o.Now)
	_, t.err = fmt.Fprintf(w, "{\"seed\":%d,\"days\":%d,\"now\":%s,\"people\":[\n", o.Seed, o.Days, now)
	return t
}

func (t *truthWriter) person(p Truth) error {
	if t.err != nil {
		return t.err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if !t.first {
		_, t.err = t.w.Write([]byte(",\n"))
	}
	t.first = false
	if t.err == nil {
		_, t.err = t.w.Write(b)
	}
	return t.err
}

func (t *truthWriter) close() error {
	if t.err != nil {
		return t.err
	}
	_, t.err = t.w.Write([]byte("\n]}\n"))
	return t.err
}
