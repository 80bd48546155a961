package identity

import (
	"slices"
)

// Graph is what resolving an event needs to know of the identity graph as it stands: which profile holds an
// identifier, how many identifiers of a type a profile holds, which profile is older, and which profiles an
// unmerge keeps apart. The processor keeps it in the store (and caches it); tests use MemoryGraph.
type Graph interface {
	// ProfileOf returns the profile that holds id, or "" when none does.
	ProfileOf(id Identifier) string
	// Count returns how many identifiers of type t profile holds.
	Count(profile string, t Type) int
	// FirstSeq returns the log offset of the event that made profile: the smaller, the older.
	FirstSeq(profile string) int64
	// Separated reports whether an unmerge keeps the two profiles apart.
	Separated(a, b string) bool
}

// Decision is what one event does to the graph: see docs/identity.md.
type Decision struct {
	// Profile is the profile the event is attributed to; "" when New.
	Profile string
	// New says a new profile is made, holding Join.
	New bool
	// Join are the event's identifiers that no profile held, which now join Profile (or the new one).
	Join []Identifier
	// Merged are the profiles merged into Profile, oldest first, each with the identifier of the event that
	// linked it.
	Merged []Merge
	// LeftOut are the identifiers of the event left out to keep within the rules, in the order left out.
	LeftOut []LeftOut
}

// Merge is one profile merged into another by an event.
type Merge struct {
	Profile string     // the profile absorbed
	Via     Identifier // the identifier of the event that it held
}

// LeftOut is an identifier an event carried that was kept out of the graph: linking it would have broken a
// limit (Limit is the type whose limit), or merged profiles that an unmerge keeps apart (Separated).
type LeftOut struct {
	Identifier Identifier
	Limit      Type // the type over its limit, or ""
	Separated  bool
}

// Resolve decides what an event with the identifiers ids (normalised, as Extract gives them) does to the
// graph. It is deterministic: the same graph and identifiers give the same decision, so that replaying the
// log gives the same profiles.
//
// The profiles the identifiers lead to merge into the oldest, unless the union would hold more identifiers
// of a type than its limit, or join profiles an unmerge separated; then the lowest-priority identifier whose
// leaving out removes a conflict is left out, and the rest tried again.
func (r Rules) Resolve(g Graph, ids []Identifier) Decision {
	ids = slices.Clone(ids)
	// Strongest first, so that what is left out is found from the end.
	slices.SortStableFunc(ids, func(a, b Identifier) int { return r.Priority(a.Type) - r.Priority(b.Type) })
	var d Decision
	for {
		conflicts, limit, separated := r.conflicts(g, ids)
		if conflicts == 0 {
			break
		}
		// The lowest-priority identifier whose leaving out leaves fewer conflicts.
		drop := -1
		for i := len(ids) - 1; i >= 0 && drop < 0; i-- {
			rest := slices.Delete(slices.Clone(ids), i, i+1)
			if n, _, _ := r.conflicts(g, rest); n < conflicts {
				drop = i
			}
		}
		if drop < 0 { // no one identifier helps (an event that alone breaks a limit): the weakest goes
			drop = len(ids) - 1
		}
		d.LeftOut = append(d.LeftOut, LeftOut{Identifier: ids[drop], Limit: limit, Separated: separated})
		ids = slices.Delete(ids, drop, drop+1)
	}

	profiles, via := profilesOf(g, ids)
	for _, id := range ids {
		if g.ProfileOf(id) == "" {
			d.Join = append(d.Join, id)
		}
	}
	if len(profiles) == 0 {
		d.New = len(d.Join) > 0
		return d
	}
	slices.SortFunc(profiles, func(a, b string) int { return olderFirst(g, a, b) })
	d.Profile = profiles[0]
	for _, p := range profiles[1:] {
		d.Merged = append(d.Merged, Merge{Profile: p, Via: via[p]})
	}
	return d
}

// conflicts counts what linking ids would break: types over their limit in the union of the profiles they
// lead to and the new identifiers, and pairs of those profiles kept apart. It returns one broken type as an
// example, and whether a separation was broken.
func (r Rules) conflicts(g Graph, ids []Identifier) (n int, limit Type, separated bool) {
	profiles, _ := profilesOf(g, ids)
	counts := map[Type]int{}
	for _, p := range profiles {
		for _, t := range r.Types() {
			counts[t] += g.Count(p, t)
		}
	}
	seen := map[Identifier]bool{}
	for _, id := range ids {
		if g.ProfileOf(id) == "" && !seen[id] {
			seen[id] = true
			counts[id.Type]++
		}
	}
	for _, t := range r.Types() {
		if over := counts[t] - r.Limit(t); over > 0 {
			n += over
			if limit == "" {
				limit = t
			}
		}
	}
	for i, a := range profiles {
		for _, b := range profiles[i+1:] {
			if g.Separated(a, b) {
				n++
				separated = true
			}
		}
	}
	return n, limit, separated
}

// profilesOf returns the distinct profiles ids lead to, in the order of ids, and for each the first
// identifier that led to it.
func profilesOf(g Graph, ids []Identifier) ([]string, map[string]Identifier) {
	var profiles []string
	via := map[string]Identifier{}
	for _, id := range ids {
		if p := g.ProfileOf(id); p != "" {
			if _, ok := via[p]; !ok {
				via[p] = id
				profiles = append(profiles, p)
			}
		}
	}
	return profiles, via
}

func olderFirst(g Graph, a, b string) int {
	sa, sb := g.FirstSeq(a), g.FirstSeq(b)
	switch {
	case sa < sb:
		return -1
	case sa > sb:
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// MemoryGraph is a Graph held in memory, that applies decisions: for tests, and for replaying a profile's
// events to unmerge it.
type MemoryGraph struct {
	profileOf  map[Identifier]string
	members    map[string][]Identifier
	firstSeq   map[string]int64
	separated  map[[2]string]bool
	newProfile func(seq int64) string
}

// NewMemoryGraph makes an empty graph; newProfile names the profile made by the event at seq.
func NewMemoryGraph(newProfile func(seq int64) string) *MemoryGraph {
	return &MemoryGraph{profileOf: map[Identifier]string{}, members: map[string][]Identifier{}, firstSeq: map[string]int64{},
		separated: map[[2]string]bool{}, newProfile: newProfile}
}

func (g *MemoryGraph) ProfileOf(id Identifier) string { return g.profileOf[id] }

func (g *MemoryGraph) Count(profile string, t Type) int {
	n := 0
	for _, id := range g.members[profile] {
		if id.Type == t {
			n++
		}
	}
	return n
}

func (g *MemoryGraph) FirstSeq(profile string) int64 { return g.firstSeq[profile] }

func (g *MemoryGraph) Separated(a, b string) bool {
	return g.separated[[2]string{min(a, b), max(a, b)}]
}

// Separate keeps two profiles apart from now on.
func (g *MemoryGraph) Separate(a, b string) { g.separated[[2]string{min(a, b), max(a, b)}] = true }

// Members returns a profile's identifiers, in the order they joined.
func (g *MemoryGraph) Members(profile string) []Identifier { return g.members[profile] }

// Apply carries out a decision made for the event at seq and returns the profile the event is attributed to
// ("" for an event that joined nothing).
func (g *MemoryGraph) Apply(seq int64, d Decision) string {
	p := d.Profile
	if d.New {
		p = g.newProfile(seq)
		g.firstSeq[p] = seq
	}
	for _, m := range d.Merged {
		for _, id := range g.members[m.Profile] {
			g.profileOf[id] = p
		}
		g.members[p] = append(g.members[p], g.members[m.Profile]...)
		delete(g.members, m.Profile)
		for k := range g.separated { // a separation of the absorbed profile now holds for the one it joined
			if k[0] == m.Profile || k[1] == m.Profile {
				other := k[0]
				if other == m.Profile {
					other = k[1]
				}
				g.Separate(p, other)
			}
		}
	}
	for _, id := range d.Join {
		g.profileOf[id] = p
		g.members[p] = append(g.members[p], id)
	}
	return p
}
