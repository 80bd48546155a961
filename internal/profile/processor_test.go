package profile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

var (
	ctx   = context.Background()
	start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// step is one event of the story: its Segment type and payload fields.
type step struct {
	typ     string
	payload map[string]any
	source  string // default web
	bot     bool
}

// story is a customer's events, in log order (seq 1, 2, …).
var story = []step{
	{"page", map[string]any{"anonymousId": "a1"}, "", false},                                                           // 1: anonymous visit: new profile P1
	{"identify", map[string]any{"anonymousId": "a1", "userId": "u1"}, "", false},                                       // 2: sign-in: u1 joins P1
	{"identify", map[string]any{"userId": "u1", "traits": map[string]any{"email": "Ada@Example.com "}}, "", false},     // 3: email joins P1
	{"page", map[string]any{"anonymousId": "a2"}, "", false},                                                           // 4: a second device: new profile P4
	{"identify", map[string]any{"anonymousId": "a2", "traits": map[string]any{"email": "ada@example.com"}}, "", false}, // 5: P4 merges into P1
	{"track", map[string]any{"anonymousId": "t1", "userId": "u1", "event": "Product Viewed"}, "", false},               // 6: a shared tablet, u1 first: t1 joins P1; activated
	{"track", map[string]any{"anonymousId": "t1", "userId": "u2", "event": "Viewed"}, "", false},                       // 7: u2 on it: t1 left out, new profile P7
	{"page", map[string]any{"anonymousId": "t1"}, "", false},                                                           // 8: the tablet alone: P1
	{"page", map[string]any{"anonymousId": "undefined"}, "", false},                                                    // 9: no identifier: skipped
	{"track", map[string]any{"userId": "u2", "event": "Order Completed"}, "", false},                                   // 10: P7 converted
	// A merge that brings a user id along: a later event may not link a second one to it.
	{"identify", map[string]any{"anonymousId": "a4", "traits": map[string]any{"email": "bo@example.com"}}, "", false},                        // 11: new profile P11
	{"track", map[string]any{"userId": "u3", "event": "Viewed", "context": map[string]any{"device": map[string]any{"id": "d1"}}}, "", false}, // 12: new profile P12
	{"page", map[string]any{"anonymousId": "a4", "context": map[string]any{"device": map[string]any{"id": "d1"}}}, "", false},                // 13: P12 merges into P11
	{"identify", map[string]any{"userId": "u4", "traits": map[string]any{"email": "bo@example.com"}}, "", false},                             // 14: email left out, new profile P14
}

// appendStory writes the story to the log, the nth event at start + n minutes.
func appendStory(t *testing.T, db *store.DB, clock *storetest.Clock) {
	t.Helper()
	appendSteps(t, db, clock, 1, story)
}

// appendSteps writes steps to the log as events first, first+1, …: the nth at start + n minutes, with message
// id mn, one a batch, so that in an empty log their seqs are their numbers.
func appendSteps(t *testing.T, db *store.DB, clock *storetest.Clock, first int, steps []step) {
	t.Helper()
	w := store.NewEventWriter(db, store.EventWriterOptions{})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(runCtx); err != nil {
			t.Errorf("event writer: %v", err)
		}
	}()
	defer func() { cancel(); <-done }()
	for i, s := range steps {
		i += first - 1
		fields := maps.Clone(s.payload) // the story is shared by tests that run at once
		fields["type"] = s.typ
		fields["messageId"] = fmt.Sprintf("m%d", i+1)
		payload, err := json.Marshal(fields)
		must(t, err)
		user, _ := s.payload["userId"].(string)
		anon, _ := s.payload["anonymousId"].(string)
		name, _ := s.payload["event"].(string)
		e := collect.Event{MessageID: fmt.Sprintf("m%d", i+1), Type: s.typ, Name: name, UserID: user, AnonymousID: anon,
			Timestamp: at(i + 1), ReceivedAt: clock.Now(), Bot: s.bot, Payload: payload}
		source := s.source
		if source == "" {
			source = "web"
		}
		if _, err := w.Append(ctx, &collect.Batch{SourceID: source, ReceivedAt: clock.Now(), Events: []collect.Event{e}}); err != nil {
			t.Fatal(err)
		}
	}
}

func at(seq int) time.Time { return start.Add(time.Duration(seq) * time.Minute) }

// processAll runs the processor to the end of the log and returns how many events it read.
func processAll(t *testing.T, p *profile.Processor) int {
	t.Helper()
	total := 0
	for {
		n, err := p.Process(ctx)
		must(t, err)
		if n == 0 {
			return total
		}
		total += n
	}
}

func id(t identity.Type, v string) identity.Identifier { return identity.Identifier{Type: t, Value: v} }

// state is what the processor stored for the story, as the API reads it.
type state struct {
	Profiles  map[string]profile.Profile
	Timelines map[string][]int64
	LeftOut   []profile.LeftOut
}

func readState(t *testing.T, db *store.DB) state {
	t.Helper()
	s := state{Profiles: map[string]profile.Profile{}, Timelines: map[string][]int64{}}
	for _, ident := range []identity.Identifier{id(identity.UserID, "u1"), id(identity.UserID, "u2"), id(identity.UserID, "u3"), id(identity.UserID, "u4")} {
		p, err := db.ProfileByIdentifier(ctx, ident.Type, ident.Value)
		must(t, err)
		s.Profiles[p.ID] = p
		evs, err := db.ProfileEvents(ctx, p.ID, 0, 100)
		must(t, err)
		for _, e := range evs {
			s.Timelines[p.ID] = append(s.Timelines[p.ID], e.Seq)
		}
	}
	var err error
	s.LeftOut, err = db.LeftOut(ctx, 0, 1000)
	must(t, err)
	return s
}

func TestProcessor(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			for _, batch := range []int{1000, 3, 1} {
				t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
					t.Parallel()
					testProcessor(t, engine.Open, batch)
				})
			}
		})
	}
}

func testProcessor(t *testing.T, open func(testing.TB, hearth.Clock) *store.DB, batch int) {
	clock := storetest.NewClock(start.Add(time.Hour))
	db := open(t, clock)
	appendStory(t, db, clock)
	p := profile.NewProcessor(db, profile.Options{BatchSize: batch})
	if n := processAll(t, p); n != len(story) {
		t.Errorf("processed %d events, want %d", n, len(story))
	}
	if n, err := p.Process(ctx); n != 0 || err != nil {
		t.Errorf("Process at the end of the log = %d, %v; want 0, nil", n, err)
	}
	off, err := db.ConsumerOffset(ctx, profile.Consumer)
	must(t, err)
	if off != int64(len(story)) {
		t.Errorf("offset = %d, want %d", off, len(story))
	}

	p1, p7, p11, p14 := profile.ProfileID(1), profile.ProfileID(7), profile.ProfileID(11), profile.ProfileID(14)
	now := clock.Now()
	want := state{
		Profiles: map[string]profile.Profile{
			p1: {ID: p1, FirstSeq: 1, FirstSeen: at(1), LastSeen: at(8), CreatedAt: now, UpdatedAt: now,
				Identities: []profile.Identity{
					{Identifier: id(identity.AnonymousID, "a1"), Profile: p1, FirstSeq: 1},
					{Identifier: id(identity.UserID, "u1"), Profile: p1, FirstSeq: 2},
					{Identifier: id(identity.Email, "ada@example.com"), Profile: p1, FirstSeq: 3},
					{Identifier: id(identity.AnonymousID, "a2"), Profile: p1, FirstSeq: 4},
					{Identifier: id(identity.AnonymousID, "t1"), Profile: p1, FirstSeq: 6},
				},
				Merges: []profile.Merge{{Seq: 5, Into: p1, From: profile.ProfileID(4), Via: id(identity.AnonymousID, "a2"), At: at(5)}},
				// The email of the later event wins, as written there; it came with the profile merged in.
				Traits: []profile.Trait{{Name: "email", Value: json.RawMessage(`"ada@example.com"`), SourceID: "web", Seq: 5, At: at(5)}},
				Stage:  profile.Activated, ActivatedAt: at(6),
				Stages: []profile.StageChange{{Seq: 2, From: profile.Anonymous, To: profile.Identified, At: at(2)},
					{Seq: 3, From: profile.Identified, To: profile.Connected, At: at(3)}, {Seq: 6, From: profile.Connected, To: profile.Activated, At: at(6)}},
			},
			p7: {ID: p7, FirstSeq: 7, FirstSeen: at(7), LastSeen: at(10), CreatedAt: now, UpdatedAt: now,
				Identities: []profile.Identity{{Identifier: id(identity.UserID, "u2"), Profile: p7, FirstSeq: 7}},
				Stage:      profile.Converted, ConvertedAt: at(10),
				Stages: []profile.StageChange{{Seq: 7, From: profile.Anonymous, To: profile.Identified, At: at(7)},
					{Seq: 10, From: profile.Identified, To: profile.Converted, At: at(10)}}},
			p11: {ID: p11, FirstSeq: 11, FirstSeen: at(11), LastSeen: at(13), CreatedAt: now, UpdatedAt: now,
				Identities: []profile.Identity{
					{Identifier: id(identity.AnonymousID, "a4"), Profile: p11, FirstSeq: 11},
					{Identifier: id(identity.Email, "bo@example.com"), Profile: p11, FirstSeq: 11},
					{Identifier: id(identity.DeviceID, "d1"), Profile: p11, FirstSeq: 12},
					{Identifier: id(identity.UserID, "u3"), Profile: p11, FirstSeq: 12},
				},
				Merges: []profile.Merge{{Seq: 13, Into: p11, From: profile.ProfileID(12), Via: id(identity.DeviceID, "d1"), At: at(13)}},
				Traits: []profile.Trait{{Name: "email", Value: json.RawMessage(`"bo@example.com"`), SourceID: "web", Seq: 11, At: at(11)}},
				Stage:  profile.Connected,
				// P12's own change (identified at 12) ended with it.
				Stages: []profile.StageChange{{Seq: 11, From: profile.Anonymous, To: profile.Connected, At: at(11)}},
			},
			// The email was left out of the graph, but it is what the person said: a trait.
			p14: {ID: p14, FirstSeq: 14, FirstSeen: at(14), LastSeen: at(14), CreatedAt: now, UpdatedAt: now,
				Identities: []profile.Identity{{Identifier: id(identity.UserID, "u4"), Profile: p14, FirstSeq: 14}},
				Traits:     []profile.Trait{{Name: "email", Value: json.RawMessage(`"bo@example.com"`), SourceID: "web", Seq: 14, At: at(14)}},
				Stage:      profile.Identified,
				Stages:     []profile.StageChange{{Seq: 14, From: profile.Anonymous, To: profile.Identified, At: at(14)}}},
		},
		Timelines: map[string][]int64{p1: {8, 6, 5, 4, 3, 2, 1}, p7: {10, 7}, p11: {13, 12, 11}, p14: {14}},
		LeftOut: []profile.LeftOut{
			{Seq: 7, Identifier: id(identity.AnonymousID, "t1"), Reason: "limit:user_id"},
			{Seq: 14, Identifier: id(identity.Email, "bo@example.com"), Reason: "limit:user_id"},
		},
	}
	for _, p := range want.Profiles { // each identifier read whole with the time of the event that brought it
		for i := range p.Identities {
			p.Identities[i].FirstAt = at(int(p.Identities[i].FirstSeq))
		}
	}
	got := readState(t, db)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("profiles (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name  string
		ident identity.Identifier
		want  string
	}{
		{"second device", id(identity.AnonymousID, "a2"), p1},
		{"tablet stays with its first user", id(identity.AnonymousID, "t1"), p1},
		{"email", id(identity.Email, "ada@example.com"), p1},
	} {
		got, err := db.ProfileByIdentifier(ctx, tc.ident.Type, tc.ident.Value)
		must(t, err)
		if got.ID != tc.want {
			t.Errorf("%s: profile of %s = %s, want %s", tc.name, tc.ident, got.ID, tc.want)
		}
	}
	_, err = db.Profile(ctx, profile.ProfileID(4))
	if hearth.KindOf(err) != hearth.NotFound {
		t.Errorf("the merged profile: error %v, want NotFound", err)
	}
	_, err = db.ProfileByIdentifier(ctx, identity.AnonymousID, "undefined")
	if hearth.KindOf(err) != hearth.NotFound {
		t.Errorf("a junk identifier: error %v, want NotFound", err)
	}
	page, err := db.ProfileEvents(ctx, p1, 5, 2)
	must(t, err)
	if len(page) != 2 || page[0].Seq != 4 || page[1].Seq != 3 {
		t.Errorf("ProfileEvents(before 5, limit 2) = %v, want seqs 4, 3", page)
	}

	// Replaying the log from the start, into a store without profiles, gives the same profiles, ids included.
	replay := open(t, clock)
	appendStory(t, replay, clock)
	processAll(t, profile.NewProcessor(replay, profile.Options{BatchSize: 1000}))
	if diff := cmp.Diff(got, readState(t, replay)); diff != "" {
		t.Errorf("replayed (-first +replay):\n%s", diff)
	}
}

func TestRun(t *testing.T) {
	clock := storetest.NewClock(start.Add(time.Hour))
	db := storetest.SQLite(t, clock)
	appendStory(t, db, clock)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- profile.NewProcessor(db, profile.Options{BatchSize: 4, Interval: time.Millisecond}).Run(runCtx)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("Run did not reach the end of the log")
		}
		off, err := db.ConsumerOffset(ctx, profile.Consumer)
		must(t, err)
		if off == int64(len(story)) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if _, err := db.ProfileByIdentifier(ctx, identity.UserID, "u2"); err != nil {
		t.Errorf("after Run: %v", err)
	}
}

// Two processors on one store, as two nodes on one PostgreSQL run them, store the same profiles as one: a
// batch resolved against an offset that the other moved meanwhile is refused, and read again.
func TestProcessorsRace(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(start.Add(time.Hour))
			alone := engine.Open(t, clock)
			appendStory(t, alone, clock)
			processAll(t, profile.NewProcessor(alone, profile.Options{BatchSize: 2}))

			shared := engine.Open(t, clock)
			appendStory(t, shared, clock)
			var wg sync.WaitGroup
			for range 2 {
				p := profile.NewProcessor(shared, profile.Options{BatchSize: 2})
				wg.Go(func() {
					for {
						off, err := shared.ConsumerOffset(ctx, profile.Consumer)
						if err != nil || off == int64(len(story)) {
							return
						}
						if _, err := p.Process(ctx); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if diff := cmp.Diff(readState(t, alone), readState(t, shared), cmpopts.IgnoreFields(profile.Profile{}, "CreatedAt", "UpdatedAt")); diff != "" {
				t.Errorf("two processors stored other profiles than one (-one +two):\n%s", diff)
			}
		})
	}
}

// A person across a poster, WeChat and the CRM: the processor maps each source's traits, keeps the winner
// per trait with its provenance, sums touches per touchpoint across a merge, leaves bots out, and moves the
// stage as the person becomes reachable and opts out.
func TestProcessorFacts(t *testing.T) {
	touch := func(anon string) map[string]any {
		return map[string]any{"anonymousId": anon, "event": "Touch",
			"properties": map[string]any{"touchpoint_id": "tp1", "touchpoint": "Spring poster", "channel": "qr_poster", "campaign_id": "c1"}}
	}
	openID := map[string]any{"externalIds": []any{map[string]any{"type": "wechat_openid", "id": "o-xiaoming"}}}
	steps := []step{
		{"track", touch("a9"), "", false},     // 1: a poster scan: P1, one touch
		{"track", touch("scanner"), "", true}, // 2: a link scanner: no profile
		{"identify", map[string]any{"anonymousId": "o-xiaoming", "traits": map[string]any{"nickname": "小明", "sex": 1}, "context": openID}, "wechat", false},           // 3: P3
		{"track", map[string]any{"anonymousId": "o-xiaoming", "event": "WeChat Followed", "context": openID}, "wechat", false},                                        // 4: P3 connected
		{"identify", map[string]any{"userId": "u9", "traits": map[string]any{"mobile": "139 1234 5678", "name": "王小明", "vip": "2"}, "context": openID}, "crm", false}, // 5
		{"identify", map[string]any{"anonymousId": "o-xiaoming", "traits": map[string]any{"nickname": "明明"}, "context": openID}, "wechat", false},                     // 6: CRM's name stays
		{"track", touch("a9"), "", false},                                                                                        // 7: P1 again
		{"identify", map[string]any{"anonymousId": "a9", "userId": "u9"}, "", false},                                             // 8: P3 merges into P1
		{"track", map[string]any{"anonymousId": "o-xiaoming", "event": "WeChat Unfollowed", "context": openID}, "wechat", false}, // 9
		// The CRM sends the same values again (only their provenance moves), WeChat a new one.
		{"identify", map[string]any{"userId": "u9", "traits": map[string]any{"mobile": "139 1234 5678", "vip": "2"}}, "crm", false},       // 10
		{"identify", map[string]any{"anonymousId": "o-xiaoming", "traits": map[string]any{"sex": 2}, "context": openID}, "wechat", false}, // 11
	}
	settings := profile.Settings{
		Mappings: []profile.Mapping{
			{SourceID: "wechat", Fields: []profile.FieldMap{{From: "nickname", To: "name"}, {From: "sex", To: "gender", Values: map[string]any{"1": "male", "2": "female"}}}},
			{SourceID: "crm", Fields: []profile.FieldMap{{From: "vip", To: "vip_level", Type: "number"}}},
		},
		Traits:    []profile.TraitRule{{Name: "name", Precedence: profile.SourcePriority, Sources: []string{"crm", "wechat"}}},
		Lifecycle: profile.DefaultSettings().Lifecycle,
	}
	must(t, settings.Validate())
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(start.Add(time.Hour))
			db := engine.Open(t, clock)
			appendSteps(t, db, clock, 1, steps)
			processAll(t, profile.NewProcessor(db, profile.Options{BatchSize: 4, Settings: &settings}))

			got, err := db.ProfileByIdentifier(ctx, identity.WeChatOpenID, "o-xiaoming")
			must(t, err)
			p1 := profile.ProfileID(1)
			if got.ID != p1 {
				t.Fatalf("the openid's profile = %s, want %s (P3 merged into P1)", got.ID, p1)
			}
			trait := func(name, value, source string, seq int) profile.Trait {
				return profile.Trait{Name: name, Value: json.RawMessage(value), SourceID: source, Seq: int64(seq), At: at(seq)}
			}
			wantTraits := []profile.Trait{
				trait("gender", `"female"`, "wechat", 11),
				trait("mobile", `"139 1234 5678"`, "crm", 10),
				trait("name", `"王小明"`, "crm", 5),
				trait("vip_level", `2`, "crm", 10),
				trait("wechat_subscribed", `false`, "wechat", 9),
			}
			if diff := cmp.Diff(wantTraits, got.Traits); diff != "" {
				t.Errorf("traits (-want +got):\n%s", diff)
			}
			wantTouches := []profile.Touch{{TouchpointID: "tp1", Touchpoint: "Spring poster", Channel: "qr_poster", CampaignID: "c1", Count: 2,
				FirstSeq: 1, First: at(1), LastSeq: 7, Last: at(7)}}
			if diff := cmp.Diff(wantTouches, got.Touches); diff != "" {
				t.Errorf("touches (-want +got):\n%s", diff)
			}
			// P1 was anonymous until the merge brought the phone and openid: connected at 8. The unfollow at 9
			// leaves the phone reachable.
			wantStages := []profile.StageChange{{Seq: 8, From: profile.Anonymous, To: profile.Connected, At: at(8)}}
			if diff := cmp.Diff(wantStages, got.Stages); diff != "" {
				t.Errorf("stage changes (-want +got):\n%s", diff)
			}
			if got.Stage != profile.Connected || got.Name != "王小明" {
				t.Errorf("stage, name = %s, %q", got.Stage, got.Name)
			}
			// Batches that only move last seen leave the row's other columns alone, and still move it.
			if !got.FirstSeen.Equal(at(1)) || !got.LastSeen.Equal(at(11)) {
				t.Errorf("first, last seen = %v, %v; want %v, %v", got.FirstSeen, got.LastSeen, at(1), at(11))
			}
			if _, err := db.ProfileByIdentifier(ctx, identity.AnonymousID, "scanner"); hearth.KindOf(err) != hearth.NotFound {
				t.Errorf("a link scanner's event made a profile: %v", err)
			}
		})
	}
}

// An admin's stored settings replace the processor's from the next batch on.
func TestProcessorFollowsStoredConfig(t *testing.T) {
	clock := storetest.NewClock(start.Add(time.Hour))
	db := storetest.SQLite(t, clock)
	steps := []step{
		{"track", map[string]any{"userId": "u1", "event": "Paid"}, "", false},
		{"identify", map[string]any{"userId": "u2", "traits": map[string]any{"phone": "6123 4567"}}, "", false}, // a Hong Kong number
		{"track", map[string]any{"userId": "u2", "event": "Paid"}, "", false},
	}
	appendSteps(t, db, clock, 1, steps)
	p := profile.NewProcessor(db, profile.Options{BatchSize: 1, SettingsEvery: time.Nanosecond})
	// The first batch is full, so the processor reads the second ahead, under the settings of then.
	if _, err := p.Process(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.NewConfigs(db).Put(ctx, []byte(`{"identity":{"phone_region":"HK"},"lifecycle":{"conversion_events":["Paid"]}}`), "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	processAll(t, p)
	for user, want := range map[string]profile.Stage{"u1": profile.Identified, "u2": profile.Converted} {
		got, err := db.ProfileByIdentifier(ctx, identity.UserID, user)
		must(t, err)
		if got.Stage != want {
			t.Errorf("%s: stage %s, want %s", user, got.Stage, want)
		}
	}
	if got, err := db.ProfileByIdentifier(ctx, identity.Phone, "+85261234567"); err != nil || got.ID != profile.ProfileID(2) {
		t.Errorf("the phone number read under the new region: %v, %v", got.ID, err)
	}
}

// aheadCounter counts the batches read ahead.
type aheadCounter struct {
	*store.DB
	mu    sync.Mutex
	ahead int
}

func (s *aheadCounter) KnownIdentitiesAhead(ctx context.Context, ids []identity.Identifier) (profile.Known, error) {
	s.mu.Lock()
	s.ahead++
	s.mu.Unlock()
	return s.DB.KnownIdentitiesAhead(ctx, ids)
}

// A full batch has the next one read beside its transaction, unless Options.ReadAhead says no; the profiles
// come out the same either way.
func TestProcessorReadsAhead(t *testing.T) {
	var states []state
	for _, allow := range []bool{true, false} {
		clock := storetest.NewClock(start.Add(time.Hour))
		db := storetest.SQLite(t, clock)
		appendStory(t, db, clock)
		s := &aheadCounter{DB: db}
		processAll(t, profile.NewProcessor(s, profile.Options{BatchSize: 3, ReadAhead: func() bool { return allow }}))
		s.mu.Lock()
		if read := s.ahead > 0; read != allow {
			t.Errorf("ReadAhead says %v: %d batches read ahead", allow, s.ahead)
		}
		s.mu.Unlock()
		states = append(states, readState(t, db))
	}
	if diff := cmp.Diff(states[0], states[1], cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("profiles read ahead (-) and not (+):\n%s", diff)
	}
}

// traitRecorder keeps the traits of each batch the processor stores.
type traitRecorder struct {
	*store.DB
	traits [][]profile.ProfileTrait
}

func (s *traitRecorder) ApplyProfiles(ctx context.Context, consumer string, upto int64, c profile.Changes) error {
	s.traits = append(s.traits, c.Traits)
	return s.DB.ApplyProfiles(ctx, consumer, upto, c)
}

// A trait set again to the value the store holds is marked so, and the store then moves only its provenance.
func TestProcessorMarksTraitsSetAgain(t *testing.T) {
	steps := []step{
		{"identify", map[string]any{"userId": "u1", "traits": map[string]any{"city": "上海", "plan": "free"}}, "", false},
		{"identify", map[string]any{"userId": "u1", "traits": map[string]any{"city": "上海", "plan": "pro"}}, "", false},
	}
	clock := storetest.NewClock(start.Add(time.Hour))
	db := storetest.SQLite(t, clock)
	appendSteps(t, db, clock, 1, steps)
	s := &traitRecorder{DB: db}
	processAll(t, profile.NewProcessor(s, profile.Options{BatchSize: 1}))
	var got []string
	for _, batch := range s.traits {
		for _, tr := range batch {
			got = append(got, fmt.Sprintf("%s=%s same:%v", tr.Name, tr.Value, tr.SameValue))
		}
	}
	want := []string{`city="上海" same:false`, `plan="free" same:false`, `city="上海" same:true`, `plan="pro" same:false`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("traits stored (-want +got):\n%s", diff)
	}
}

// seenRecorder keeps, for each batch the processor stores, whether it brought u1's row up to date, and the
// last seen that a read of u1's profile gives after it.
type seenRecorder struct {
	*store.DB
	t        *testing.T
	seen     []bool
	lastSeen []time.Time
}

func (s *seenRecorder) ApplyProfiles(ctx context.Context, consumer string, upto int64, c profile.Changes) error {
	if err := s.DB.ApplyProfiles(ctx, consumer, upto, c); err != nil {
		return err
	}
	p, err := s.ProfileByIdentifier(ctx, identity.UserID, "u1")
	must(s.t, err)
	s.seen = append(s.seen, c.Updates[p.ID].Seen)
	s.lastSeen = append(s.lastSeen, p.LastSeen)
	return nil
}

// A profile's row takes its last seen only when the row changes or the log has moved SeenRefresh events past
// it; reads of the profile give its latest event's time after every batch all the same.
func TestProcessorRefreshesLastSeen(t *testing.T) {
	page := step{"page", map[string]any{"userId": "u1"}, "", false}
	steps := []step{page, page, page, page, {"identify", map[string]any{"userId": "u1", "traits": map[string]any{"name": "Ada"}}, "", false}, page}
	clock := storetest.NewClock(start.Add(time.Hour))
	db := storetest.SQLite(t, clock)
	appendSteps(t, db, clock, 1, steps)
	s := &seenRecorder{DB: db, t: t}
	processAll(t, profile.NewProcessor(s, profile.Options{BatchSize: 1, SeenRefresh: 3}))
	// The first batch makes the profile (inserted whole); 4 is 3 past it; 5 changes the name.
	if want := []bool{false, false, false, true, true, false}; !slices.Equal(s.seen[1:], want[1:]) {
		t.Errorf("rows brought up to date by batch: %v, want %v", s.seen, want)
	}
	for i, got := range s.lastSeen {
		if !got.Equal(at(i + 1)) {
			t.Errorf("after batch %d: last seen %v, want %v", i+1, got, at(i+1))
		}
	}
}

// A profile's steps are stored as they change, also when its stage does not: an anonymous visitor who viewed a
// product (activated) gives an email (identified and connected, still activated), then opts out of email.
func TestProcessorStoresSteps(t *testing.T) {
	steps := []step{
		{"track", map[string]any{"anonymousId": "v1", "event": "Product Viewed"}, "", false},                               // 1
		{"identify", map[string]any{"anonymousId": "v1", "traits": map[string]any{"email": "ada@example.com"}}, "", false}, // 2
		{"identify", map[string]any{"anonymousId": "v1", "traits": map[string]any{"email_subscribed": false}}, "", false},  // 3
		{"track", map[string]any{"anonymousId": "v2", "event": "Page Viewed"}, "", false},                                  // 4: no step
	}
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(start.Add(time.Hour))
			db := engine.Open(t, clock)
			appendSteps(t, db, clock, 1, steps)
			proc := profile.NewProcessor(db, profile.Options{BatchSize: 1})
			want := []map[profile.Steps]int64{
				{{Activated: true}: 1},
				{{Identified: true, Connected: true, Activated: true}: 1},
				{{Identified: true, Activated: true}: 1},
				{{Identified: true, Activated: true}: 1, {}: 1},
			}
			for i, w := range want {
				n, err := proc.Process(ctx)
				must(t, err)
				if n != 1 {
					t.Fatalf("batch %d read %d events", i+1, n)
				}
				got, err := db.ProfileSteps(ctx)
				must(t, err)
				if diff := cmp.Diff(w, got); diff != "" {
					t.Errorf("after event %d, profiles by steps (-want +got):\n%s", i+1, diff)
				}
			}
			p, err := db.ProfileByIdentifier(ctx, identity.AnonymousID, "v1")
			must(t, err)
			if p.Stage != profile.Activated || len(p.Stages) != 1 || p.Steps() != (profile.Steps{Identified: true, Activated: true}) {
				t.Errorf("stage %s, changes %+v, steps %+v: want activated once, identified and activated", p.Stage, p.Stages, p.Steps())
			}
		})
	}
}

// faultyStore fails, or panics, whenever a batch holds one of its events.
type faultyStore struct {
	*store.DB
	fail        map[int64]error // the event's seq: the error storing it returns
	panicOn     int64
	unavailable bool // fail every batch as a store that does not answer does
}

func (s *faultyStore) ApplyProfiles(ctx context.Context, consumer string, upto int64, c profile.Changes) error {
	if s.unavailable {
		return &hearth.Error{Kind: hearth.Unavailable, Msg: "The database does not answer."}
	}
	for _, a := range c.Events {
		if err := s.fail[a.Seq]; err != nil {
			return err
		}
		if a.Seq == s.panicOn {
			panic(fmt.Sprintf("a bug on event %d", a.Seq))
		}
	}
	return s.DB.ApplyProfiles(ctx, consumer, upto, c)
}

// An event that the processor fails on again and again, or panics on, is found and set aside, with the
// reason, and everyone else's events are processed; a store that does not answer sets nothing aside.
func TestProcessorSetsAside(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(start.Add(time.Hour))
			db := engine.Open(t, clock)
			var steps []step
			for i := 1; i <= 8; i++ {
				steps = append(steps, step{"identify", map[string]any{"userId": fmt.Sprintf("u%d", i)}, "", false})
			}
			appendSteps(t, db, clock, 1, steps)
			s := &faultyStore{DB: db, fail: map[int64]error{3: errors.New("boom")}, panicOn: 6, unavailable: true}
			p := profile.NewProcessor(s, profile.Options{})
			run := func(times int) (failures int) {
				for range times {
					n, err := p.Process(ctx)
					if err != nil {
						failures++
					} else if n == 0 {
						break
					}
				}
				return failures
			}

			// Unavailable, however long: nothing is set aside, nothing read past.
			run(20)
			if off, _ := db.ConsumerOffset(ctx, profile.Consumer); off != 0 {
				t.Fatalf("offset %d while the store did not answer", off)
			}
			s.unavailable = false

			// The batch of 8 fails 3 times, then events are read one at a time: 1 and 2 stored, 3 failing 3
			// times, set aside; 4 and 5 stored, 6 panicking 3 times, set aside; 7 and 8 stored.
			if failures := run(40); failures != 3+2+2 {
				t.Errorf("%d failed batches, want 7", failures)
			}
			if off, _ := db.ConsumerOffset(ctx, profile.Consumer); off != 8 {
				t.Fatalf("offset %d, want 8", off)
			}
			for i := 1; i <= 8; i++ {
				_, err := db.ProfileByIdentifier(ctx, identity.UserID, fmt.Sprintf("u%d", i))
				if aside := i == 3 || i == 6; aside != (hearth.KindOf(err) == hearth.NotFound) {
					t.Errorf("u%d: %v; set aside: %v", i, err, aside)
				}
			}
			n, aside, err := db.SetAsideEvents(ctx, profile.Consumer, 10)
			must(t, err)
			if n != 2 || len(aside) != 2 || aside[0].Seq != 6 || aside[1].Seq != 3 ||
				!strings.Contains(aside[0].Reason, "panicked on events 6 to 6: a bug on event 6") || !strings.Contains(aside[1].Reason, "store events 3 to 3: boom") {
				t.Errorf("set aside: %d, %+v", n, aside)
			}

			// Batches go back to their size: a new fault on a later batch fails it whole at first.
			s.fail[10] = errors.New("boom again")
			appendSteps(t, db, clock, 9, steps[:4])
			if n, err := p.Process(ctx); n != 0 || err == nil || !strings.Contains(err.Error(), "events 9 to 12") {
				t.Errorf("Process = %d, %v; want the batch of 9 to 12 to fail whole", n, err)
			}
		})
	}
}
