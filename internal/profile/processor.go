// Package profile builds the unified profile from the event log: for now, identity resolution into stored
// profiles (docs/identity.md).
package profile

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
)

// Consumer is the name of the processor's offset in the event log.
const Consumer = "profiles"

// Changes is what one batch of the log does to the stored profiles. The store applies them in this order:
// New, Identities and Events inserted with the profile they had when made; then Merges in order (each
// re-points the identities, events and touches of the absorbed profile, drops its traits and stage changes,
// and deletes it); then LeftOut; then, for profiles that are left, Touches, StageChanges, Traits and Updates.
type Changes struct {
	// From is the consumer offset the batch was read after: the store refuses the batch (a Conflict) if
	// another processor, on another node, moved the offset meanwhile.
	From int64
	// Unmerges is how many unmerges had finished when the batch read the graph: the store refuses the batch
	// (a Conflict) if one finished since.
	Unmerges     int64
	New          []Profile // ID, FirstSeq, FirstSeen and LastSeen
	Identities   []Identity
	Events       []Attribution
	Merges       []Merge
	LeftOut      []LeftOut
	Touches      []ProfileTouch       // the batch's touches, summed per profile and touchpoint
	StageChanges []ProfileStageChange // by seq
	Traits       []ProfileTrait       // the traits the batch set, by profile and name
	Updates      map[string]Update    // each profile the batch touched and kept
}

// Through is the seq of the last event c attributes (events come in log order): every event of the profiles
// c touches is at or before it, so their rows' last_seen counts them all once written with it. 0: none.
func (c Changes) Through() int64 {
	if len(c.Events) == 0 {
		return 0
	}
	return c.Events[len(c.Events)-1].Seq
}

// Update is what a batch changed of a profile's own row.
type Update struct {
	LastSeen    time.Time // the latest event time of the batch, for a profile the batch made
	Steps       Steps     // the lifecycle steps met; the stage is the furthest
	ActivatedAt time.Time // zero: not activated
	ConvertedAt time.Time // zero: not converted
	Name        string
	// Row: the steps, activation, conversion or name differ from the stored row.
	Row bool
	// Seen: bring the row's last_seen up to date with the profile's events (see Options.SeenRefresh). Set
	// with Row; most batches only add events to a profile, and leave its row alone.
	Seen bool
}

// DefaultSeenRefresh is Options.SeenRefresh's default.
const DefaultSeenRefresh = 1_000_000

// ProfileTouch is a profile's touches of a touchpoint, to be added to what the store holds.
type ProfileTouch struct {
	Profile string
	Touch
}

// ProfileStageChange is a stage change of a profile.
type ProfileStageChange struct {
	Profile string
	StageChange
}

// ProfileTrait is a trait's new value on a profile.
type ProfileTrait struct {
	Profile string
	Trait
	// SameValue: the profile already holds this value, from an earlier event; only its provenance moves.
	// Re-identifying with the same traits is what most sources do, and the store then leaves the indexes on
	// the value alone.
	SameValue bool
}

// Known is what the store holds of the graph around a batch's identifiers.
type Known struct {
	ProfileOf map[identity.Identifier]string   // the profile of each identifier held
	FirstSeq  map[string]int64                 // of those profiles
	Counts    map[string]map[identity.Type]int // identifiers per type of those profiles
	Facts     map[string]Facts                 // of those profiles
}

// Facts are what the processor derived of a stored profile beyond its identifiers.
type Facts struct {
	Steps       Steps
	ActivatedAt time.Time
	ConvertedAt time.Time
	Traits      []Trait
	SeenThrough int64 // the seq up to which the stored last_seen counts the profile's events
}

// Store is what the processor needs of the store.
type Store interface {
	ConsumerOffset(ctx context.Context, name string) (int64, error)
	ReadEvents(ctx context.Context, after int64, limit int) ([]collect.Event, error)
	// KnownIdentities returns the profiles of ids, with the first seq and counts of each.
	KnownIdentities(ctx context.Context, ids []identity.Identifier) (Known, error)
	// KnownIdentitiesAhead is KnownIdentities read beside a write transaction in progress, which it may not
	// see; safe to call while another goroutine uses the store.
	KnownIdentitiesAhead(ctx context.Context, ids []identity.Identifier) (Known, error)
	// ApplyProfiles writes a batch's changes and the consumer's offset in one transaction.
	ApplyProfiles(ctx context.Context, consumer string, upto int64, c Changes) error
	// SetEventAside moves the consumer's offset from after past the event at seq, recording why; a Conflict
	// when the offset is no longer at after.
	SetEventAside(ctx context.Context, consumer string, after, seq int64, reason string) error
	// Setting returns a stored setting's JSON, or nil when it was never set.
	Setting(ctx context.Context, name string) ([]byte, error)
	UnmergeStore
}

// CatchUpBatch is the batch that reads a log far ahead of the processor fastest. The pages a batch rewrites,
// such as the ends of the event indexes, are written once for more events, and so are the batch's fixed
// costs: in BenchmarkProcessor, 4,000 events read 30% more a second than batches of 1,000. At scale (the
// 20-million-event demo world, from 9 million events on) 8,000 read 11% more than 4,000 and 12,000 a further
// 5%; 16,000 read the whole world no faster than 12,000, and 32,000 slower than 4,000, as a batch's dirty
// pages (about two an event at random places) would then outgrow the state writer's 128 MiB cache. Each holds
// the write transaction longer, which is why hearth serve takes smaller ones while events arrive.
const CatchUpBatch = 12_000

// Options configure a Processor.
type Options struct {
	Rules     identity.Rules // default identity.DefaultRules()
	BatchSize int            // events read at a time; default CatchUpBatch
	Interval  time.Duration  // how long Run waits when the log is read to its end; default 1s
	Logger    *slog.Logger
	// Settings are the mappings, trait rules and lifecycle; nil: DefaultSettings. Checked by the caller.
	// Rules and Settings apply until an admin stores a Config (ConfigSetting): from then on, the stored one,
	// read again every SettingsEvery (default 1s) before a batch.
	Settings      *Settings
	SettingsEvery time.Duration
	// ReadAhead is asked, when a batch comes back full, whether to read the next one beside its transaction
	// (see readAhead), which takes a second core for a while; nil: always. hearth serve says no while
	// ingestion keeps the event writer busy.
	ReadAhead func() bool
	// SeenRefresh is how far the log may move past a profile's seen_through before a batch that touches the
	// profile brings its stored last_seen up to date; default DefaultSeenRefresh. Until then a read of the
	// profile takes the latest time of its events after seen_through from its timeline: writing the row for
	// every returning visitor's event was a page written at a random place of the profiles table, a quarter
	// of what the processor wrote at scale (docs/identity.md). The bound keeps that read short.
	SeenRefresh int64
}

// Processor reads the event log, resolves each event's identifiers into profiles and stores them.
type Processor struct {
	store Store
	opts  Options
	rules identity.Rules
	cfg   *config
	raw   []byte     // the stored Config that rules and cfg come from; nil: the options
	read  time.Time  // when the stored Config was last read
	ahead *aheadRead // the next batch, being read beside the transaction of the last one; nil: none
	iso   isolation
}

// NewProcessor makes a processor reading and writing through store.
func NewProcessor(store Store, opts Options) *Processor {
	if opts.Rules == (identity.Rules{}) {
		opts.Rules = identity.DefaultRules()
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = CatchUpBatch
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SettingsEvery <= 0 {
		opts.SettingsEvery = time.Second
	}
	if opts.SeenRefresh <= 0 {
		opts.SeenRefresh = DefaultSeenRefresh
	}
	settings := DefaultSettings()
	if opts.Settings != nil {
		settings = *opts.Settings
	}
	return &Processor{store: store, opts: opts, rules: opts.Rules, cfg: compileSettings(settings)}
}

// refresh follows the stored Config when it changed. One that does not parse (it was checked when stored,
// so only a newer version's would not) leaves the rules as they were.
func (p *Processor) refresh(ctx context.Context) error {
	// Not before each batch: on SQLite a read after the writer's commits discards the reading connection's
	// page cache, which cost a tenth of the processor's time under load.
	if time.Since(p.read) < p.opts.SettingsEvery {
		return nil
	}
	p.read = time.Now()
	raw, err := p.store.Setting(ctx, ConfigSetting)
	if err != nil {
		return fmt.Errorf("profile: read the settings: %w", err)
	}
	if raw == nil || bytes.Equal(raw, p.raw) {
		return nil
	}
	c, err := ParseConfig(raw)
	if err != nil {
		p.opts.Logger.Error("the stored profile settings are not valid; the processor keeps its rules", "err", err)
		return nil
	}
	p.rules, p.cfg, p.raw = c.Identity, compileSettings(c.Settings), raw
	return nil
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
	return p.ProcessUpTo(ctx, p.opts.BatchSize)
}

// ProcessUpTo is Process with a batch of at most limit events: smaller batches hold the store's writer for
// less time each. A batch that comes back full has the next one read beside its transaction (readAhead).
// Batches that fail at the same place again and again are read one event at a time, and an event that then
// fails alone again and again is set aside (see isolation).
func (p *Processor) ProcessUpTo(ctx context.Context, limit int) (int, error) {
	limit = max(1, limit)
	if p.iso.through > 0 {
		limit = 1
	}
	n, after, upto, err := p.processBatch(ctx, limit)
	if err == nil {
		p.iso.fails = 0
		if upto >= p.iso.through || n == 0 {
			p.iso.through = 0
		}
		return n, nil
	}
	if upto == 0 || ctx.Err() != nil || hearth.KindOf(err) == hearth.Unavailable {
		return 0, err // not a batch's own failure
	}
	if after != p.iso.after {
		p.iso.after, p.iso.fails = after, 0
	}
	if p.iso.fails++; p.iso.fails < isolateAfter {
		return 0, err
	}
	p.iso.fails = 0
	if limit > 1 { // it may hold more events than the one at fault (seqs may skip: not upto - after)
		p.iso.through = upto
		p.opts.Logger.Warn("a batch of the log failed again and again: reading it one event at a time", "from", after+1, "to", upto, "err", err)
		return 0, err
	}
	if err := p.store.SetEventAside(ctx, Consumer, after, upto, err.Error()); err != nil {
		if hearth.KindOf(err) == hearth.Conflict { // another node moved on
			return 0, nil
		}
		return 0, err
	}
	p.dropAhead()
	if upto >= p.iso.through {
		p.iso.through = 0
	}
	p.opts.Logger.Error("the processor failed on an event again and again and set it aside; it reads on from the next", "seq", upto, "err", err)
	return 1, nil
}

// isolation is what ProcessUpTo knows of failing batches. Without it, one event that trips a fault (a bug,
// text the store refuses) would stop every person's profile from then on. Only a batch's own failures
// count: not the store being unavailable, nor another node's batch.
type isolation struct {
	after   int64 // the offset that the latest failures were read after
	fails   int   // how many times running
	through int64 // while the offset is before it, events are read one at a time; 0: not isolating
}

// isolateAfter is how many failures running isolate a batch, then set an event aside.
const isolateAfter = 3

// processBatch resolves and stores one batch of at most limit events. after and upto are the offset it read
// after and the seq of its last event; upto is 0 when it read none. A panic is returned as an error, so that
// isolation finds the event that causes it rather than the server stopping at it on every start.
func (p *Processor) processBatch(ctx context.Context, limit int) (n int, after, upto int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.dropAhead()
			p.opts.Logger.Error("the processor panicked", "panic", r, "stack", string(debug.Stack()))
			n, err = 0, fmt.Errorf("profile: the processor panicked on events %d to %d: %v", after+1, upto, r)
		}
	}()
	if err := p.refresh(ctx); err != nil {
		p.dropAhead()
		return 0, 0, 0, err
	}
	unmerged, err := p.runUnmerges(ctx)
	if err != nil {
		p.dropAhead()
		return 0, 0, 0, err
	}
	after, err = p.store.ConsumerOffset(ctx, Consumer)
	if err != nil {
		p.dropAhead()
		return 0, 0, 0, fmt.Errorf("profile: read offset: %w", err)
	}
	finished, err := p.store.FinishedUnmerges(ctx)
	if err != nil {
		p.dropAhead()
		return 0, after, 0, fmt.Errorf("profile: read unmerges: %w", err)
	}
	b, err := p.takeAhead(ctx, after, limit, unmerged > 0)
	if err != nil {
		return 0, after, 0, err
	}
	if b == nil {
		b = p.readBatch(ctx, p.store.KnownIdentities, p.rules, p.cfg, after, limit)
		if b.err != nil {
			return 0, after, 0, b.err
		}
	}
	events := b.events
	if len(events) == 0 {
		return 0, after, 0, nil
	}
	upto = events[len(events)-1].Seq
	seps, err := p.loadSeparations(ctx, true)
	if err != nil {
		return 0, after, 0, fmt.Errorf("profile: read separations: %w", err)
	}
	g := newOverlay(b.known, p.cfg)
	g.seps = seps
	var c Changes
	for i, e := range events {
		if len(b.ids[i]) == 0 {
			continue
		}
		d := p.rules.Resolve(g, b.ids[i])
		g.apply(&c, e, d)
	}
	g.finish(&c, p.opts.SeenRefresh)
	c.From, c.Unmerges = after, finished
	if len(events) == limit && (p.opts.ReadAhead == nil || p.opts.ReadAhead()) { // more are likely waiting: read them while this batch is stored
		p.readAhead(ctx, b, g, upto, limit)
	}
	if err := p.store.ApplyProfiles(ctx, Consumer, upto, c); err != nil {
		p.dropAhead()
		if hearth.KindOf(err) == hearth.Conflict { // another node stored this batch first: read on from there
			return 0, after, upto, nil
		}
		return 0, after, upto, fmt.Errorf("profile: store events %d to %d: %w", events[0].Seq, upto, err)
	}
	return len(events), after, upto, nil
}

// batch is a batch of the log's events with the identifiers of each and the graph around them.
type batch struct {
	after  int64 // the events follow this seq
	limit  int
	cfg    *config // the settings its identifiers were read under
	events []collect.Event
	ids    [][]identity.Identifier // of each event; none for a bot's
	all    []identity.Identifier   // every identifier once
	known  Known
	err    error
	// A batch read ahead, beside the transaction of the batch before it, may have read what that
	// transaction changed: the graph around the identifiers that batch held and the profiles it touched.
	// They are read again once it has committed (takeAhead).
	prevIDs      map[identity.Identifier]bool
	prevProfiles map[string]bool
}

// aheadRead is a batch being read ahead: b is set when done is closed.
type aheadRead struct {
	done chan struct{}
	b    *batch
}

// readBatch reads up to limit events after seq after, their identifiers under rules, and the graph around
// them through known.
func (p *Processor) readBatch(ctx context.Context, known func(context.Context, []identity.Identifier) (Known, error), rules identity.Rules, cfg *config, after int64, limit int) *batch {
	b := &batch{after: after, limit: limit, cfg: cfg}
	events, err := p.store.ReadEvents(ctx, after, limit)
	if err != nil {
		b.err = fmt.Errorf("profile: read events after %d: %w", after, err)
		return b
	}
	b.events, b.ids = events, make([][]identity.Identifier, len(events))
	seen := map[identity.Identifier]bool{}
	var x identity.Extraction
	for i, e := range events {
		if e.Bot {
			continue // a bot or link scanner is never a person
		}
		if err := rules.Extract(&x, e.Payload); err != nil {
			continue // not a JSON object: nothing to resolve; the collector validated it, so this is rare
		}
		b.ids[i] = append([]identity.Identifier(nil), x.Identifiers...)
		for _, id := range x.Identifiers {
			if !seen[id] {
				seen[id] = true
				b.all = append(b.all, id)
			}
		}
	}
	if len(b.all) > 0 {
		if b.known, err = known(ctx, b.all); err != nil {
			b.err = fmt.Errorf("profile: read identities of events %d to %d: %w", events[0].Seq, events[len(events)-1].Seq, err)
		}
	}
	return b
}

// readAhead starts reading the batch after upto, beside the transaction that stores the batch b (resolved
// into g): the processor's reads of the graph then cost the writer nothing, and on SQLite they use the other
// core. What that transaction may change is noted, to be read again (takeAhead).
func (p *Processor) readAhead(ctx context.Context, b *batch, g *overlay, upto int64, limit int) {
	touched := map[string]bool{} // the profiles the batch read, made or merged away
	for id := range g.firstSeq {
		touched[id] = true
	}
	for id := range g.facts {
		touched[id] = true
	}
	for id := range g.mergedInto {
		touched[id] = true
	}
	ids := make(map[identity.Identifier]bool, len(b.all))
	for _, id := range b.all {
		ids[id] = true
	}
	rules, cfg := p.rules, p.cfg // refresh may replace them before the read is done
	r := &aheadRead{done: make(chan struct{})}
	p.ahead = r
	go func() {
		defer close(r.done)
		r.b = p.readBatch(ctx, p.store.KnownIdentitiesAhead, rules, cfg, upto, limit)
		r.b.prevIDs, r.b.prevProfiles = ids, touched
	}()
}

// takeAhead returns the batch read ahead if it is the one to process now (after seq after, at most limit
// events, under the same settings, with no unmerge since), with what the batch before it changed read
// again; nil if there is none to use.
func (p *Processor) takeAhead(ctx context.Context, after int64, limit int, unmerged bool) (*batch, error) {
	r := p.ahead
	p.ahead = nil
	if r == nil {
		return nil, nil
	}
	<-r.done
	a := r.b
	if a.err != nil || a.after != after || a.limit != limit || a.cfg != p.cfg || unmerged || len(a.events) == 0 {
		return nil, nil // read anew: a failure ahead is met again there, if it lasts
	}
	var again []identity.Identifier
	for _, id := range a.all {
		if a.prevIDs[id] || a.prevProfiles[a.known.ProfileOf[id]] {
			again = append(again, id)
		}
	}
	if len(again) == 0 {
		return a, nil
	}
	for id := range a.prevProfiles {
		delete(a.known.FirstSeq, id)
		delete(a.known.Counts, id)
		delete(a.known.Facts, id)
	}
	for _, id := range again {
		delete(a.known.ProfileOf, id)
	}
	fresh, err := p.store.KnownIdentities(ctx, again)
	if err != nil {
		return nil, fmt.Errorf("profile: read identities of events %d to %d: %w", a.events[0].Seq, a.events[len(a.events)-1].Seq, err)
	}
	maps.Copy(a.known.ProfileOf, fresh.ProfileOf)
	maps.Copy(a.known.FirstSeq, fresh.FirstSeq)
	maps.Copy(a.known.Counts, fresh.Counts)
	maps.Copy(a.known.Facts, fresh.Facts)
	return a, nil
}

// dropAhead waits for a batch being read ahead and forgets it.
func (p *Processor) dropAhead() {
	if p.ahead != nil {
		<-p.ahead.done
		p.ahead = nil
	}
}

// overlay is the graph as the store holds it around a batch, with the batch's decisions so far on top, and
// the facts of the profiles the batch touches.
type overlay struct {
	cfg        *config
	profileOf  map[identity.Identifier]string
	firstSeq   map[string]int64
	counts     map[string]map[identity.Type]int
	mergedInto map[string]string // a profile absorbed in this batch, to the one that absorbed it
	facts      map[string]*facts
	touches    map[touchKey]*Touch
	stages     []ProfileStageChange
	seps       separations
}

// facts are what the batch knows of a profile beyond its identifiers.
type facts struct {
	steps                    Steps
	activatedAt, convertedAt time.Time
	traits                   map[string]Trait
	changed                  map[string]bool // traits the batch set
	storedTraits             []Trait         // as the store holds them
	lastSeen                 time.Time       // the batch's latest event of the profile; zero: not touched yet
	stored                   Update          // the row as the store holds it (a new profile's: its defaults)
	seenThrough              int64           // as the store holds it
}

// sameRow tells whether u and v hold the same row, last_seen aside.
func (u Update) sameRow(v Update) bool {
	return u.Steps == v.Steps && u.ActivatedAt.Equal(v.ActivatedAt) && u.ConvertedAt.Equal(v.ConvertedAt) && u.Name == v.Name
}

// row is the profile's row as f has it, without last_seen.
func (f *facts) row() Update {
	return Update{Steps: f.steps, ActivatedAt: f.activatedAt, ConvertedAt: f.convertedAt, Name: displayName(f.traits)}
}

type touchKey struct{ profile, touchpoint string }

func newOverlay(k Known, cfg *config) *overlay {
	g := &overlay{cfg: cfg, profileOf: maps.Clone(k.ProfileOf), firstSeq: maps.Clone(k.FirstSeq), counts: map[string]map[identity.Type]int{},
		mergedInto: map[string]string{}, facts: map[string]*facts{}, touches: map[touchKey]*Touch{}}
	if g.profileOf == nil {
		g.profileOf, g.firstSeq = map[identity.Identifier]string{}, map[string]int64{}
	}
	for p, byType := range k.Counts {
		g.counts[p] = maps.Clone(byType)
	}
	for p, f := range k.Facts {
		ff := &facts{steps: f.Steps, activatedAt: f.ActivatedAt, convertedAt: f.ConvertedAt, traits: map[string]Trait{}, changed: map[string]bool{},
			storedTraits: f.Traits, seenThrough: f.SeenThrough}
		for _, t := range f.Traits {
			ff.traits[t.Name] = t
		}
		ff.stored = ff.row()
		g.facts[p] = ff
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

// factsOf returns the facts of a profile, empty ones for a profile the store did not report (a new one).
func (g *overlay) factsOf(p string) *facts {
	f := g.facts[p]
	if f == nil {
		f = &facts{traits: map[string]Trait{}, changed: map[string]bool{}}
		g.facts[p] = f
	}
	return f
}

// setTrait keeps t on f if it wins over the value f holds.
func (g *overlay) setTrait(f *facts, t Trait) {
	if old, ok := f.traits[t.Name]; ok && !g.cfg.wins(old, t) {
		return
	}
	f.traits[t.Name] = t
	f.changed[t.Name] = true
}

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
	f := g.factsOf(p)
	for _, m := range d.Merged {
		for t, n := range g.counts[m.Profile] {
			g.counts[p][t] += n
		}
		delete(g.counts, m.Profile)
		g.mergedInto[m.Profile] = p
		absorbed := g.factsOf(m.Profile)
		for _, name := range slices.Sorted(maps.Keys(absorbed.traits)) {
			g.setTrait(f, absorbed.traits[name])
		}
		f.activatedAt = earliest(f.activatedAt, absorbed.activatedAt)
		f.convertedAt = earliest(f.convertedAt, absorbed.convertedAt)
		if absorbed.lastSeen.After(f.lastSeen) {
			f.lastSeen = absorbed.lastSeen
		}
		delete(g.facts, m.Profile)
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
	a := Attribution{Seq: e.Seq, Profile: p, At: e.Timestamp}
	if e.Type == "track" {
		a.Name = e.Name
	}
	c.Events = append(c.Events, a)
	if e.Timestamp.After(f.lastSeen) {
		f.lastSeen = e.Timestamp
	}
	for _, t := range g.cfg.traitsOf(e) {
		g.setTrait(f, t)
	}
	if e.Type == "track" {
		if g.cfg.activation[e.Name] {
			f.activatedAt = earliest(f.activatedAt, e.Timestamp)
		}
		if g.cfg.conversion[e.Name] {
			f.convertedAt = earliest(f.convertedAt, e.Timestamp)
		}
		if e.Name == collect.TouchEventName {
			g.touch(p, e)
		}
	}
	steps := stepsOf(g.counts[p], f.traits, f.activatedAt, f.convertedAt)
	if from, to := f.steps.Stage(), steps.Stage(); from != to {
		g.stages = append(g.stages, ProfileStageChange{Profile: p, StageChange: StageChange{Seq: e.Seq, From: from, To: to, At: e.Timestamp}})
	}
	f.steps = steps
}

// earliest is the earlier of two times, a zero one not counting.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// touchProperties are what a Touch event says of its touchpoint (collect.Touch).
type touchProperties struct {
	Properties struct {
		TouchpointID string `json:"touchpoint_id"`
		Touchpoint   string `json:"touchpoint"`
		Channel      string `json:"channel"`
		CampaignID   string `json:"campaign_id"`
	} `json:"properties"`
}

// touch adds a Touch event to the profile's touches of its touchpoint.
func (g *overlay) touch(p string, e collect.Event) {
	var tp touchProperties
	// json v2: a touch's payload decoded three times faster than with encoding/json (a tenth of the
	// processor's time on a poster's scans). A payload may repeat a name (the last counts), as Hearth writes it.
	if jsonv2.Unmarshal(e.Payload, &tp, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) != nil || tp.Properties.TouchpointID == "" {
		return
	}
	k := touchKey{p, tp.Properties.TouchpointID}
	t := g.touches[k]
	if t == nil {
		t = &Touch{TouchpointID: k.touchpoint, FirstSeq: e.Seq, First: e.Timestamp, LastSeq: e.Seq, Last: e.Timestamp}
		g.touches[k] = t
	}
	t.Touchpoint, t.Channel, t.CampaignID = tp.Properties.Touchpoint, tp.Properties.Channel, tp.Properties.CampaignID
	t.Count++
	if e.Timestamp.Before(t.First) {
		t.First, t.FirstSeq = e.Timestamp, e.Seq
	}
	if !e.Timestamp.Before(t.Last) {
		t.Last, t.LastSeq = e.Timestamp, e.Seq
	}
}

// finish records in c what the batch did to the profiles that are left: touches summed per the profile
// they ended in, stage changes, the traits set, and each profile's row, with its last_seen brought up to date
// when the row changes or the log has moved seenRefresh events past it.
func (g *overlay) finish(c *Changes, seenRefresh int64) {
	summed := map[touchKey]*Touch{}
	for _, k := range slices.SortedFunc(maps.Keys(g.touches), func(a, b touchKey) int {
		return cmp.Or(cmp.Compare(a.profile, b.profile), cmp.Compare(a.touchpoint, b.touchpoint))
	}) {
		t := g.touches[k]
		final := touchKey{g.resolve(k.profile), k.touchpoint}
		s := summed[final]
		if s == nil {
			c.Touches = append(c.Touches, ProfileTouch{Profile: final.profile, Touch: *t})
			summed[final] = &c.Touches[len(c.Touches)-1].Touch
			continue
		}
		s.Count += t.Count
		if t.First.Before(s.First) {
			s.First, s.FirstSeq = t.First, t.FirstSeq
		}
		if !t.Last.Before(s.Last) {
			s.Last, s.LastSeq, s.Touchpoint, s.Channel, s.CampaignID = t.Last, t.LastSeq, t.Touchpoint, t.Channel, t.CampaignID
		}
	}
	for _, s := range g.stages {
		if _, gone := g.mergedInto[s.Profile]; !gone {
			c.StageChanges = append(c.StageChanges, s)
		}
	}
	c.Updates = map[string]Update{}
	through := c.Through()
	for _, p := range slices.Sorted(maps.Keys(g.facts)) {
		f := g.facts[p]
		if f.lastSeen.IsZero() {
			continue // read from the store but not touched: only a profile the batch merged away is
		}
		for _, name := range slices.Sorted(maps.Keys(f.changed)) {
			t := f.traits[name]
			i := slices.IndexFunc(f.storedTraits, func(s Trait) bool { return s.Name == name })
			c.Traits = append(c.Traits, ProfileTrait{Profile: p, Trait: t, SameValue: i >= 0 && bytes.Equal(f.storedTraits[i].Value, t.Value)})
		}
		u := f.row()
		u.Row = !u.sameRow(f.stored)
		u.Seen = u.Row || through-f.seenThrough >= seenRefresh
		u.LastSeen = f.lastSeen
		c.Updates[p] = u
	}
}
