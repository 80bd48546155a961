package segment

import (
	"context"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// restrictLimit is the largest set of profiles a condition's query names: beyond it, querying all profiles
// by the condition's own index and intersecting in memory is cheaper than looking each profile up.
const restrictLimit = 4000

// evaluation finds the profiles a rule matches, among a set or all, in one view of the store. Sets combine
// as the rule does: an and narrows each condition's query to the profiles the earlier ones left, a not is
// taken from the profiles at hand rather than from everyone when it can be.
type evaluation struct {
	ctx context.Context
	r   Reader
	now time.Time
	all *Set // every profile, read once when needed
}

func newEvaluation(ctx context.Context, r Reader, now time.Time) *evaluation {
	return &evaluation{ctx: ctx, r: r, now: now.UTC()}
}

// match returns the profiles among within (nil: all) that n matches.
func (v *evaluation) match(n Rule, within *Set) (*Set, error) {
	switch {
	case n.And != nil:
		var positive, negative []Rule
		for _, c := range n.And {
			if p, ok := positiveOf(c); ok {
				negative = append(negative, p)
			} else {
				positive = append(positive, c)
			}
		}
		result := within
		for _, c := range positive {
			s, err := v.match(c, result)
			if err != nil {
				return nil, err
			}
			result = s
			if result.IsEmpty() {
				return result, nil
			}
		}
		if result == nil {
			all, err := v.universe(nil)
			if err != nil {
				return nil, err
			}
			result = all.Clone()
		}
		for _, c := range negative {
			s, err := v.match(c, result)
			if err != nil {
				return nil, err
			}
			result = roaring64.AndNot(result, s)
		}
		return result, nil
	case n.Or != nil:
		result := roaring64.New()
		for _, c := range n.Or {
			s, err := v.match(c, within)
			if err != nil {
				return nil, err
			}
			result.Or(s)
		}
		return result, nil
	}
	if p, ok := positiveOf(n); ok {
		all, err := v.universe(within)
		if err != nil {
			return nil, err
		}
		s, err := v.match(p, within)
		if err != nil {
			return nil, err
		}
		return roaring64.AndNot(all, s), nil
	}
	query := within
	if within != nil && within.GetCardinality() > restrictLimit {
		query = nil
	}
	s, err := v.leaf(n, query)
	if err != nil {
		return nil, err
	}
	if within != nil {
		s = roaring64.And(s, within)
	}
	return s, nil
}

// positiveOf returns, for a rule that matches the people who lack something (a not, or an event count that
// zero passes), the rule for those who have it.
func positiveOf(n Rule) (Rule, bool) {
	if n.Not != nil {
		return *n.Not, true
	}
	if e := n.Event; e != nil && e.Count != nil {
		switch c := *e.Count; {
		case c.Op == "at_most":
			p := *e
			p.Count = &Count{Op: "at_least", Value: c.Value + 1}
			return Rule{Event: &p}, true
		case c.Op == "exactly" && c.Value == 0:
			p := *e
			p.Count = nil
			return Rule{Event: &p}, true
		}
	}
	return Rule{}, false
}

// universe is within, or every profile.
func (v *evaluation) universe(within *Set) (*Set, error) {
	if within != nil {
		return within, nil
	}
	if v.all == nil {
		all, err := v.r.Profiles(v.ctx, nil)
		if err != nil {
			return nil, err
		}
		v.all = all
	}
	return v.all, nil
}

// leaf asks the store for the profiles a condition holds for.
func (v *evaluation) leaf(n Rule, within *Set) (*Set, error) {
	ctx := v.ctx
	switch {
	case n.Trait != nil:
		return v.r.Traits(ctx, *n.Trait, v.now.Format(time.DateOnly), within)
	case n.Event != nil:
		e := n.Event
		q := EventQuery{Name: e.Name, Where: e.Where, Min: 1}
		if c := e.Count; c != nil {
			switch c.Op {
			case "at_least":
				if c.Value == 0 {
					return v.universe(within) // everyone performed it at least no times
				}
				q.Min = c.Value
			case "exactly":
				q.Min, q.Max = c.Value, c.Value // 0 was turned into a not by positiveOf
			}
		}
		switch {
		case e.WithinLastDays > 0:
			q.From = v.now.AddDate(0, 0, -e.WithinLastDays)
		case e.Between != nil:
			q.From, q.To = dayStart(e.Between.From), dayStart(e.Between.To).AddDate(0, 0, 1)
		}
		return v.r.Events(ctx, q, within)
	case n.Touched != nil:
		var since time.Time
		if d := n.Touched.WithinLastDays; d > 0 {
			since = v.now.AddDate(0, 0, -d)
		}
		return v.r.Touched(ctx, *n.Touched, since, within)
	case n.Stage != nil:
		// The combinations of steps that match: profiles keep theirs, indexed.
		var match []profile.Steps
		for b := range 1 << (len(Stages) - 1) {
			if s := profile.StepsOfBits(b); n.Stage.holds(s) {
				match = append(match, s)
			}
		}
		return v.r.Steps(ctx, match, within)
	case n.Reachable != nil:
		return v.r.Reachable(ctx, n.Reachable.Channel, within)
	case n.Segment != nil:
		return v.r.Members(ctx, n.Segment.ID, within)
	case n.list != "":
		return v.r.Listed(ctx, n.list, within)
	}
	return roaring64.New(), nil
}

// leaving returns the profiles whose events, touches or date traits left one of a rule's time windows, or
// whose date trait came into one, between from and to: their membership may change with no new event.
func leaving(ctx context.Context, st Store, r Rule, from, to time.Time) (*Set, error) {
	result := roaring64.New()
	var err error
	r.walk(func(n Rule) {
		if err != nil {
			return
		}
		var s *Set
		switch {
		case n.Event != nil && n.Event.WithinLastDays > 0:
			d := n.Event.WithinLastDays
			s, err = st.EventsLeaving(ctx, n.Event.Name, from.AddDate(0, 0, -d), to.AddDate(0, 0, -d))
		case n.Touched != nil && n.Touched.WithinLastDays > 0:
			d := n.Touched.WithinLastDays
			s, err = st.TouchesLeaving(ctx, *n.Touched, from.AddDate(0, 0, -d), to.AddDate(0, 0, -d))
		case n.Trait != nil && n.Trait.Op == WithinLastDays:
			d := n.Trait.Days
			day := func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
			// Dates from today back d days are in: the oldest leaves as days pass, and a future date comes in.
			s, err = st.TraitDays(ctx, n.Trait.Name, day(from.AddDate(0, 0, -d)), day(to.AddDate(0, 0, -d)))
			if err == nil {
				var in *Set
				in, err = st.TraitDays(ctx, n.Trait.Name, day(from.AddDate(0, 0, 1)), day(to.AddDate(0, 0, 1)))
				if err == nil {
					s.Or(in)
				}
			}
		}
		if s != nil {
			result.Or(s)
		}
	})
	return result, err
}
