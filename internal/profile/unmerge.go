package profile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
)

// Unmerge is an admin's request to split a profile where one merge joined it, and its outcome.
type Unmerge struct {
	ID          int64
	Profile     string // the profile split
	Merge       Merge  // the merge undone
	RequestedBy string
	RequestedAt time.Time
	DoneAt      time.Time // zero while pending
	Profiles    []string  // the profiles it left, when done
	Error       string    // why it could not be done, when it failed
}

// UnmergeStore is what carrying out unmerges needs of the store.
type UnmergeStore interface {
	PendingUnmerges(ctx context.Context) ([]Unmerge, error)
	FinishedUnmerges(ctx context.Context) (int64, error)
	// Separations returns the pairs of profiles that unmerges keep apart.
	Separations(ctx context.Context) ([][2]string, error)
	// ProfileNow returns the profile id is now: itself, or the profile it was merged into.
	ProfileNow(ctx context.Context, id string) (string, error)
	AllProfileEvents(ctx context.Context, id string) ([]collect.Event, error)
	// ApplyUnmerge replaces what is derived of u.Profile and of the events seqs with c, records the
	// separation and the outcome, in one transaction; a Conflict if the graph changed since c.From and
	// c.Unmerges.
	ApplyUnmerge(ctx context.Context, consumer string, u Unmerge, seqs []int64, c Changes) error
	FailUnmerge(ctx context.Context, id int64, why string) error
}

// separations are the pairs of profiles kept apart, with the profile that each separated one is now part of,
// so that a separation holds for the profiles that absorb either side.
type separations struct {
	pairs map[[2]string]bool
	now   map[string]string // each separated profile → the profile it is now, as the batch began
}

func pair(a, b string) [2]string { return [2]string{min(a, b), max(a, b)} }

// Separated reports whether an unmerge keeps a and b apart: whether a profile separated from another is part
// of a (it, or merged into it before or in this batch) and the other part of b.
func (g *overlay) Separated(a, b string) bool {
	if len(g.seps.pairs) == 0 {
		return false
	}
	var inA, inB []string
	for _, s := range slices.Sorted(maps.Keys(g.seps.now)) {
		switch g.resolve(g.seps.now[s]) {
		case a:
			inA = append(inA, s)
		case b:
			inB = append(inB, s)
		}
	}
	for _, x := range inA {
		for _, y := range inB {
			if g.seps.pairs[pair(x, y)] {
				return true
			}
		}
	}
	return false
}

// runUnmerges carries out the pending unmerges, oldest first. One that cannot be done is recorded as failed
// with the reason; a Conflict (the graph moved meanwhile) leaves it pending for the next round. It returns
// how many it tried: any of them may have changed the graph.
func (p *Processor) runUnmerges(ctx context.Context) (int, error) {
	pending, err := p.store.PendingUnmerges(ctx)
	if err != nil {
		return 0, fmt.Errorf("profile: read pending unmerges: %w", err)
	}
	for i, u := range pending {
		err := p.unmerge(ctx, u)
		switch {
		case err == nil:
			p.opts.Logger.Info("profile unmerged", "unmerge", u.ID, "profile", u.Profile)
		case hearth.KindOf(err) == hearth.Conflict:
			return i + 1, nil
		case ctx.Err() != nil:
			return i + 1, ctx.Err()
		default:
			p.opts.Logger.Error("unmerge failed", "unmerge", u.ID, "err", err)
			why := hearth.MessageOf(err)
			var he *hearth.Error
			if !errors.As(err, &he) {
				why = "The unmerge failed: " + err.Error()
			}
			if err := p.store.FailUnmerge(ctx, u.ID, why); err != nil {
				return i + 1, fmt.Errorf("profile: record a failed unmerge: %w", err)
			}
		}
	}
	return len(pending), nil
}

// unmerge splits a profile by replaying its events, in log order, under the rules and the separations, with
// the two sides of the merge kept apart from now on: each side gets back the id its first event gave it,
// and each event, trait, touch and stage change goes to the side it belongs to.
func (p *Processor) unmerge(ctx context.Context, u Unmerge) error {
	after, err := p.store.ConsumerOffset(ctx, Consumer)
	if err != nil {
		return err
	}
	finished, err := p.store.FinishedUnmerges(ctx)
	if err != nil {
		return err
	}
	events, err := p.store.AllProfileEvents(ctx, u.Profile)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return hearth.Errorf(hearth.NotFound, "profile.unmerge", "The profile no longer exists: it was merged into another since the unmerge was asked for.")
	}
	// In the replay every profile starts anew: a separated one is itself until the replay merges it.
	seps, err := p.loadSeparations(ctx, false)
	if err != nil {
		return err
	}
	seps.pairs[pair(u.Merge.Into, u.Merge.From)] = true
	for _, id := range []string{u.Merge.Into, u.Merge.From} {
		seps.now[id] = id
	}

	ids := make([][]identity.Identifier, len(events))
	var all []identity.Identifier
	var x identity.Extraction
	for i, e := range events {
		if p.rules.Extract(&x, e.Payload) == nil {
			ids[i] = slices.Clone(x.Identifiers)
			all = append(all, x.Identifiers...)
		}
	}
	known, err := p.store.KnownIdentities(ctx, all)
	if err != nil {
		return err
	}
	// The replay regroups only what the profile held: an identifier another profile holds stays there, and
	// is left out of the replayed events as it was when they were first processed.
	g := newOverlay(Known{}, p.cfg)
	g.seps = seps
	var c Changes
	seqs := make([]int64, len(events))
	for i, e := range events {
		seqs[i] = e.Seq
		var mine []identity.Identifier
		for _, id := range ids[i] {
			if q := known.ProfileOf[id]; q != "" && q != u.Profile {
				c.LeftOut = append(c.LeftOut, LeftOut{Seq: e.Seq, Identifier: id, Reason: "elsewhere"})
				continue
			}
			mine = append(mine, id)
		}
		if len(mine) > 0 {
			g.apply(&c, e, p.rules.Resolve(g, mine))
		}
	}
	g.finish(&c, p.opts.SeenRefresh)
	c.From, c.Unmerges = after, finished
	slices.SortStableFunc(c.LeftOut, func(a, b LeftOut) int { return cmp.Compare(a.Seq, b.Seq) })
	return p.store.ApplyUnmerge(ctx, Consumer, u, seqs, c)
}

// loadSeparations reads the separations and, with stored, the profile that each separated one is now part
// of; without, each is itself.
func (p *Processor) loadSeparations(ctx context.Context, stored bool) (separations, error) {
	s := separations{pairs: map[[2]string]bool{}, now: map[string]string{}}
	pairs, err := p.store.Separations(ctx)
	if err != nil {
		return s, err
	}
	for _, pr := range pairs {
		s.pairs[pair(pr[0], pr[1])] = true
		for _, id := range pr {
			if _, done := s.now[id]; done {
				continue
			}
			s.now[id] = id
			if stored {
				if s.now[id], err = p.store.ProfileNow(ctx, id); err != nil {
					return s, err
				}
			}
		}
	}
	return s, nil
}
