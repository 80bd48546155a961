package identity

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func uid(v string) Identifier   { return Identifier{UserID, v} }
func anon(v string) Identifier  { return Identifier{AnonymousID, v} }
func email(v string) Identifier { return Identifier{Email, v} }

func newGraph() *MemoryGraph {
	return NewMemoryGraph(func(seq int64) string { return fmt.Sprintf("p%d", seq) })
}

// replay resolves and applies events (one list of identifiers each, at seq 1, 2, …) and returns the profile
// each was attributed to.
func replay(r Rules, g *MemoryGraph, events ...[]Identifier) []string {
	var out []string
	for i, ids := range events {
		out = append(out, g.Apply(int64(i+1), r.Resolve(g, ids)))
	}
	return out
}

func TestResolve(t *testing.T) {
	r := DefaultRules()
	tests := []struct {
		name    string
		before  [][]Identifier // events already applied
		event   []Identifier
		want    Decision
		members map[string][]Identifier // after the event
	}{
		{
			name:  "a first event makes a profile",
			event: []Identifier{anon("a1")},
			want:  Decision{New: true, Join: []Identifier{anon("a1")}},
		},
		{
			name:   "a sign-in joins the visitor's profile",
			before: [][]Identifier{{anon("a1")}},
			event:  []Identifier{uid("u1"), anon("a1")},
			want:   Decision{Profile: "p1", Join: []Identifier{uid("u1")}},
		},
		{
			name:   "an event linking two profiles merges the newer into the older",
			before: [][]Identifier{{anon("a1")}, {email("li@example.com")}},
			event:  []Identifier{email("li@example.com"), anon("a1")},
			want:   Decision{Profile: "p1", Merged: []Merge{{Profile: "p2", Via: email("li@example.com")}}},
			members: map[string][]Identifier{
				"p1": {anon("a1"), email("li@example.com")},
			},
		},
		{
			name:   "a shared tablet: a second user's sign-in leaves the device's id out",
			before: [][]Identifier{{uid("u1"), anon("tablet")}},
			event:  []Identifier{uid("u2"), anon("tablet")},
			want: Decision{New: true, Join: []Identifier{uid("u2")},
				LeftOut: []LeftOut{{Identifier: anon("tablet"), Limit: UserID}}},
			members: map[string][]Identifier{
				"p1": {uid("u1"), anon("tablet")},
				"p2": {uid("u2")},
			},
		},
		{
			name:   "two known users linked by an email: the email is left out, nobody merges",
			before: [][]Identifier{{uid("u1"), email("family@example.com")}, {uid("u2")}},
			event:  []Identifier{uid("u2"), email("family@example.com")},
			want:   Decision{Profile: "p2", LeftOut: []LeftOut{{Identifier: email("family@example.com"), Limit: UserID}}},
		},
		{
			name:   "the conflict is left out, not an innocent weaker identifier",
			before: [][]Identifier{{uid("u1"), email("shared@example.com")}},
			event:  []Identifier{uid("u2"), email("shared@example.com"), anon("fresh")},
			want: Decision{New: true, Join: []Identifier{uid("u2"), anon("fresh")},
				LeftOut: []LeftOut{{Identifier: email("shared@example.com"), Limit: UserID}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraph()
			replay(r, g, tc.before...)
			got := r.Resolve(g, tc.event)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("decision (-want +got):\n%s", diff)
			}
			g.Apply(int64(len(tc.before)+1), got)
			for p, want := range tc.members {
				if diff := cmp.Diff(want, g.Members(p)); diff != "" {
					t.Errorf("members of %s (-want +got):\n%s", p, diff)
				}
			}
		})
	}
}

// Limits hold however many events come: a shared login cannot gather every device into one blob.
func TestResolveLimits(t *testing.T) {
	s := DefaultSettings()
	for i := range s.Types {
		if s.Types[i].Type == AnonymousID {
			s.Types[i].Limit = 3
		}
	}
	r, err := NewRules(s)
	if err != nil {
		t.Fatal(err)
	}
	g := newGraph()
	var events [][]Identifier
	for i := range 6 { // a store's staff login used on six customers' phones
		events = append(events, []Identifier{uid("staff"), anon(fmt.Sprintf("phone-%d", i))})
	}
	got := replay(r, g, events...)
	for i, p := range got {
		if p != "p1" {
			t.Errorf("event %d attributed to %s, want p1 (the login's profile)", i+1, p)
		}
	}
	if n := g.Count("p1", AnonymousID); n != 3 {
		t.Errorf("the login's profile holds %d anonymous ids, want its limit 3", n)
	}
	for i := 3; i < 6; i++ {
		if p := g.ProfileOf(anon(fmt.Sprintf("phone-%d", i))); p != "" {
			t.Errorf("phone-%d joined %s past the limit", i, p)
		}
	}

	emails := newGraph()
	var evs [][]Identifier
	for i := range 7 {
		evs = append(evs, []Identifier{uid("u1"), email(fmt.Sprintf("a%d@example.com", i))})
	}
	replay(DefaultRules(), emails, evs...)
	if n := emails.Count("p1", Email); n != 5 {
		t.Errorf("%d emails in one profile, want the default limit 5", n)
	}
}

// An unmerge's separation keeps two profiles apart: the event that would join them leaves its weaker link
// out, and a profile that absorbs one side inherits the separation.
func TestResolveSeparated(t *testing.T) {
	r := DefaultRules()
	g := newGraph()
	replay(r, g, []Identifier{uid("u9")}, []Identifier{anon("a1")}, []Identifier{email("li@example.com")}) // p1, p2, p3
	g.Separate("p2", "p3")
	d := r.Resolve(g, []Identifier{email("li@example.com"), anon("a1")})
	want := Decision{Profile: "p3", LeftOut: []LeftOut{{Identifier: anon("a1"), Separated: true}}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Fatalf("decision (-want +got):\n%s", diff)
	}
	g.Apply(4, d)
	// The older p1 absorbs p2; the separation from p3 now holds for p1.
	if p := g.Apply(5, r.Resolve(g, []Identifier{uid("u9"), anon("a1")})); p != "p1" || g.ProfileOf(anon("a1")) != "p1" {
		t.Fatalf("u9 and a1: attributed to %s, a1 in %s; want both p1", p, g.ProfileOf(anon("a1")))
	}
	d = r.Resolve(g, []Identifier{email("li@example.com"), anon("a1")})
	if len(d.Merged) != 0 || len(d.LeftOut) != 1 || d.LeftOut[0].Identifier != anon("a1") || !d.LeftOut[0].Separated {
		t.Errorf("after p1 absorbed p2, an event linking p1 and p3: %+v; want a1 left out, no merge", d)
	}
}

// Replaying the same events gives the same profiles.
func TestResolveDeterministic(t *testing.T) {
	r := DefaultRules()
	events := [][]Identifier{
		{anon("a1")}, {anon("a2")}, {uid("u1"), anon("a1")}, {email("x@example.com"), anon("a2")},
		{uid("u1"), email("x@example.com")}, {uid("u2"), anon("a1")}, {email("y@example.com"), uid("u2")},
	}
	first, second := newGraph(), newGraph()
	a, b := replay(r, first, events...), replay(r, second, events...)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("attributions differ (-first +second):\n%s", diff)
	}
	for _, id := range []Identifier{anon("a1"), anon("a2"), uid("u1"), uid("u2"), email("x@example.com"), email("y@example.com")} {
		if first.ProfileOf(id) != second.ProfileOf(id) {
			t.Errorf("%s: %s then %s", id, first.ProfileOf(id), second.ProfileOf(id))
		}
	}
	// u1's visit on a1 and u1's email x merge a2's profile in; u2 on a1 is refused the link.
	if p := first.ProfileOf(anon("a2")); p != first.ProfileOf(uid("u1")) {
		t.Errorf("a2 in %s, u1 in %s: want one profile", p, first.ProfileOf(uid("u1")))
	}
	if first.ProfileOf(uid("u2")) == first.ProfileOf(uid("u1")) {
		t.Error("u1 and u2 were merged")
	}
}

// Whatever events come, in whatever order, no profile goes over a limit and separated profiles never meet.
func TestResolveInvariants(t *testing.T) {
	s := DefaultSettings()
	for i := range s.Types {
		if s.Types[i].Type == AnonymousID || s.Types[i].Type == Email {
			s.Types[i].Limit = 2
		}
	}
	r, err := NewRules(s)
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 7))
		g := newGraph()
		pick := func(mk func(string) Identifier, n int) Identifier { return mk(fmt.Sprint(rng.IntN(n))) }
		for seq := int64(1); seq <= 200; seq++ {
			var ids []Identifier
			for _, c := range []struct {
				mk func(string) Identifier
				n  int
				p  float64
			}{{uid, 6, .3}, {email, 8, .3}, {anon, 12, .8}} {
				if rng.Float64() < c.p {
					ids = append(ids, pick(c.mk, c.n))
				}
			}
			if len(ids) == 0 {
				continue
			}
			g.Apply(seq, r.Resolve(g, ids))
			if seq%40 == 0 && len(g.members) > 1 { // an unmerge now and then: keep two profiles apart
				var ps []string
				for p := range g.members {
					ps = append(ps, p)
				}
				slices.Sort(ps)
				g.Separate(ps[0], ps[len(ps)-1])
			}
			for p, ms := range g.members {
				for _, ty := range r.Types() {
					if n := g.Count(p, ty); n > r.Limit(ty) {
						t.Fatalf("seed %d seq %d: %s holds %d of %s, over %d: %v", seed, seq, p, n, ty, r.Limit(ty), ms)
					}
				}
				for _, id := range ms {
					if g.ProfileOf(id) != p {
						t.Fatalf("seed %d seq %d: %s listed in %s but held by %s", seed, seq, id, p, g.ProfileOf(id))
					}
				}
			}
			for k := range g.separated {
				if _, ok := g.members[k[0]]; ok && k[0] == k[1] {
					t.Fatalf("seed %d seq %d: %s separated from itself: two separated profiles merged", seed, seq, k[0])
				}
			}
		}
	}
}
