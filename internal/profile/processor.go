// Package profile builds the unified profile from the event log: for now, identity resolution into stored
// profiles (docs/identity.md).
package profile

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
)

// Consumer is the name of the processor's offset in the event log.
const Consumer = "profiles"

// Changes is what one batch of the log does to the stored profiles. The store applies them in this order:
// New, Identities and Events inserted with the profile they had when made, then Merges in order (each
// re-points the identities and events of the absorbed profile and deletes it), then LeftOut, then LastSeen.
type Changes struct {
	// From is the consumer offset the batch was read after: the store refuses the batch (a Conflict) if
	// another processor, on another node, moved the offset meanwhile.
	From       int64
	New        []Profile // ID, FirstSeq, FirstSeen and LastSeen
	Identities []Identity
	Events     []Attribution
	Merges     []Merge
	LeftOut    []LeftOut
	LastSeen   map[string]time.Time // the latest event time of each profile the batch touched and kept
}

// Known is what the store holds of the graph around a batch's identifiers.
type Known struct {
	ProfileOf map[identity.Identifier]string   // the profile of each identifier held
	FirstSeq  map[string]int64                 // of those profiles
	Counts    map[string]map[identity.Type]int // identifiers per type of those profiles
}

// Store is what the processor needs of the store.
type Store interface {
	ConsumerOffset(ctx context.Context, name string) (int64, error)
	ReadEvents(ctx context.Context, after int64, limit int) ([]collect.Event, error)
	// KnownIdentities returns the profiles of ids, with the first seq and counts of each.
	KnownIdentities(ctx context.Context, ids []identity.Identifier) (Known, error)
	// ApplyProfiles writes a batch's changes and the consumer's offset in one transaction.
	ApplyProfiles(ctx context.Context, consumer string, upto int64, c Changes) error
}

// Options configure a Processor.
type Options struct {
	Rules     identity.Rules // default identity.DefaultRules()
	BatchSize int            // events read at a time; default 1,000
	Interval  time.Duration  // how long Run waits when the log is read to its end; default 1s
	Logger    *slog.Logger
}

// Processor reads the event log, resolves each event's identifiers into profiles and stores them.
type Processor struct {
	store Store
	opts  Options
}

// NewProcessor makes a processor reading and writing through store.
func NewProcessor(store Store, opts Options) *Processor {
	if opts.Rules == (identity.Rules{}) {
		opts.Rules = identity.DefaultRules()
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Processor{store: store, opts: opts}
}

// ProfileID is the id of the profile made by the event at seq: derived from it, so that replaying the log
// gives the same ids.
func ProfileID(seq int64) string { return fmt.Sprintf("p%016x", seq) }

// Run processes the log until ctx ends, waiting for new events when it has read them all. An error of a
// batch is logged and the batch retried after the interval.
func (p *Processor) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := p.Process(ctx)
		if err != nil && ctx.Err() == nil {
			p.opts.Logger.Error("profile batch failed", "err", err)
		}
		if n > 0 && err == nil {
			t.Reset(0)
		} else {
			t.Reset(p.opts.Interval)
		}
	}
}

// Process resolves one batch of the log after the processor's offset and stores it; it returns how many
// events it read (0 at the end of the log).
func (p *Processor) Process(ctx context.Context) (int, error) {
	after, err := p.store.ConsumerOffset(ctx, Consumer)
	if err != nil {
		return 0, fmt.Errorf("profile: read offset: %w", err)
	}
	events, err := p.store.ReadEvents(ctx, after, p.opts.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("profile: read events after %d: %w", after, err)
	}
	if len(events) == 0 {
		return 0, nil
	}
	ids := make([][]identity.Identifier, len(events))
	var all []identity.Identifier
	seen := map[identity.Identifier]bool{}
	var x identity.Extraction
	for i, e := range events {
		if err := p.opts.Rules.Extract(&x, e.Payload); err != nil {
			continue // not a JSON object: nothing to resolve; the collector validated it, so this is rare
		}
		ids[i] = append([]identity.Identifier(nil), x.Identifiers...)
		for _, id := range x.Identifiers {
			if !seen[id] {
				seen[id] = true
				all = append(all, id)
			}
		}
	}
	var known Known
	if len(all) > 0 {
		if known, err = p.store.KnownIdentities(ctx, all); err != nil {
			return 0, fmt.Errorf("profile: read identities of events %d to %d: %w", events[0].Seq, events[len(events)-1].Seq, err)
		}
	}
	g := newOverlay(known)
	var c Changes
	c.LastSeen = map[string]time.Time{}
	for i, e := range events {
		if len(ids[i]) == 0 {
			continue
		}
		d := p.opts.Rules.Resolve(g, ids[i])
		g.apply(&c, e, d)
	}
	for prof, at := range g.lastSeen {
		if _, gone := g.mergedInto[prof]; !gone {
			c.LastSeen[prof] = at
		}
	}
	upto := events[len(events)-1].Seq
	c.From = after
	if err := p.store.ApplyProfiles(ctx, Consumer, upto, c); err != nil {
		if hearth.KindOf(err) == hearth.Conflict { // another node stored this batch first: read on from there
			return 0, nil
		}
		return 0, fmt.Errorf("profile: store events %d to %d: %w", events[0].Seq, upto, err)
	}
	return len(events), nil
}

// overlay is the graph as the store holds it around a batch, with the batch's decisions so far on top.
type overlay struct {
	profileOf  map[identity.Identifier]string
	firstSeq   map[string]int64
	counts     map[string]map[identity.Type]int
	mergedInto map[string]string // a profile absorbed in this batch, to the one that absorbed it
	lastSeen   map[string]time.Time
}

func newOverlay(k Known) *overlay {
	g := &overlay{profileOf: map[identity.Identifier]string{}, firstSeq: map[string]int64{}, counts: map[string]map[identity.Type]int{},
		mergedInto: map[string]string{}, lastSeen: map[string]time.Time{}}
	for id, p := range k.ProfileOf {
		g.profileOf[id] = p
	}
	for p, s := range k.FirstSeq {
		g.firstSeq[p] = s
	}
	for p, byType := range k.Counts {
		g.counts[p] = map[identity.Type]int{}
		for t, n := range byType {
			g.counts[p][t] = n
		}
	}
	return g
}

func (g *overlay) resolve(p string) string {
	for {
		q, ok := g.mergedInto[p]
		if !ok {
			return p
		}
		p = q
	}
}

func (g *overlay) ProfileOf(id identity.Identifier) string {
	if p := g.profileOf[id]; p != "" {
		return g.resolve(p)
	}
	return ""
}

func (g *overlay) Count(profile string, t identity.Type) int { return g.counts[profile][t] }
func (g *overlay) FirstSeq(profile string) int64             { return g.firstSeq[profile] }

// Separated: unmerges come later; until then no profiles are kept apart.
func (g *overlay) Separated(a, b string) bool { return false }

// apply carries out the decision for event e and records it in c.
func (g *overlay) apply(c *Changes, e collect.Event, d identity.Decision) {
	for _, l := range d.LeftOut {
		reason := "separated"
		if !l.Separated {
			reason = "limit:" + string(l.Limit)
		}
		c.LeftOut = append(c.LeftOut, LeftOut{Seq: e.Seq, Identifier: l.Identifier, Reason: reason})
	}
	p := d.Profile
	if d.New {
		p = ProfileID(e.Seq)
		g.firstSeq[p] = e.Seq
		g.counts[p] = map[identity.Type]int{}
		c.New = append(c.New, Profile{ID: p, FirstSeq: e.Seq, FirstSeen: e.Timestamp, LastSeen: e.Timestamp})
	}
	if p == "" {
		return // every identifier left out
	}
	for _, m := range d.Merged {
		for t, n := range g.counts[m.Profile] {
			g.counts[p][t] += n
		}
		delete(g.counts, m.Profile)
		g.mergedInto[m.Profile] = p
		if at, ok := g.lastSeen[m.Profile]; ok && at.After(g.lastSeen[p]) {
			g.lastSeen[p] = at
		}
		c.Merges = append(c.Merges, Merge{Seq: e.Seq, Into: p, From: m.Profile, Via: m.Via, At: e.Timestamp})
	}
	for _, id := range d.Join {
		g.profileOf[id] = p
		if g.counts[p] == nil {
			g.counts[p] = map[identity.Type]int{}
		}
		g.counts[p][id.Type]++
		c.Identities = append(c.Identities, Identity{Identifier: id, Profile: p, FirstSeq: e.Seq})
	}
	c.Events = append(c.Events, Attribution{Seq: e.Seq, Profile: p})
	if e.Timestamp.After(g.lastSeen[p]) {
		g.lastSeen[p] = e.Timestamp
	}
}
