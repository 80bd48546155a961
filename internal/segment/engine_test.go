package segment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

var (
	ctx = context.Background()
	now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// world writes events to a store's log and runs the profile processor over them.
type world struct {
	t     *testing.T
	db    *store.DB
	clock *storetest.Clock
	w     *store.EventWriter
	n     int
	proc  *profile.Processor
	users int // people populated, u0, u1, …
}

func newWorld(t *testing.T, open func(testing.TB, hearth.Clock) *store.DB) *world {
	clock := storetest.NewClock(now)
	db := open(t, clock)
	w := store.NewEventWriter(db, store.EventWriterOptions{})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(runCtx); err != nil {
			t.Errorf("event writer: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &world{t: t, db: db, clock: clock, w: w, proc: profile.NewProcessor(db, profile.Options{})}
}

// add appends an event, of fields (type, userId, event, traits, properties, …), that happened at.
func (w *world) add(at time.Time, fields map[string]any) {
	w.t.Helper()
	w.n++
	fields["messageId"] = fmt.Sprintf("m%d", w.n)
	payload, err := json.Marshal(fields)
	must(w.t, err)
	str := func(k string) string { s, _ := fields[k].(string); return s }
	e := collect.Event{MessageID: str("messageId"), Type: str("type"), Name: str("event"), UserID: str("userId"),
		AnonymousID: str("anonymousId"), Timestamp: at, ReceivedAt: w.clock.Now(), Payload: payload}
	if _, err := w.w.Append(ctx, &collect.Batch{SourceID: "web", ReceivedAt: w.clock.Now(), Events: []collect.Event{e}}); err != nil {
		w.t.Fatal(err)
	}
}

// process runs the profile processor to the end of the log.
func (w *world) process() {
	w.t.Helper()
	for {
		n, err := w.proc.Process(ctx)
		must(w.t, err)
		if n == 0 {
			return
		}
	}
}

func daysAgo(d float64) time.Time { return now.Add(-time.Duration(d * 24 * float64(time.Hour))) }

var (
	cities   = []string{"Shanghai", "Beijing", "上海", "Shenzhen"}
	channels = []string{"qr_poster", "business_card", "ad"}
)

// populate writes a world of people with random traits, orders and touches. Every third person also browsed
// anonymously first (v0, v3, …: activated, not identified); populated again, every sixth signs up on that
// browser, which merges the two.
func (w *world) populate(r *rand.Rand, people int) {
	again := w.users > 0
	w.users = max(w.users, people)
	for i := range people {
		if i%3 == 0 {
			w.add(daysAgo(r.Float64()*50), map[string]any{"type": "track", "anonymousId": fmt.Sprintf("v%d", i), "event": "Product Viewed"})
		}
		if again && i%6 == 0 {
			w.add(daysAgo(r.Float64()*5), map[string]any{"type": "track", "anonymousId": fmt.Sprintf("v%d", i), "userId": fmt.Sprintf("u%d", i), "event": "Signed Up"})
		}
		user := fmt.Sprintf("u%d", i)
		traits := map[string]any{"city": cities[r.IntN(len(cities))], "score": float64(10 * r.IntN(10))}
		if traits["city"] == "上海" && r.IntN(2) == 0 {
			traits["city"] = json.RawMessage(`"\u4e0a\u6d77"`) // as some SDKs write it
		}
		if r.IntN(2) == 0 {
			traits["vip"] = r.IntN(2) == 0
		}
		if r.IntN(3) > 0 {
			traits["email"] = fmt.Sprintf("p%d@example.com", i)
			if r.IntN(4) == 0 {
				traits["email_subscribed"] = false
			}
		}
		if r.IntN(2) == 0 {
			traits["birthday"] = daysAgo(float64(r.IntN(60))).Format(time.DateOnly)
		}
		w.add(daysAgo(200), map[string]any{"type": "identify", "userId": user, "traits": traits})
		for range r.IntN(5) {
			w.add(daysAgo(r.Float64()*100), map[string]any{"type": "track", "userId": user, "event": "Order Completed",
				"properties": map[string]any{"amount": float64(100 * r.IntN(10)), "sku": []string{"tea", "cup", "pot"}[r.IntN(3)]}})
		}
		for range r.IntN(3) {
			tp := r.IntN(4)
			w.add(daysAgo(r.Float64()*60), map[string]any{"type": "track", "userId": user, "event": collect.TouchEventName,
				"properties": map[string]any{"touchpoint_id": fmt.Sprintf("tp%d", tp), "touchpoint": "TP", "channel": channels[tp%3], "campaign_id": fmt.Sprintf("c%d", tp/2)}})
		}
		if r.IntN(3) == 0 {
			w.add(daysAgo(r.Float64()*30), map[string]any{"type": "track", "userId": user, "event": "Signed Up"})
		}
	}
	w.process()
}

// person is what the oracle knows of a profile: read through the profile API, not the segment queries.
type person struct {
	id     string
	p      profile.Profile
	events []collect.Event
}

func (w *world) people() []person {
	w.t.Helper()
	var out []person
	seen := map[string]bool{}
	for i := range w.users {
		for _, id := range []identity.Identifier{{Type: identity.UserID, Value: fmt.Sprintf("u%d", i)}, {Type: identity.AnonymousID, Value: fmt.Sprintf("v%d", i)}} {
			p, err := w.db.ProfileByIdentifier(ctx, id.Type, id.Value)
			if hearth.KindOf(err) == hearth.NotFound || err == nil && seen[p.ID] {
				continue // no such visitor, or one merged into its user
			}
			must(w.t, err)
			seen[p.ID] = true
			evs, err := w.db.ProfileEvents(ctx, p.ID, 0, 1000)
			must(w.t, err)
			out = append(out, person{id: p.ID, p: p, events: evs})
		}
	}
	return out
}

// oracle decides a rule for a person plainly, as docs/segments.md says.
func oracle(t *testing.T, r segment.Rule, x person, at time.Time) bool {
	switch {
	case r.And != nil:
		for _, c := range r.And {
			if !oracle(t, c, x, at) {
				return false
			}
		}
		return true
	case r.Or != nil:
		for _, c := range r.Or {
			if oracle(t, c, x, at) {
				return true
			}
		}
		return false
	case r.Not != nil:
		return !oracle(t, *r.Not, x, at)
	case r.Trait != nil:
		for _, tr := range x.p.Traits {
			if tr.Name == r.Trait.Name {
				var v any
				must(t, json.Unmarshal(tr.Value, &v))
				return compares(v, *r.Trait, at)
			}
		}
		return false
	case r.Event != nil:
		e := r.Event
		n := 0
		for _, ev := range x.events {
			if ev.Type != "track" || ev.Name != e.Name {
				continue
			}
			if e.WithinLastDays > 0 && ev.Timestamp.Before(at.AddDate(0, 0, -e.WithinLastDays)) {
				continue
			}
			var body struct{ Properties map[string]any }
			must(t, json.Unmarshal(ev.Payload, &body))
			ok := true
			for _, f := range e.Where {
				v, has := body.Properties[f.Property]
				ok = ok && has && compares(v, f, at)
			}
			if ok {
				n++
			}
		}
		if e.Count == nil {
			return n >= 1
		}
		switch e.Count.Op {
		case "at_least":
			return n >= e.Count.Value
		case "at_most":
			return n <= e.Count.Value
		}
		return n == e.Count.Value
	case r.Touched != nil:
		for _, tc := range x.p.Touches {
			if (r.Touched.TouchpointID == "" || tc.TouchpointID == r.Touched.TouchpointID) &&
				(r.Touched.CampaignID == "" || tc.CampaignID == r.Touched.CampaignID) &&
				(r.Touched.Channel == "" || tc.Channel == r.Touched.Channel) &&
				(r.Touched.WithinLastDays == 0 || !tc.Last.Before(at.AddDate(0, 0, -r.Touched.WithinLastDays))) {
				return true
			}
		}
		return false
	case r.Stage != nil:
		switch r.Stage.Op {
		case "is":
			return x.p.Stage == r.Stage.Value
		case "at_least":
			return slices.Index(segment.Stages, x.p.Stage) >= slices.Index(segment.Stages, r.Stage.Value)
		}
		steps := x.p.Steps() // from the identities, traits and first events, not the stored steps
		return map[profile.Stage]bool{profile.Identified: steps.Identified, profile.Connected: steps.Connected,
			profile.Activated: steps.Activated, profile.Converted: steps.Converted}[r.Stage.Value]
	case r.Reachable != nil:
		has := false
		for _, id := range x.p.Identities {
			has = has || id.Identifier.Type == identity.Email
		}
		for _, tr := range x.p.Traits {
			if tr.Name == profile.EmailSubscribed && string(tr.Value) == "false" {
				return false
			}
		}
		return has
	}
	t.Fatalf("the oracle does not know %+v", r)
	return false
}

func compares(v any, c segment.Compare, at time.Time) bool {
	s, isText := v.(string)
	f, isNum := v.(float64)
	day := func() (string, bool) {
		if !isText || len(s) < 10 {
			return "", false
		}
		_, err := time.Parse(time.DateOnly, s[:10])
		return s[:10], err == nil
	}
	switch c.Op {
	case segment.Equals:
		return v == c.Value
	case segment.Contains:
		return isText && strings.Contains(strings.ToLower(s), strings.ToLower(c.Value.(string)))
	case segment.In:
		return slices.Contains(c.Values, v)
	case segment.Greater:
		return isNum && f > c.Value.(float64)
	case segment.GreaterOrEqual:
		return isNum && f >= c.Value.(float64)
	case segment.Less:
		return isNum && f < c.Value.(float64)
	case segment.LessOrEqual:
		return isNum && f <= c.Value.(float64)
	case segment.Exists:
		return v != nil
	case segment.Before:
		d, ok := day()
		return ok && d < c.Value.(string)
	case segment.After:
		d, ok := day()
		return ok && d > c.Value.(string)
	case segment.WithinLastDays:
		d, ok := day()
		return ok && d >= at.AddDate(0, 0, -c.Days).Format(time.DateOnly) && d <= at.Format(time.DateOnly)
	}
	return false
}

// leaves are the conditions random rules are made of, as JSON.
var leaves = []string{
	`{"trait": {"name": "city", "op": "equals", "value": "Shanghai"}}`,
	`{"trait": {"name": "city", "op": "equals", "value": "上海"}}`,
	`{"trait": {"name": "city", "op": "contains", "value": "SHEN"}}`,
	`{"trait": {"name": "city", "op": "in", "values": ["Beijing", "Shenzhen", 3]}}`,
	`{"trait": {"name": "score", "op": "gt", "value": 50}}`,
	`{"trait": {"name": "score", "op": "lte", "value": 20}}`,
	`{"trait": {"name": "score", "op": "equals", "value": 70}}`,
	`{"trait": {"name": "vip", "op": "equals", "value": true}}`,
	`{"trait": {"name": "vip", "op": "exists"}}`,
	`{"trait": {"name": "birthday", "op": "within_last_days", "days": 14}}`,
	`{"trait": {"name": "birthday", "op": "before", "value": "2026-05-01"}}`,
	`{"trait": {"name": "birthday", "op": "after", "value": "2026-06-01"}}`,
	`{"event": {"name": "Order Completed"}}`,
	`{"event": {"name": "Order Completed", "count": {"op": "at_least", "value": 2}, "within_last_days": 30}}`,
	`{"event": {"name": "Order Completed", "count": {"op": "at_most", "value": 1}}}`,
	`{"event": {"name": "Order Completed", "count": {"op": "exactly", "value": 0}}}`,
	`{"event": {"name": "Order Completed", "count": {"op": "exactly", "value": 2}}}`,
	`{"event": {"name": "Order Completed", "where": [{"property": "amount", "op": "gte", "value": 500}, {"property": "sku", "op": "in", "values": ["tea", "pot"]}]}}`,
	`{"event": {"name": "Signed Up", "within_last_days": 10}}`,
	`{"touched": {"touchpoint_id": "tp1"}}`,
	`{"touched": {"campaign_id": "c0", "within_last_days": 20}}`,
	`{"touched": {"channel": "ad"}}`,
	`{"stage": {"op": "is", "value": "converted"}}`,
	`{"stage": {"op": "at_least", "value": "activated"}}`,
	`{"stage": {"op": "reached", "value": "identified"}}`,
	`{"stage": {"op": "reached", "value": "connected"}}`,
	`{"stage": {"op": "reached", "value": "activated"}}`,
	`{"reachable": {"channel": "email"}}`,
}

func randomRule(r *rand.Rand, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		return leaves[r.IntN(len(leaves))]
	}
	switch r.IntN(3) {
	case 0:
		return `{"not": ` + randomRule(r, depth-1) + `}`
	default:
		parts := make([]string, 1+r.IntN(3))
		for i := range parts {
			parts[i] = randomRule(r, depth-1)
		}
		return `{"` + []string{"and", "or"}[r.IntN(2)] + `": [` + strings.Join(parts, ", ") + `]}`
	}
}

// TestRulesAgainstOracle evaluates random rules over a random world, over every profile and over random
// subsets (as a step of the engine does), and compares with the oracle.
func TestRulesAgainstOracle(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, 2))
			w := newWorld(t, engine.Open)
			w.populate(r, 60)
			people := w.people()
			if len(people) != 80 {
				t.Fatalf("%d people, want 80 (60 and 20 anonymous visitors)", len(people))
			}
			all := roaringOf(t, people, func(person) bool { return true })
			rules := append([]string(nil), leaves...)
			for range 150 {
				rules = append(rules, randomRule(r, 3))
			}
			svc := segment.NewService(w.db, w.clock, segment.NewEngine(w.db, w.clock, segment.Options{}), nil)
			telling := 0 // rules that some people match and some do not
			for _, text := range rules {
				rule, err := segment.ParseRule([]byte(text))
				must(t, err)
				want := roaringOf(t, people, func(x person) bool { return oracle(t, rule, x, now) })
				if n := want.GetCardinality(); n > 0 && n < all.GetCardinality() {
					telling++
				} else if slices.Contains(leaves, text) {
					t.Errorf("leaf %s matches %d of %d people: the world does not test it", text, n, all.GetCardinality())
				}
				got, err := segment.Match(ctx, w.db, rule, now, nil)
				must(t, err)
				if d := cmp.Diff(segment.ProfileIDs(want), segment.ProfileIDs(got)); d != "" {
					t.Fatalf("rule %s: members differ (-oracle +store):\n%s", text, d)
				}
				// A live count reads the rule's conditions side by side, each in a view of its own, and keeps
				// them for a minute: a count after a count is answered from what the first read.
				// It shows the newest of the people it matched.
				ids := segment.ProfileIDs(want)
				slices.Reverse(ids)
				sample := ids[:min(5, len(ids))]
				for range 2 {
					c, err := svc.Count(ctx, rule)
					must(t, err)
					if c.Size != int64(want.GetCardinality()) || !slices.Equal(c.Sample, sample) {
						t.Fatalf("rule %s: counted %d, %v; want %d, %v", text, c.Size, c.Sample, want.GetCardinality(), sample)
					}
				}
				within := all.Clone()
				for _, x := range people {
					if r.IntN(2) == 0 {
						n, _ := segment.ProfileNumber(x.id)
						within.Remove(n)
					}
				}
				got, err = segment.Match(ctx, w.db, rule, now, within)
				must(t, err)
				want.And(within)
				if d := cmp.Diff(segment.ProfileIDs(want), segment.ProfileIDs(got)); d != "" {
					t.Fatalf("rule %s among %d people: members differ (-oracle +store):\n%s", text, within.GetCardinality(), d)
				}
			}
			if telling < len(rules)/2 {
				t.Errorf("only %d of %d rules tell people apart", telling, len(rules))
			}
		})
	}
}

func roaringOf(t *testing.T, people []person, keep func(person) bool) *segment.Set {
	s := segment.NewSet()
	for _, x := range people {
		if keep(x) {
			n, err := segment.ProfileNumber(x.id)
			must(t, err)
			s.Add(n)
		}
	}
	return s
}

// run steps the engine until it has nothing left to do.
func run(t *testing.T, e *segment.Engine) {
	t.Helper()
	for range 100 {
		busy, err := e.Step(ctx)
		must(t, err)
		if !busy {
			return
		}
	}
	t.Fatal("the engine is still busy after 100 steps")
}

// members returns a segment's members by user id (or anonymous id), and checks that its size counts them.
func (w *world) members(id string) []string {
	w.t.Helper()
	seg, err := w.db.Segment(ctx, id)
	must(w.t, err)
	var users []string
	must(w.t, w.db.ExportMembers(ctx, id, func(m store.MemberExport) error {
		p, err := w.db.Profile(ctx, m.ProfileID)
		label := ""
		for _, i := range p.Identities {
			if i.Identifier.Type == identity.UserID || label == "" && i.Identifier.Type == identity.AnonymousID {
				label = i.Identifier.Value
			}
		}
		users = append(users, label)
		return err
	}))
	slices.Sort(users)
	if seg.Size != int64(len(users)) {
		w.t.Errorf("segment %s: size %d, but %d members", seg.Name, seg.Size, len(users))
	}
	return users
}

func rule(t *testing.T, text string) *segment.Rule {
	r, err := segment.ParseRule([]byte(text))
	must(t, err)
	return &r
}

func TestEngineKeepsMembersCurrent(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, engine.Open)
			order := func(user string, at time.Time) {
				w.add(at, map[string]any{"type": "track", "userId": user, "event": "Order Completed"})
			}
			for _, p := range []struct{ user, city, email string }{{"ada", "Shanghai", "ada@example.com"}, {"bo", "Shanghai", ""}, {"cy", "Beijing", "cy@example.com"}} {
				traits := map[string]any{"city": p.city}
				if p.email != "" {
					traits["email"] = p.email
				}
				w.add(daysAgo(90), map[string]any{"type": "identify", "userId": p.user, "traits": traits})
			}
			order("ada", daysAgo(20))
			order("ada", daysAgo(5))
			order("bo", daysAgo(3))
			order("cy", daysAgo(2))
			order("cy", daysAgo(1))
			w.process()

			eng := segment.NewEngine(w.db, w.clock, segment.Options{})
			svc := segment.NewService(w.db, w.clock, eng, func(context.Context) (identity.Rules, error) { return identity.DefaultRules(), nil })
			name := func(s string) *string { return &s }
			buyers, err := svc.Create(ctx, segment.Input{Name: name("Shanghai repeat buyers"), Rule: rule(t,
				`{"and": [{"trait": {"name": "city", "op": "equals", "value": "Shanghai"}}, {"event": {"name": "Order Completed", "count": {"op": "at_least", "value": 2}, "within_last_days": 30}}]}`)}, "test")
			must(t, err)
			mailable, err := svc.Create(ctx, segment.Input{Name: name("Mailable buyers"), Rule: rule(t,
				`{"and": [{"segment": {"id": "`+buyers.ID+`"}}, {"reachable": {"channel": "email"}}]}`)}, "test")
			must(t, err)
			list, err := svc.Create(ctx, segment.Input{Name: name("Fair visitors"), Kind: segment.ListKind}, "test")
			must(t, err)
			res, err := svc.ReplaceList(ctx, list.ID, []byte("Email,Name\nADA@example.com ,Ada\nnew@example.com,New\nnot-an-email,X\n"))
			must(t, err)
			if d := cmp.Diff(segment.ListResult{Items: 2, Rejected: []segment.Rejected{{Line: 4, Reason: "column 1 is not a valid email address"}}}, res); d != "" {
				t.Errorf("list (-want +got):\n%s", d)
			}
			run(t, eng)
			check := func(when string, seg segment.Segment, want ...string) {
				t.Helper()
				if d := cmp.Diff(want, w.members(seg.ID)); d != "" {
					t.Errorf("%s: members of %s (-want +got):\n%s", when, seg.Name, d)
				}
			}
			check("first", buyers, "ada")
			check("first", mailable, "ada")
			check("first", list, "ada")
			_, err = svc.Update(ctx, buyers.ID, segment.Input{Rule: rule(t, `{"and": [{"reachable": {"channel": "email"}}, {"segment": {"id": "`+mailable.ID+`"}}]}`)})
			if want := "rule.and[1].segment.id: uses segment " + mailable.ID + ", which uses this one"; err == nil || !strings.HasPrefix(hearth.MessageOf(err), want) {
				t.Errorf("a circle of segments: %v, want %q…", err, want)
			}
			if err := svc.Delete(ctx, buyers.ID); hearth.KindOf(err) != hearth.Conflict {
				t.Errorf("deleting a segment another uses: %v, want a conflict", err)
			}

			// Bo orders again and enters; an identifier on the list arrives with a new person.
			order("bo", daysAgo(0.5))
			w.add(now, map[string]any{"type": "identify", "anonymousId": "x1", "traits": map[string]any{"email": "new@example.com"}})
			w.process()
			run(t, eng)
			check("after orders", buyers, "ada", "bo")
			check("after orders", mailable, "ada") // bo has no email
			check("after orders", list, "ada", "x1")

			// Bo gives an email: the segment that uses the buyers follows.
			w.add(now, map[string]any{"type": "identify", "userId": "bo", "traits": map[string]any{"email": "bo@example.com"}})
			w.process()
			run(t, eng)
			check("after bo's email", mailable, "ada", "bo")

			// Eleven days on, ada's first order left the window: she leaves with no new event, and so the
			// segment that uses the buyers.
			w.clock.Advance(11 * 24 * time.Hour)
			run(t, eng)
			check("eleven days on", buyers, "bo")
			check("eleven days on", mailable, "bo")

			// Ada signs in on the browser of x1: the two profiles merge, and the list has one member left.
			w.add(w.clock.Now(), map[string]any{"type": "track", "event": "Viewed", "userId": "ada", "anonymousId": "x1"})
			w.process()
			run(t, eng)
			check("after the merge", list, "ada")

			ada, err := w.db.ProfileByIdentifier(ctx, identity.UserID, "ada")
			must(t, err)
			in, changes, err := w.db.ProfileSegments(ctx, ada.ID)
			must(t, err)
			var got []string
			for _, c := range changes {
				got = append(got, fmt.Sprintf("%s %v", c.Segment, c.Entered))
			}
			want := []string{"Mailable buyers false", "Shanghai repeat buyers false", "Fair visitors true", "Mailable buyers true", "Shanghai repeat buyers true"}
			if len(in) != 1 || in[0].ID != list.ID {
				t.Errorf("ada is in %v, want the list only", in)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("ada's changes, newest first (-want +got):\n%s", d)
			}
		})
	}
}

// TestEngineAgainstOracle keeps segments of random rules current through new events and the passing of
// time, and compares their members with the oracle after each step.
func TestEngineAgainstOracle(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(3, 4))
			w := newWorld(t, engine.Open)
			w.populate(r, 40)
			eng := segment.NewEngine(w.db, w.clock, segment.Options{})
			svc := segment.NewService(w.db, w.clock, eng, func(context.Context) (identity.Rules, error) { return identity.DefaultRules(), nil })
			var segs []segment.Segment
			for i := range 30 {
				text := randomRule(r, 3)
				name := fmt.Sprintf("s%d", i)
				s, err := svc.Create(ctx, segment.Input{Name: &name, Rule: rule(t, text)}, "test")
				must(t, err)
				segs = append(segs, s)
			}
			verify := func(when string) {
				t.Helper()
				people := w.people()
				for _, s := range segs {
					want := roaringOf(t, people, func(x person) bool { return oracle(t, *s.Rule, x, w.clock.Now()) })
					got := segment.NewSet()
					must(t, w.db.ExportMembers(ctx, s.ID, func(m store.MemberExport) error {
						n, err := segment.ProfileNumber(m.ProfileID)
						got.Add(n)
						return err
					}))
					if d := cmp.Diff(segment.ProfileIDs(want), segment.ProfileIDs(got)); d != "" {
						rj, _ := json.Marshal(s.Rule)
						t.Fatalf("%s: segment %s: members differ (-oracle +engine):\n%s", when, rj, d)
					}
				}
			}
			run(t, eng)
			verify("evaluated")
			w.populate(r, 40) // the same people again: new orders, touches and traits
			run(t, eng)
			verify("after new events")
			w.clock.Advance(12 * 24 * time.Hour)
			run(t, eng)
			verify("twelve days on")
		})
	}
}

func TestListReportsEveryRejectedLine(t *testing.T) {
	w := newWorld(t, storetest.SQLite)
	eng := segment.NewEngine(w.db, w.clock, segment.Options{})
	svc := segment.NewService(w.db, w.clock, eng, func(context.Context) (identity.Rules, error) { return identity.DefaultRules(), nil })
	name := "Fair"
	list, err := svc.Create(ctx, segment.Input{Name: &name, Kind: segment.ListKind}, "test")
	must(t, err)
	csv := "ada@example.com\n" + strings.Repeat("nobody\n", 1005)
	res, err := svc.ReplaceList(ctx, list.ID, []byte(csv))
	must(t, err)
	if res.Items != 1 || len(res.Rejected) != 1000 || res.MoreRejected != 5 || res.Rejected[0].Line != 2 {
		t.Errorf("items %d, rejected %d listed (first line %d) and %d more; want 1, 1000 from line 2, and 5", res.Items, len(res.Rejected), res.Rejected[0].Line, res.MoreRejected)
	}
}

// faultyStore fails the full evaluation of one segment, as a fault (a bug, a query the store refuses) would.
type faultyStore struct {
	*store.DB
	broken *string // the id of the segment whose members cannot be read; "" for none
}

func (s faultyStore) View(ctx context.Context, fn func(segment.Reader) error) error {
	return s.DB.View(ctx, func(r segment.Reader) error { return fn(faultyReader{r, *s.broken}) })
}

type faultyReader struct {
	segment.Reader
	broken string
}

func (r faultyReader) Members(ctx context.Context, id string, within *segment.Set) (*segment.Set, error) {
	if id == r.broken {
		return nil, fmt.Errorf("segment %s: a fault", id)
	}
	return r.Reader.Members(ctx, id, within)
}

// A segment whose evaluation fails again and again waits, and the others go on following the log; it is
// evaluated once it can be.
func TestEngineIsolatesAFailingSegment(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, engine.Open)
			city := func(user, name string) {
				w.add(daysAgo(1), map[string]any{"type": "identify", "userId": user, "traits": map[string]any{"city": name}})
			}
			city("ada", "Shanghai")
			city("bo", "Beijing")
			w.process()

			broken := ""
			eng := segment.NewEngine(faultyStore{w.db, &broken}, w.clock, segment.Options{})
			svc := segment.NewService(w.db, w.clock, eng, func(context.Context) (identity.Rules, error) { return identity.DefaultRules(), nil })
			name := func(s string) *string { return &s }
			shanghai, err := svc.Create(ctx, segment.Input{Name: name("Shanghai"), Rule: rule(t, `{"trait": {"name": "city", "op": "equals", "value": "Shanghai"}}`)}, "test")
			must(t, err)
			beijing, err := svc.Create(ctx, segment.Input{Name: name("Beijing"), Rule: rule(t, `{"trait": {"name": "city", "op": "equals", "value": "Beijing"}}`)}, "test")
			must(t, err)
			broken = shanghai.ID

			steps := 0
			for ; steps < 10; steps++ {
				if busy, _ := eng.Step(ctx); !busy && w.members(beijing.ID) != nil {
					break
				}
			}
			if steps == 10 {
				t.Fatalf("the other segment was never evaluated: %v", w.members(beijing.ID))
			}
			f, ok := eng.Failure(shanghai.ID)
			if !ok || f.Failures != 3 || !f.RetryAt.Equal(w.clock.Now().Add(time.Minute)) || !strings.Contains(f.Message, "a fault") {
				t.Errorf("failure %+v %v, want 3 failures and a retry in a minute", f, ok)
			}
			if _, ok := eng.Failure(beijing.ID); ok {
				t.Error("the segment that evaluates has a failure")
			}

			// The other segment follows the log while the failing one waits.
			city("cy", "Beijing")
			w.process()
			run(t, eng)
			if d := cmp.Diff([]string{"bo", "cy"}, w.members(beijing.ID)); d != "" {
				t.Errorf("the other segment while one fails (-want +got):\n%s", d)
			}
			if s, err := w.db.Segment(ctx, shanghai.ID); err != nil || !s.Evaluating() {
				t.Errorf("the failing segment: %+v %v, want it still to be evaluated", s, err)
			}

			// Mended, it is evaluated when its wait is over.
			broken = ""
			run(t, eng)
			if got := w.members(shanghai.ID); got != nil {
				t.Errorf("evaluated before its wait was over: %v", got)
			}
			w.clock.Advance(time.Minute)
			run(t, eng)
			if d := cmp.Diff([]string{"ada"}, w.members(shanghai.ID)); d != "" {
				t.Errorf("the mended segment (-want +got):\n%s", d)
			}
			if _, ok := eng.Failure(shanghai.ID); ok {
				t.Error("the mended segment still has a failure")
			}
		})
	}
}
