package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

// searchWorld is a graph of profiles as the processor stores them, named as it names them.
type searchWorld struct {
	db  *store.DB
	at  time.Time
	off int64 // the consumer offset of the batches written so far
}

// person is a profile to store: its name, identifiers, and the seqs of its events.
type person struct {
	id, name string
	ids      []identity.Identifier
	events   []int64
	steps    *profile.Steps // nil: identified when named
}

func (w *searchWorld) add(t testing.TB, people ...person) {
	t.Helper()
	ctx := context.Background()
	c := profile.Changes{From: w.off, Updates: map[string]profile.Update{}}
	upto := w.off
	for _, p := range people {
		first := p.events[0]
		at := w.at.Add(time.Duration(first) * time.Minute)
		c.New = append(c.New, profile.Profile{ID: p.id, FirstSeq: first, FirstSeen: at, LastSeen: at})
		for _, id := range p.ids {
			c.Identities = append(c.Identities, profile.Identity{Identifier: id, Profile: p.id, FirstSeq: first})
		}
		u := profile.Update{Name: p.name, Row: true}
		if p.steps != nil {
			u.Steps = *p.steps
		} else if p.name != "" {
			u.Steps.Identified = true
		}
		for _, seq := range p.events {
			c.Events = append(c.Events, profile.Attribution{Seq: seq, Profile: p.id})
			u.LastSeen = w.at.Add(time.Duration(seq) * time.Minute)
			upto = max(upto, seq)
		}
		c.Updates[p.id] = u
	}
	if err := w.db.ApplyProfiles(ctx, profile.Consumer, upto, c); err != nil {
		t.Fatal(err)
	}
	w.off = upto
}

func email(v string) identity.Identifier { return identity.Identifier{Type: identity.Email, Value: v} }
func phone(v string) identity.Identifier { return identity.Identifier{Type: identity.Phone, Value: v} }

// ids lists the ids of a page's profiles.
func ids(items []store.ProfileSummary) []string {
	out := make([]string, len(items))
	for i, p := range items {
		out[i] = p.ID
	}
	return out
}

// all reads every page of a search, limit at a time.
func all(t *testing.T, db *store.DB, q store.ProfileQuery) ([]store.ProfileSummary, int) {
	t.Helper()
	var out []store.ProfileSummary
	pages := 0
	for {
		page, err := db.SearchProfiles(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		out = append(out, page.Items...)
		if page.Next == "" {
			return out, pages
		}
		if len(page.Items) != q.Limit || pages > 100 {
			t.Fatalf("page %d has %d items and a next page", pages, len(page.Items))
		}
		q.Cursor = page.Next
	}
}

// Profiles are found by a prefix of their name, email or phone, each once, page by page; without a query the
// most recently active come first. A profile merged away leads to the profile it lives in.
func TestProfileSearch(t *testing.T) {
	for _, eng := range storetest.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
			db := eng.Open(t, clock)
			ctx := context.Background()
			w := &searchWorld{db: db, at: clock.Now()}
			ada := person{id: "pa", name: "Ada Lovelace", ids: []identity.Identifier{email("ada@example.com"), phone("+8613912345678")}, events: []int64{1, 40}}
			adam := person{id: "pb", name: "Adam Smith", ids: []identity.Identifier{email("zed@example.com"), email("adam@example.org")}, events: []int64{2, 20}}
			nameless := person{id: "pc", ids: []identity.Identifier{email("ada@zzz.com"), email("ada.l@example.com"), identity.Identifier{Type: identity.UserID, Value: "ada"}}, events: []int64{3, 30}}
			wang := person{id: "pd", name: "王 伟", ids: []identity.Identifier{phone("+8613912300000")}, events: []int64{4}}
			bob := person{id: "pe", name: "Bob", ids: []identity.Identifier{phone("+14155550123"), phone("+8613912399999")}, events: []int64{5, 35}}
			w.add(t, ada, adam, nameless, wang, bob)

			for _, tt := range []struct {
				name string
				q    store.ProfileQuery
				want []string
			}{
				// Names first, then emails; Ada is listed under her name only, the nameless profile once, at
				// its smaller email.
				{"name and email", store.ProfileQuery{NameKey: "ada", Email: "ada"}, []string{"pa", "pb", "pc"}},
				{"name", store.ProfileQuery{NameKey: "adam"}, []string{"pb"}},
				{"chinese name", store.ProfileQuery{NameKey: "王"}, []string{"pd"}},
				{"email", store.ProfileQuery{Email: "ada@"}, []string{"pa", "pc"}},
				{"email, other domain", store.ProfileQuery{Email: "adam@example.o"}, []string{"pb"}},
				// By value: +8613912300000, +8613912345678, +8613912399999.
				{"phone", store.ProfileQuery{Phones: []string{"+86139123"}}, []string{"pd", "pa", "pe"}},
				{"phones, one inside another", store.ProfileQuery{Phones: []string{"+8613912345", "+86139123", "+1415"}}, []string{"pe", "pd", "pa"}},
				{"nothing", store.ProfileQuery{NameKey: "zz", Email: "zz"}, []string{}},
				{"recent", store.ProfileQuery{}, []string{"pa", "pe", "pc", "pb", "pd"}},
			} {
				for _, limit := range []int{1, 2, 20} {
					tt.q.Limit = limit
					got, pages := all(t, db, tt.q)
					if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
						t.Errorf("%s, %d a page (-want +got):\n%s", tt.name, limit, diff)
					}
					if want := max(1, (len(tt.want)+limit-1)/limit); pages != want {
						t.Errorf("%s, %d a page: %d pages, want %d", tt.name, limit, pages, want)
					}
				}
			}

			// What a list shows: the identifier that matched, else the first.
			page, err := db.SearchProfiles(ctx, store.ProfileQuery{Phones: []string{"+86139123999"}})
			if err != nil {
				t.Fatal(err)
			}
			want := store.ProfileSummary{ID: "pe", Name: "Bob", Stage: "identified", FirstSeen: clock.Now().Add(5 * time.Minute),
				LastSeen: clock.Now().Add(35 * time.Minute), Phone: "+8613912399999"}
			if diff := cmp.Diff([]store.ProfileSummary{want}, page.Items); diff != "" {
				t.Errorf("phone search (-want +got):\n%s", diff)
			}
			page, err = db.SearchProfiles(ctx, store.ProfileQuery{Email: "ada."})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 1 || page.Items[0].Email != "ada.l@example.com" || page.Items[0].Name != "" || page.Items[0].Stage != "anonymous" {
				t.Errorf("email search: %+v", page.Items)
			}
			sum, err := db.ProfileSummary(ctx, "pa")
			if err != nil {
				t.Fatal(err)
			}
			if sum.Name != "Ada Lovelace" || sum.Email != "ada@example.com" || sum.Phone != "+8613912345678" || !sum.LastSeen.Equal(clock.Now().Add(40*time.Minute)) {
				t.Errorf("ProfileSummary = %+v", sum)
			}
			_, err = db.ProfileSummary(ctx, "nope")
			wantKind(t, err, hearth.NotFound)

			// Cursors are checked.
			for _, c := range []string{"!!", "eA", "bm9wZQ"} {
				_, err = db.SearchProfiles(ctx, store.ProfileQuery{NameKey: "ada", Cursor: c})
				wantKind(t, err, hearth.Invalid)
			}
			page, err = db.SearchProfiles(ctx, store.ProfileQuery{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.SearchProfiles(ctx, store.ProfileQuery{NameKey: "ada", Cursor: page.Next})
			wantKind(t, err, hearth.Invalid)

			// Many of one name, page by page, in the order of their names.
			var chens []person
			for i := range 45 {
				id := fmt.Sprintf("pz%02d", i)
				chens = append(chens, person{id: id, name: fmt.Sprintf("Chen %d", i%15), events: []int64{int64(100 + i)}})
			}
			w.add(t, chens...)
			got, _ := all(t, db, store.ProfileQuery{NameKey: "chen", Limit: 7})
			var gotChens []string
			for _, p := range got {
				gotChens = append(gotChens, p.ID)
			}
			// chen0, chen1, chen10, chen11, …: by name key, then id.
			sortedKeys := []int{0, 1, 10, 11, 12, 13, 14, 2, 3, 4, 5, 6, 7, 8, 9}
			var wantChens []string
			for _, k := range sortedKeys {
				for i := range 45 {
					if i%15 == k {
						wantChens = append(wantChens, fmt.Sprintf("pz%02d", i))
					}
				}
			}
			if diff := cmp.Diff(wantChens, gotChens); diff != "" {
				t.Errorf("45 Chens, 7 a page (-want +got):\n%s", diff)
			}
			recent, _ := all(t, db, store.ProfileQuery{Limit: 10})
			if len(recent) != 50 || recent[0].ID != "pz44" || recent[45].ID != "pa" || recent[49].ID != "pd" {
				t.Errorf("recent, 10 a page: %d profiles, %v", len(recent), ids(recent))
			}

			// Merges: pf into pg, then pg into pa. pf and pg lead to pa; pa and an unknown id to nothing.
			w.add(t, person{id: "pf", ids: []identity.Identifier{email("f@example.com")}, events: []int64{200}},
				person{id: "pg", ids: []identity.Identifier{email("g@example.com")}, events: []int64{201}})
			if err := db.ApplyProfiles(ctx, profile.Consumer, 203, profile.Changes{From: w.off, Merges: []profile.Merge{
				{Seq: 202, Into: "pg", From: "pf", Via: email("f@example.com"), At: clock.Now()},
				{Seq: 203, Into: "pa", From: "pg", Via: email("g@example.com"), At: clock.Now()},
			}}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"pf", "pg"} {
				into, err := db.ProfileMergedInto(ctx, id)
				if err != nil || into != "pa" {
					t.Errorf("ProfileMergedInto(%s) = %q, %v; want pa", id, into, err)
				}
			}
			for _, id := range []string{"pa", "nope"} {
				_, err := db.ProfileMergedInto(ctx, id)
				wantKind(t, err, hearth.NotFound)
			}
		})
	}
}

// A search can list only the people who reached a lifecycle step. Recent activity is read back in windows of
// the log, a bounded stretch of it a page: a page may end short, with where the next goes on from.
func TestProfileSearchByStep(t *testing.T) {
	for _, eng := range storetest.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
			db := eng.Open(t, clock)
			w := &searchWorld{db: db, at: clock.Now()}
			// The seqs are far apart, as in a long log: Eve's latest event is 400,000, Ada's 300,000 (more than
			// one page's look back apart from Cy's, 50).
			w.add(t,
				person{id: "pa", name: "Ada", ids: []identity.Identifier{email("ada@example.com")}, events: []int64{10, 300_000},
					steps: &profile.Steps{Identified: true, Connected: true, Converted: true}},
				person{id: "pb", events: []int64{20, 250_000}, steps: &profile.Steps{Activated: true}},
				person{id: "pc", name: "Cy", events: []int64{30, 50}},
				person{id: "pd", events: []int64{260_000, 310_000}},
				person{id: "pe", name: "Eve", ids: []identity.Identifier{email("eve@example.com")}, events: []int64{400_000},
					steps: &profile.Steps{Identified: true, Connected: true}})
			for _, tt := range []struct {
				name  string
				q     store.ProfileQuery
				pages [][]string
			}{
				{"everyone", store.ProfileQuery{Limit: 20}, [][]string{{"pe", "pd", "pa", "pb", "pc"}}},
				{"identified", store.ProfileQuery{Step: profile.Identified, Limit: 20}, [][]string{{"pe", "pa"}, {"pc"}}},
				{"identified, one a page", store.ProfileQuery{Step: profile.Identified, Limit: 1}, [][]string{{"pe"}, {"pa"}, {"pc"}}},
				{"connected", store.ProfileQuery{Step: profile.Connected, Limit: 20}, [][]string{{"pe", "pa"}, {}}},
				{"activated", store.ProfileQuery{Step: profile.Activated, Limit: 20}, [][]string{{"pb"}, {}}},
				{"converted by email", store.ProfileQuery{Email: "a", Step: profile.Converted, Limit: 20}, [][]string{{"pa"}}},
				{"connected by name", store.ProfileQuery{NameKey: "eve", Step: profile.Connected, Limit: 20}, [][]string{{"pe"}}},
				{"activated by name", store.ProfileQuery{NameKey: "cy", Step: profile.Activated, Limit: 20}, [][]string{{}}},
			} {
				var got [][]string
				q := tt.q
				for range 10 {
					page, err := db.SearchProfiles(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ids(page.Items))
					if page.Next == "" {
						break
					}
					q.Cursor = page.Next
				}
				if diff := cmp.Diff(tt.pages, got); diff != "" {
					t.Errorf("%s: pages (-want +got):\n%s", tt.name, diff)
				}
			}
		})
	}
}

// Profiles are counted by the steps they meet, each combination on its own; a profile merged away is no
// longer counted.
func TestProfileSteps(t *testing.T) {
	for _, eng := range storetest.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
			db := eng.Open(t, clock)
			ctx := context.Background()
			steps := func(want map[profile.Steps]int64) {
				t.Helper()
				got, err := db.ProfileSteps(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ProfileSteps (-want +got):\n%s", diff)
				}
			}
			steps(map[profile.Steps]int64{})
			w := &searchWorld{db: db, at: clock.Now()}
			w.add(t, person{id: "pa", name: "Ada", ids: []identity.Identifier{email("ada@example.com")}, events: []int64{1}},
				person{id: "pb", name: "Bob", ids: []identity.Identifier{email("bob@example.com")}, events: []int64{2}},
				person{id: "pc", ids: []identity.Identifier{email("c@example.com")}, events: []int64{3}},
				person{id: "pd", ids: []identity.Identifier{email("d@example.com")}, events: []int64{4}})
			identified := profile.Steps{Identified: true}
			steps(map[profile.Steps]int64{{}: 2, identified: 2})
			// Ada buys; an anonymous visitor's product view activates pc, who is not identified.
			converted := profile.Steps{Identified: true, Converted: true}
			activated := profile.Steps{Activated: true}
			if err := db.ApplyProfiles(ctx, profile.Consumer, 5, profile.Changes{From: w.off,
				Events: []profile.Attribution{{Seq: 5, Profile: "pa"}},
				Updates: map[string]profile.Update{"pa": {LastSeen: clock.Now(), Steps: converted, Name: "Ada", ConvertedAt: clock.Now(), Row: true},
					"pc": {LastSeen: clock.Now(), Steps: activated, ActivatedAt: clock.Now(), Row: true}},
			}); err != nil {
				t.Fatal(err)
			}
			w.off = 5
			steps(map[profile.Steps]int64{{}: 1, identified: 1, converted: 1, activated: 1})
			if err := db.ApplyProfiles(ctx, profile.Consumer, 6, profile.Changes{From: w.off,
				Merges: []profile.Merge{{Seq: 6, Into: "pc", From: "pd", Via: email("d@example.com"), At: clock.Now()}}}); err != nil {
				t.Fatal(err)
			}
			steps(map[profile.Steps]int64{identified: 1, converted: 1, activated: 1})
		})
	}
}

func wantKind(t *testing.T, err error, kind hearth.Kind) {
	t.Helper()
	if got := hearth.KindOf(err); err == nil || got != kind {
		t.Fatalf("error = %v (kind %v), want kind %v", err, got, kind)
	}
}

// Search reads prefix ranges in byte order, as its cursors compare: on a PostgreSQL database whose default
// collation is a language's (ICU's English ignores punctuation at first), the columns it ranges over still
// compare in byte order, so a prefix with a dot or a hyphen finds what starts with it.
func TestProfileSearchUnderLanguageCollation(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
	db := storetest.PostgresDatabase(t, clock, `LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`)
	w := &searchWorld{db: db, at: clock.Now()}
	w.add(t,
		person{id: "pa", name: "a-c", ids: []identity.Identifier{email("a.b@example.com")}, events: []int64{1}},
		person{id: "pb", name: "ab", ids: []identity.Identifier{email("ab@example.com")}, events: []int64{2}},
		person{id: "pc", name: "a.d", ids: []identity.Identifier{email("a-x@example.com"), phone("+8613912345678")}, events: []int64{3}},
		person{id: "pd", name: "Zoe", ids: []identity.Identifier{email("zed@example.com")}, events: []int64{4}},
	)
	for _, tt := range []struct {
		name string
		q    store.ProfileQuery
		want []string
	}{
		{"name with a hyphen", store.ProfileQuery{NameKey: "a-"}, []string{"pa"}},
		{"name", store.ProfileQuery{NameKey: "a"}, []string{"pa", "pc", "pb"}},
		{"email with a dot", store.ProfileQuery{Email: "a."}, []string{"pa"}},
		{"email with a hyphen", store.ProfileQuery{Email: "a-"}, []string{"pc"}},
		{"phone", store.ProfileQuery{Phones: []string{"+86139"}}, []string{"pc"}},
		{"name ending in z", store.ProfileQuery{NameKey: "z"}, []string{"pd"}},
		{"email ending in z", store.ProfileQuery{Email: "z"}, []string{"pd"}},
	} {
		for _, limit := range []int{1, 20} {
			tt.q.Limit = limit
			got, _ := all(t, db, tt.q)
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("%s, %d a page (-want +got):\n%s", tt.name, limit, diff)
			}
		}
	}
}

// A cursor comes back from the client as it likes: any text is a page after some row or Invalid, never a
// panic or another error, for every kind of search.
func FuzzProfileSearchCursor(f *testing.F) {
	clock := storetest.NewClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
	db := storetest.SQLite(f, clock)
	w := &searchWorld{db: db, at: clock.Now()}
	w.add(f,
		person{id: "pa", name: "Ada Lovelace", ids: []identity.Identifier{email("ada@example.com"), phone("+8613912345678")}, events: []int64{1, 40}},
		person{id: "pb", name: "Adam", ids: []identity.Identifier{email("adam@example.org")}, events: []int64{2, 30_000},
			steps: &profile.Steps{Identified: true, Converted: true}},
		person{id: "pc", ids: []identity.Identifier{phone("+8613912300000")}, events: []int64{3}})
	queries := []store.ProfileQuery{{NameKey: "ada", Email: "ada"}, {Phones: []string{"+86139"}}, {}}
	steps := []profile.Stage{"", profile.Identified, profile.Converted}
	for _, q := range queries {
		for _, st := range steps {
			q.Step, q.Limit = st, 1
			page, err := db.SearchProfiles(context.Background(), q)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(page.Next, uint8(0), uint8(0))
		}
	}
	f.Add("cjEyMwAx", uint8(2), uint8(1))
	f.Add("", uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, cursor string, qi, si uint8) {
		q := queries[int(qi)%len(queries)]
		q.Step, q.Limit, q.Cursor = steps[int(si)%len(steps)], 2, cursor
		page, err := db.SearchProfiles(context.Background(), q)
		if err != nil {
			if hearth.KindOf(err) != hearth.Invalid {
				t.Fatalf("cursor %q: %v, want Invalid", cursor, err)
			}
			return
		}
		if len(page.Items) > 2 {
			t.Fatalf("cursor %q: a page of %d", cursor, len(page.Items))
		}
	})
}
