package profile_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/demo"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

// TestResolutionTruth checks identity resolution against the demo world's ground truth (issue 5: "on the
// demo world's ground truth, identity resolution makes no false merge and misses no deterministic merge").
// A fresh store is filled with the world's events as hearth demo appends them, the processor reads the log
// to its end, and the store is read back (which profile holds each identifier, how many each holds, and each
// profile's whole timeline):
//
//   - no false merge: no profile holds the identifiers of two people, and no event that carries one of its
//     person's own identifiers is on another person's timeline;
//   - no missed merge: each group of a person's identifiers that their events link (Truth.Profiles) is in
//     one profile, and every event that carries an identifier is on a timeline;
//   - the stored graph is the one the rules make when replayed over the log in memory.
//
// A shared tablet's anonymous id (Truth.Shared) belongs to no group: it stays with one of its two people,
// and the events that carry it alone go where it stays, whoever made them; those are counted, not failed.
//
// 1,000 people by default (about 12,000 events: under 20 s with -race on two cores, where SQLite is slow);
// go test -run TestResolutionTruth -v -people 100000 checks a larger world and logs how long each step took.
func TestResolutionTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store with a demo world")
	}
	n := worldSize(1000)
	db := storetest.SQLite(t, hearth.SystemClock{})
	w := newTruthWorld()

	t0 := time.Now()
	sum := appendWorld(t, db, n, w.person)
	appended := time.Since(t0)

	t0 = time.Now()
	p := profile.NewProcessor(db, profile.Options{})
	if got := processAll(t, p); got != sum.Events {
		t.Errorf("the processor read %d events, the demo appended %d", got, sum.Events)
	}
	processed := time.Since(t0)

	t0 = time.Now()
	r := w.check(t, db)
	checked := time.Since(t0)

	t.Logf("%d people (%d identified, %d sharing a tablet), %d events (%d with an identifier, %d with only a shared device's)",
		sum.People, sum.Identified, w.sharing, sum.Events, w.withIDs, w.sharedOnly)
	t.Logf("%d profiles, %d merges; %d identifiers left out (%s)", r.profiles, r.merges, r.leftOut, r.leftOutBy)
	t.Logf("%d people in one profile; %d in %s, as many as the groups their events link (never identified devices)",
		r.byProfiles[1], n-r.byProfiles[1], r.splitPeople())
	t.Logf("%d events of a shared tablet's anonymous id alone are on the other family member's timeline", r.ambiguous)
	t.Logf("append %s (%.0f events/s), process %s (%.0f events/s), check %s",
		appended.Round(time.Millisecond), float64(sum.Events)/appended.Seconds(), processed.Round(time.Millisecond),
		float64(sum.Events)/processed.Seconds(), checked.Round(time.Millisecond))
	w.report(t)
}

// worldSize is -people if given, else def.
func worldSize(def int) int {
	if *people > 0 {
		return *people
	}
	return def
}

// appendWorld appends the events of the demo world's first n people to db's log, through the event writer
// and in the order hearth demo appends them, telling person about each person first.
func appendWorld(tb testing.TB, db *store.DB, n int, person func(demo.Truth, []collect.Event)) demo.Summary {
	tb.Helper()
	var sum demo.Summary
	withWriter(db, func(runCtx context.Context, w *store.EventWriter) {
		var err error
		if sum, err = demo.Append(runCtx, demo.FakeEnv(), w, demo.Options{People: n, Seed: 1, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Person: person}, nil); err != nil {
			tb.Fatal(err)
		}
	})
	return sum
}

// truthWorld is what the check knows of the world: whose each identifier and each event is.
type truthWorld struct {
	rules  identity.Rules
	people []demo.Truth
	owners map[identity.Identifier][]int32 // the person, or the two people of a shared tablet
	shared map[identity.Identifier]bool
	events map[string]eventOf // by message id
	// counts
	sharing, withIDs, sharedOnly int
	failures
}

// eventOf is whose an event is and what it carries.
type eventOf struct {
	person int32
	carry  uint8 // carriesNothing, carriesShared or carriesOwn
}

const (
	carriesNothing = iota // no identifier: it is on no timeline
	carriesShared         // only a shared device's anonymous id
	carriesOwn            // an identifier of its person's own
)

func newTruthWorld() *truthWorld {
	return &truthWorld{rules: identity.DefaultRules(), owners: map[identity.Identifier][]int32{}, shared: map[identity.Identifier]bool{},
		events: map[string]eventOf{}, failures: failures{examples: map[string][]string{}, counts: map[string]int{}}}
}

func parseID(s string) identity.Identifier {
	t, v, _ := strings.Cut(s, ":")
	return identity.Identifier{Type: identity.Type(t), Value: v}
}

// person learns a person's truth and their events, as the demo makes them.
func (w *truthWorld) person(p demo.Truth, evs []collect.Event) {
	i := int32(len(w.people))
	p.Junk = nil // not needed, and a million people should fit
	w.people = append(w.people, p)
	for _, g := range p.Profiles {
		for _, s := range g {
			id := parseID(s)
			if len(w.owners[id]) > 0 {
				w.fail("truth", "%s is %s's and %s's", id, w.people[w.owners[id][0]].ID, p.ID)
			}
			w.owners[id] = append(w.owners[id], i)
		}
	}
	for _, s := range p.Shared {
		id := identity.Identifier{Type: identity.AnonymousID, Value: s}
		w.shared[id] = true
		w.owners[id] = append(w.owners[id], i)
		w.sharing++
	}
	for _, ev := range evs {
		ids, err := w.rules.FromEvent(ev.Payload)
		if err != nil {
			w.fail("truth", "%s's event %s: %v", p.ID, ev.MessageID, err)
		}
		e := eventOf{person: i}
		for _, id := range ids {
			if !slices.Contains(w.owners[id], i) {
				w.fail("truth", "%s's event %s carries %s, which the truth does not give them", p.ID, ev.MessageID, id)
				continue
			}
			if w.shared[id] {
				e.carry = max(e.carry, carriesShared)
			} else {
				e.carry = carriesOwn
			}
		}
		if _, dup := w.events[ev.MessageID]; dup {
			w.fail("truth", "message id %s twice", ev.MessageID)
		}
		w.events[ev.MessageID] = e
		switch e.carry {
		case carriesOwn:
			w.withIDs++
		case carriesShared:
			w.withIDs++
			w.sharedOnly++
		}
	}
}

// result counts what the check found.
type result struct {
	profiles, merges, leftOut, ambiguous int
	leftOutBy                            string
	byProfiles                           map[int]int // people by how many profiles hold their identifiers
}

func (r result) splitPeople() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.byProfiles)) {
		if k != 1 {
			parts = append(parts, fmt.Sprintf("%d (%d people)", k, r.byProfiles[k]))
		}
	}
	if len(parts) == 0 {
		return "no more profiles"
	}
	return strings.Join(parts, ", ") + " profiles"
}

// check reads, for every identifier of the world, the profile that holds it (in batches, as the processor
// reads the graph), then each of those profiles' identifier counts and whole timeline, and compares.
func (w *truthWorld) check(t *testing.T, db *store.DB) result {
	t.Helper()
	ctx := context.Background()
	r := result{byProfiles: map[int]int{}}
	ids := slices.SortedFunc(maps.Keys(w.owners), func(a, b identity.Identifier) int { return strings.Compare(a.String(), b.String()) })
	known, err := db.KnownIdentities(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	profileOf := known.ProfileOf
	members := map[string][]identity.Identifier{} // profile -> the world's identifiers it holds
	for _, id := range ids {
		p := profileOf[id]
		if p == "" {
			w.fail("identifier in no profile", "%s of %s", id, w.names(w.owners[id]))
			continue
		}
		members[p] = append(members[p], id)
	}
	profiles := slices.Sorted(maps.Keys(members))
	r.profiles = len(profiles)
	onTimeline := map[string]string{} // message id -> profile
	for _, p := range profiles {
		held := 0
		for _, n := range known.Counts[p] {
			held += n
		}
		if held != len(members[p]) { // what else it holds
			whole, err := db.Profile(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			var other []string
			for _, i := range whole.Identities {
				if len(w.owners[i.Identifier]) == 0 {
					other = append(other, i.Identifier.String())
				}
			}
			w.fail("identifier not in the truth", "profile %s holds %d identifiers, %d of them the world's; the others: %s", p, held, len(members[p]), strings.Join(other, " "))
		}
		evs, err := db.ProfileEvents(ctx, p, 0, len(w.events)+1)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if q, dup := onTimeline[e.MessageID]; dup {
				w.fail("event on two timelines", "event %d (%s) is on %s's and %s's", e.Seq, e.MessageID, q, p)
			}
			onTimeline[e.MessageID] = p
		}
		r.ambiguous += w.checkProfile(ctx, db, p, members[p], evs)
	}

	// The stored graph is the one the rules make, replayed over the log in memory: the processor's batches
	// and the store change nothing. The replay counts the merges.
	replay := identity.NewMemoryGraph(profile.ProfileID)
	for after := int64(0); ; {
		evs, err := db.ReadEvents(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			after = e.Seq
			if e.Bot {
				continue
			}
			if ids, err := w.rules.FromEvent(e.Payload); err == nil && len(ids) > 0 {
				d := w.rules.Resolve(replay, ids)
				r.merges += len(d.Merged)
				replay.Apply(e.Seq, d)
			}
		}
	}
	for _, id := range ids {
		if want := replay.ProfileOf(id); profileOf[id] != want {
			w.fail("stored graph differs from the rules' replay", "%s is in profile %s, the replay puts it in %s", id, cmp.Or(profileOf[id], "none"), cmp.Or(want, "none"))
		}
	}

	// Every event that carries an identifier is on a timeline.
	for msg, e := range w.events {
		if _, ok := onTimeline[msg]; !ok && e.carry != carriesNothing {
			w.fail("event on no timeline", "%s's event %s", w.people[e.person].ID, msg)
		}
	}

	// Each group of a person's identifiers is one profile.
	for _, p := range w.people {
		profiles := map[string]bool{}
		for _, g := range p.Profiles {
			in := map[string][]string{}
			for _, s := range g {
				q := profileOf[parseID(s)]
				in[q] = append(in[q], s)
				profiles[q] = true
			}
			if len(in) > 1 {
				var parts []string
				for _, q := range slices.Sorted(maps.Keys(in)) {
					parts = append(parts, fmt.Sprintf("%s: %s", cmp.Or(q, "none"), strings.Join(in[q], " ")))
				}
				w.fail("missed merge", "%s: the identifiers their events link are in %d profiles: %s", p.ID, len(in), strings.Join(parts, "; "))
			}
		}
		if len(profiles) < len(p.Profiles) { // groups no event of theirs links, in one profile
			w.fail("merge the truth cannot explain", "%s: the %d groups of identifiers their events link are in %d profiles: %v", p.ID, len(p.Profiles), len(profiles), p.Profiles)
		}
		r.byProfiles[len(profiles)]++
	}

	head, err := db.LogHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left, err := db.LeftOut(ctx, 0, head)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, l := range left {
		by[string(l.Identifier.Type)+" "+l.Reason]++
		if !w.shared[l.Identifier] {
			w.fail("left out", "event %d left out %s of %s (%s), not a shared device's id", l.Seq, l.Identifier, w.names(w.owners[l.Identifier]), l.Reason)
		}
	}
	r.leftOut = len(left)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, by[k]))
	}
	r.leftOutBy = cmp.Or(strings.Join(parts, ", "), "none")
	return r
}

// checkProfile checks that one profile is one person's: its identifiers and the events on its timeline. It
// returns how many events of a shared device's id alone it holds that are the other family member's.
func (w *truthWorld) checkProfile(ctx context.Context, db *store.DB, p string, ids []identity.Identifier, evs []collect.Event) (ambiguous int) {
	owner := int32(-1)
	own := map[int32][]string{} // person -> the profile's identifiers that are theirs alone
	var sharedIDs []identity.Identifier
	for _, id := range ids {
		if w.shared[id] {
			sharedIDs = append(sharedIDs, id)
			continue
		}
		o := w.owners[id][0]
		own[o] = append(own[o], id.String())
		owner = o
	}
	if len(own) > 1 {
		var parts []string
		for _, o := range slices.Sorted(maps.Keys(own)) {
			parts = append(parts, fmt.Sprintf("%s (%s)", w.people[o].ID, strings.Join(own[o], " ")))
		}
		var merges []string
		if whole, err := db.Profile(ctx, p); err == nil {
			for _, m := range whole.Merges {
				merges = append(merges, fmt.Sprintf("event %d merged %s into %s via %s", m.Seq, m.From, m.Into, m.Via))
			}
		}
		w.fail("false merge", "profile %s holds the identifiers of %s; %s", p, strings.Join(parts, " and "), cmp.Or(strings.Join(merges, ", "), "no merges"))
	}
	for _, id := range sharedIDs {
		if owner >= 0 && !slices.Contains(w.owners[id], owner) {
			w.fail("false merge", "profile %s is %s's and holds %s, a device of %s", p, w.people[owner].ID, id, w.names(w.owners[id]))
		}
	}
	for _, e := range evs {
		ev, ok := w.events[e.MessageID]
		switch {
		case !ok:
			w.fail("event not in the world", "profile %s has event %d (%s)", p, e.Seq, e.MessageID)
		case ev.carry == carriesNothing:
			w.fail("event without identifiers on a timeline", "profile %s has event %d of %s", p, e.Seq, w.people[ev.person].ID)
		case ev.person == owner:
		case ev.carry == carriesOwn:
			w.fail("false attribution", "profile %s is %s's and has event %d of %s: %s", p, w.names([]int32{owner}), e.Seq, w.people[ev.person].ID, e.Payload)
		default: // a shared device's id alone: it is where the id stays
			ambiguous++
		}
	}
	return ambiguous
}

func (w *truthWorld) names(people []int32) string {
	var s []string
	for _, i := range people {
		if i < 0 {
			s = append(s, "no one")
			continue
		}
		s = append(s, w.people[i].ID)
	}
	return cmp.Or(strings.Join(s, " and "), "no one")
}

// failures gathers violations by kind, with a few examples each, to report them all at the end.
type failures struct {
	counts   map[string]int
	examples map[string][]string
}

func (f *failures) fail(kind, format string, args ...any) {
	f.counts[kind]++
	if len(f.examples[kind]) < 5 {
		f.examples[kind] = append(f.examples[kind], fmt.Sprintf(format, args...))
	}
}

func (f *failures) report(t *testing.T) {
	for _, k := range slices.Sorted(maps.Keys(f.counts)) {
		t.Errorf("%s: %d, such as\n\t%s", k, f.counts[k], strings.Join(f.examples[k], "\n\t"))
	}
}
