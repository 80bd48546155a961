package segment

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// Options configure an Engine.
type Options struct {
	Interval time.Duration // how long Run waits when it has nothing to do and is not woken; default 1s
	Span     int64         // events of the log one step covers at most; default 20,000
	Chunk    int           // entries and leavings written per transaction of a full evaluation; default 5,000
	// Gap is the least time between two steps that follow the log: a step's queries cost much the same for
	// a few events as for many, so the engine lets them gather. Default 200ms.
	Gap    time.Duration
	Logger *slog.Logger
}

// Engine keeps segment memberships current. One goroutine runs it: a step carries out the full evaluations
// that are due, or follows the profile processor through the log and re-evaluates the people its batches
// touched and the people leaving a time window.
type Engine struct {
	store Store
	clock hearth.Clock
	opts  Options
	wake  chan struct{}

	mu      sync.Mutex
	failing map[string]*failure // by segment id: full evaluations failing
}

// failure is what the engine knows of a segment whose full evaluation fails. Without it, one segment whose
// evaluation trips a fault again and again would keep every other segment from following the log.
type failure struct {
	version int64 // of the segment's rule: a new one is tried at once
	runs    int   // failures running
	err     error
	retryAt time.Time // from failAfter failures on, the segment waits until then
}

// failAfter is how many failures running make a segment wait, first failWait, twice as long after each
// further failure, at most failWaitMax; the other segments are kept current meanwhile.
const (
	failAfter   = 3
	failWait    = time.Minute
	failWaitMax = time.Hour
)

// EvaluationFailure tells of a segment whose full evaluation failed failAfter times running or more: the
// latest error, and when the engine tries again.
type EvaluationFailure struct {
	Message  string
	Failures int
	RetryAt  time.Time
}

// Failure returns the failure of a segment's full evaluation, if it failed again and again.
func (e *Engine) Failure(id string) (EvaluationFailure, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.failing[id]
	if f == nil || f.runs < failAfter {
		return EvaluationFailure{}, false
	}
	return EvaluationFailure{Message: f.err.Error(), Failures: f.runs, RetryAt: f.retryAt}, true
}

// waiting reports whether a segment's evaluation waits after failing again and again.
func (e *Engine) waiting(s Segment, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.failing[s.ID]
	return f != nil && f.version == s.Version && now.Before(f.retryAt)
}

// evaluated records how a segment's full evaluation went.
func (e *Engine) evaluated(s Segment, err error, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		delete(e.failing, s.ID)
		return
	}
	f := e.failing[s.ID]
	if f == nil || f.version != s.Version {
		f = &failure{version: s.Version}
		e.failing[s.ID] = f
	}
	f.runs++
	f.err = err
	if f.runs >= failAfter {
		wait := min(failWaitMax, failWait<<min(f.runs-failAfter, 10))
		f.retryAt = now.Add(wait)
		e.opts.Logger.Error("a segment's evaluation failed again and again: the other segments are kept current, and it is tried again later",
			"segment", s.ID, "failures", f.runs, "retry_in", wait, "err", err)
	}
}

// NewEngine makes an engine reading and writing through store.
func NewEngine(store Store, clock hearth.Clock, opts Options) *Engine {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Span <= 0 {
		opts.Span = 20_000
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 5000
	}
	if opts.Gap <= 0 {
		opts.Gap = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{store: store, clock: clock, opts: opts, wake: make(chan struct{}, 1), failing: map[string]*failure{}}
}

// Wake asks Run to step now: the profile processor stored a batch, or a segment changed.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run steps until ctx ends, waiting to be woken (or for the interval) when a step finds nothing to do. An
// error is logged and the step retried after the interval.
func (e *Engine) Run(ctx context.Context) {
	for {
		start := time.Now()
		busy, err := e.Step(ctx)
		if err != nil && ctx.Err() == nil {
			e.opts.Logger.Error("segment step failed", "err", err)
		}
		if !busy || err != nil {
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
			case <-time.After(e.opts.Interval):
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.opts.Gap - time.Since(start)):
		}
	}
}

// Step carries out the full evaluation of one segment that needs it, or else one step of keeping every
// segment current; it reports whether it did work that may have left more to do.
func (e *Engine) Step(ctx context.Context) (bool, error) {
	segs, err := e.store.Segments(ctx)
	if err != nil {
		return false, err
	}
	order, err := dependencyOrder(segs)
	if err != nil {
		return false, err
	}
	now := e.clock.Now()
	e.forgetDeleted(segs)
	for i, s := range order {
		if !s.Evaluating() || e.waiting(s, now) {
			continue
		}
		// The segments that use this one are evaluated after it: its members change all at once.
		done := map[string]bool{}
		for _, d := range order[i:] {
			if d.ID == s.ID || slices.ContainsFunc(d.rule().References(), func(ref string) bool { return done[ref] }) && !e.waiting(d, now) {
				err := e.evaluate(ctx, d)
				if ctx.Err() == nil && hearth.KindOf(err) != hearth.Unavailable { // an outage is nobody's fault
					e.evaluated(d, err, now)
				}
				if err != nil {
					return false, err
				}
				done[d.ID] = true
			}
		}
		return true, nil
	}
	// What is left to evaluate waits after failing: the others follow the log meanwhile, and it is evaluated
	// in full when it can be.
	return e.follow(ctx, slices.DeleteFunc(order, Segment.Evaluating))
}

// forgetDeleted drops what the engine knows of segments that are gone.
func (e *Engine) forgetDeleted(segs []Segment) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range e.failing {
		if !slices.ContainsFunc(segs, func(s Segment) bool { return s.ID == id }) {
			delete(e.failing, id)
		}
	}
}

// dependencyOrder sorts segments so that each comes after the segments its rule uses. A cycle cannot be
// stored (the API refuses it); one found anyway is an error rather than a loop.
func dependencyOrder(segs []Segment) ([]Segment, error) {
	byID := map[string]Segment{}
	for _, s := range segs {
		byID[s.ID] = s
	}
	state := map[string]int{} // 1: being visited, 2: done
	var order []Segment
	var visit func(s Segment) error
	visit = func(s Segment) error {
		switch state[s.ID] {
		case 1:
			return hearth.Errorf(hearth.Internal, "segment.order", "Segment %s uses itself through other segments.", s.ID)
		case 2:
			return nil
		}
		state[s.ID] = 1
		for _, ref := range s.rule().References() {
			if r, ok := byID[ref]; ok {
				if err := visit(r); err != nil {
					return err
				}
			}
		}
		state[s.ID] = 2
		order = append(order, s)
		return nil
	}
	for _, s := range segs {
		if err := visit(s); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// evaluate finds every member of a segment anew, records who entered and who left, a chunk per transaction,
// and marks the segment evaluated.
func (e *Engine) evaluate(ctx context.Context, s Segment) error {
	offset, err := e.store.ConsumerOffset(ctx, Consumer)
	if err != nil {
		return err
	}
	// Read before the view: the view holds the profiles of the events up to it at least.
	processed, err := e.store.ConsumerOffset(ctx, profile.Consumer)
	if err != nil {
		return err
	}
	now := e.clock.Now().UTC()
	var matched, current *Set
	err = e.store.View(ctx, func(r Reader) error {
		v := newEvaluation(ctx, r, now)
		if matched, err = v.match(s.rule(), nil); err != nil {
			return err
		}
		current, err = r.Members(ctx, s.ID, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("segment: evaluate %s: %w", s.ID, err)
	}
	entered, left := ProfileIDs(roaring64.AndNot(matched, current)), ProfileIDs(roaring64.AndNot(current, matched))
	for {
		n := min(e.opts.Chunk, len(entered))
		m := min(e.opts.Chunk-n, len(left))
		step := Step{From: offset, Upto: offset, At: now, Deltas: []Delta{{Segment: s.ID, Entered: entered[:n], Left: left[:m]}}}
		entered, left = entered[n:], left[m:]
		last := len(entered) == 0 && len(left) == 0
		if last {
			step.Evaluated = map[string]Evaluated{s.ID: {Version: s.Version, Offset: processed}}
			step.Checked = map[string]time.Time{s.ID: now}
		}
		if err := e.store.ApplyStep(ctx, step); err != nil {
			return fmt.Errorf("segment: store the evaluation of %s: %w", s.ID, err)
		}
		if last {
			e.opts.Logger.Info("segment evaluated", "segment", s.ID, "size", matched.GetCardinality(), "took", time.Since(now).Round(time.Millisecond))
			return nil
		}
	}
}

// follow re-evaluates, for every segment, the people whose profiles the log's next events changed, the
// people an unmerge split, and the people leaving one of the segment's time windows. A segment that uses
// another also re-evaluates the people whose membership of that one changed.
func (e *Engine) follow(ctx context.Context, order []Segment) (bool, error) {
	after, err := e.store.ConsumerOffset(ctx, Consumer)
	if err != nil {
		return false, err
	}
	upto, err := e.store.ConsumerOffset(ctx, profile.Consumer)
	if err != nil {
		return false, err
	}
	if len(order) == 0 { // nothing to keep current: a segment made later is evaluated in full
		if upto <= after {
			return false, nil
		}
		return false, e.store.ApplyStep(ctx, Step{From: after, Upto: upto, At: e.clock.Now().UTC()})
	}
	// Events that every segment's last full evaluation saw need no following.
	from := after
	for i, s := range order {
		if i == 0 || s.EvaluatedOffset < from {
			from = s.EvaluatedOffset
		}
	}
	from = max(from, after)
	upto = min(max(upto, from), from+e.opts.Span)
	lastUnmerge, err := e.store.ConsumerOffset(ctx, UnmergesConsumer)
	if err != nil {
		return false, err
	}
	touched, gone := roaring64.New(), []string(nil)
	if upto > from {
		if touched, gone, err = e.store.Changed(ctx, from, upto); err != nil {
			return false, err
		}
	}
	unmerged, split, err := e.store.Unmerges(ctx, lastUnmerge)
	if err != nil {
		return false, err
	}
	touched.Or(split)
	now := e.clock.Now().UTC()
	step := Step{From: after, Upto: upto, Unmerges: unmerged, Gone: gone, Checked: map[string]time.Time{}, At: now}
	candidates := map[string]*Set{}
	recheck := false // a window was last checked long enough ago to write that it was checked again
	for _, s := range order {
		c := touched.Clone()
		if r := s.rule(); r.windowed() {
			since := s.WindowsChecked
			if since.IsZero() || since.After(now) {
				since = now
			}
			l, err := leaving(ctx, e.store, r, since, now)
			if err != nil {
				return false, fmt.Errorf("segment: people leaving the windows of %s: %w", s.ID, err)
			}
			c.Or(l)
			step.Checked[s.ID] = now
			recheck = recheck || now.Sub(since) >= time.Minute
		}
		candidates[s.ID] = c
	}
	// The people to re-evaluate are read once for every segment, and each rule is decided in memory.
	var needs Needs
	everyone := roaring64.New()
	for _, s := range order {
		needs.add(s.rule())
		everyone.Or(candidates[s.ID])
	}
	var facts map[uint64]*Facts
	if !everyone.IsEmpty() {
		if err := e.store.View(ctx, func(r Reader) error {
			facts, err = r.Facts(ctx, everyone, needs)
			return err
		}); err != nil {
			return false, fmt.Errorf("segment: read the facts of %d profiles: %w", everyone.GetCardinality(), err)
		}
	}
	changed := map[string]*Set{} // per segment, the people who entered or left in this step
	for _, s := range order {
		c := candidates[s.ID]
		for _, ref := range s.rule().References() {
			if ch := changed[ref]; ch != nil {
				c.Or(ch)
			}
		}
		rule := s.rule()
		var d Delta
		moved := roaring64.New()
		for n := range roaring64.Values(c) {
			f := facts[n]
			if f == nil {
				continue // merged away: its memberships end with Gone
			}
			if in := holds(rule, f, now); in != f.Members[s.ID] {
				if in {
					d.Entered = append(d.Entered, profile.ProfileID(int64(n)))
					f.Members[s.ID] = true // the segments that use this one read it so
				} else {
					d.Left = append(d.Left, profile.ProfileID(int64(n)))
					delete(f.Members, s.ID)
				}
				moved.Add(n)
			}
		}
		if !moved.IsEmpty() {
			d.Segment = s.ID
			changed[s.ID] = moved
			step.Deltas = append(step.Deltas, d)
		}
	}
	if upto == after && unmerged == lastUnmerge && len(step.Deltas) == 0 && !recheck {
		return false, nil // nothing to write: an idle server does not commit every second
	}
	step.At = e.clock.Now().UTC() // entering and leaving are recorded as of the commit that shows them
	if err := e.store.ApplyStep(ctx, step); err != nil {
		if hearth.KindOf(err) == hearth.Conflict { // another engine stored this step first
			return true, nil
		}
		return false, err
	}
	return upto > after, nil
}

// Viewer gives consistent views of the store.
type Viewer interface {
	View(ctx context.Context, fn func(Reader) error) error
}

// Match returns the profiles among within (nil: all) that a rule matches now, in one view of the store.
func Match(ctx context.Context, st Viewer, rule Rule, now time.Time, within *Set) (*Set, error) {
	var s *Set
	err := st.View(ctx, func(r Reader) error {
		var err error
		s, err = newEvaluation(ctx, r, now).match(rule, within)
		return err
	})
	return s, err
}
