package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/store"
)

func ident(t identity.Type, v string) identity.Identifier {
	return identity.Identifier{Type: t, Value: v}
}

// testProfiles writes batches of profile changes as the processor makes them, and reads them back.
func testProfiles(t *testing.T, db *store.DB, clock *Clock) {
	w := runWriter(t, db, store.EventWriterOptions{})
	var evs []collect.Event
	for i := 1; i <= 6; i++ {
		evs = append(evs, event(clock, fmt.Sprintf("m%d", i), fmt.Sprintf("u%d", i)))
		clock.Advance(time.Minute)
	}
	_, err := w.Append(ctx, &collect.Batch{SourceID: "src1", ReceivedAt: clock.Now(), Events: evs})
	must(t, err)
	logged, err := db.ReadEvents(ctx, 0, 10)
	must(t, err)
	ts := func(seq int64) time.Time { return logged[seq-1].Timestamp }

	k, err := db.KnownIdentities(ctx, []identity.Identifier{ident(identity.UserID, "u1")})
	must(t, err)
	if len(k.ProfileOf) != 0 || len(k.FirstSeq) != 0 || len(k.Counts) != 0 {
		t.Errorf("KnownIdentities on an empty graph = %+v", k)
	}

	// Batch 1: three profiles; the third merges into the second, then the second into the first.
	p1, p2, p3 := profile.ProfileID(1), profile.ProfileID(2), profile.ProfileID(3)
	u1, u2, a2, e3, a3 := ident(identity.UserID, "u1"), ident(identity.UserID, "u2"), ident(identity.AnonymousID, "a2"), ident(identity.Email, "c@example.com"), ident(identity.AnonymousID, "a3")
	must(t, db.ApplyProfiles(ctx, "profiles", 5, profile.Changes{
		New: []profile.Profile{{ID: p1, FirstSeq: 1, FirstSeen: ts(1), LastSeen: ts(1)}, {ID: p2, FirstSeq: 2, FirstSeen: ts(2), LastSeen: ts(2)},
			{ID: p3, FirstSeq: 3, FirstSeen: ts(3), LastSeen: ts(3)}},
		Identities: []profile.Identity{{Identifier: u1, Profile: p1, FirstSeq: 1}, {Identifier: u2, Profile: p2, FirstSeq: 2},
			{Identifier: a2, Profile: p2, FirstSeq: 2}, {Identifier: e3, Profile: p3, FirstSeq: 3}, {Identifier: a3, Profile: p3, FirstSeq: 3}},
		Events: []profile.Attribution{{Seq: 1, Profile: p1, At: ts(1)}, {Seq: 2, Profile: p2, At: ts(2)}, {Seq: 3, Profile: p3, At: ts(3)},
			{Seq: 4, Profile: p2, At: ts(4)}, {Seq: 5, Profile: p1, At: ts(5)}},
		Merges:  []profile.Merge{{Seq: 4, Into: p2, From: p3, Via: e3, At: ts(4)}, {Seq: 5, Into: p1, From: p2, Via: u2, At: ts(5)}},
		LeftOut: []profile.LeftOut{{Seq: 5, Identifier: ident(identity.AnonymousID, "t1"), Reason: "limit:user_id"}},
		Updates: map[string]profile.Update{p1: {LastSeen: ts(5), Steps: profile.Steps{Identified: true, Connected: true}, Name: "Ada Lovelace", ConvertedAt: ts(3), Row: true}},
	}))
	off, err := db.ConsumerOffset(ctx, "profiles")
	must(t, err)
	if off != 5 {
		t.Errorf("offset = %d, want 5", off)
	}
	now := clock.Now()
	want := profile.Profile{ID: p1, FirstSeq: 1, FirstSeen: ts(1), LastSeen: ts(5), CreatedAt: now, UpdatedAt: now,
		// Each identifier with the time of the event that brought it, which the merges brought along.
		Identities: []profile.Identity{{Identifier: u1, Profile: p1, FirstSeq: 1, FirstAt: ts(1)}, {Identifier: a2, Profile: p1, FirstSeq: 2, FirstAt: ts(2)},
			{Identifier: u2, Profile: p1, FirstSeq: 2, FirstAt: ts(2)}, {Identifier: a3, Profile: p1, FirstSeq: 3, FirstAt: ts(3)}, {Identifier: e3, Profile: p1, FirstSeq: 3, FirstAt: ts(3)}},
		Merges: []profile.Merge{{Seq: 4, Into: p2, From: p3, Via: e3, At: ts(4)}, {Seq: 5, Into: p1, From: p2, Via: u2, At: ts(5)}},
		Stage:  profile.Connected, Name: "Ada Lovelace", ConvertedAt: ts(3),
	}
	got, err := db.ProfileByIdentifier(ctx, identity.Email, "c@example.com")
	must(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ProfileByIdentifier after the merges (-want +got):\n%s", diff)
	}
	for _, gone := range []string{p2, p3} {
		_, err := db.Profile(ctx, gone)
		wantKind(t, err, hearth.NotFound)
	}
	_, err = db.ProfileByIdentifier(ctx, identity.Email, "nobody@example.com")
	wantKind(t, err, hearth.NotFound)
	timeline, err := db.ProfileEvents(ctx, p1, 0, 10)
	must(t, err)
	if len(timeline) != 5 || timeline[0].Seq != 5 || timeline[4].Seq != 1 || timeline[0].MessageID != "m5" {
		t.Errorf("ProfileEvents = %v, want seqs 5 to 1", timeline)
	}
	left, err := db.LeftOut(ctx, 0, 10)
	must(t, err)
	if diff := cmp.Diff([]profile.LeftOut{{Seq: 5, Identifier: ident(identity.AnonymousID, "t1"), Reason: "limit:user_id"}}, left); diff != "" {
		t.Errorf("LeftOut (-want +got):\n%s", diff)
	}

	k, err = db.KnownIdentities(ctx, []identity.Identifier{u2, e3, ident(identity.Email, "new@example.com")})
	must(t, err)
	wantKnown := profile.Known{
		ProfileOf: map[identity.Identifier]string{u2: p1, e3: p1},
		FirstSeq:  map[string]int64{p1: 1},
		Counts:    map[string]map[identity.Type]int{p1: {identity.UserID: 2, identity.AnonymousID: 2, identity.Email: 1}},
		Facts:     map[string]profile.Facts{p1: {Steps: profile.Steps{Identified: true, Connected: true}, ConvertedAt: ts(3), SeenThrough: 5}},
	}
	if diff := cmp.Diff(wantKnown, k); diff != "" {
		t.Errorf("KnownIdentities (-want +got):\n%s", diff)
	}

	// A batch that fails writes nothing, its offset included: it is replayed whole.
	clock.Advance(time.Minute)
	err = db.ApplyProfiles(ctx, "profiles", 6, profile.Changes{
		From:       5,
		New:        []profile.Profile{{ID: profile.ProfileID(6), FirstSeq: 6, FirstSeen: ts(6), LastSeen: ts(6)}},
		Identities: []profile.Identity{{Identifier: u1, Profile: profile.ProfileID(6), FirstSeq: 6}}, // u1 is held already
	})
	if err == nil {
		t.Fatal("ApplyProfiles with an identifier held already succeeded")
	}
	if hearth.KindOf(err) == hearth.Conflict {
		t.Errorf("a batch breaking a unique key failed as a Conflict (%v): the processor would take it for another node's", err)
	}
	off, err = db.ConsumerOffset(ctx, "profiles")
	must(t, err)
	if off != 5 {
		t.Errorf("offset after a failed batch = %d, want 5", off)
	}
	_, err = db.Profile(ctx, profile.ProfileID(6))
	wantKind(t, err, hearth.NotFound)

	// Lookups of more identifiers and profiles than one query names.
	// A batch resolved against an older offset (another node stored it first) is refused, and writes nothing.
	err = db.ApplyProfiles(ctx, "profiles", 6, profile.Changes{From: 2, Events: []profile.Attribution{{Seq: 6, Profile: p1}}})
	wantKind(t, err, hearth.Conflict)
	if off, _ := db.ConsumerOffset(ctx, "profiles"); off != 5 {
		t.Errorf("offset after a stale batch = %d, want 5", off)
	}

	many := profile.Changes{From: 5}
	var ids []identity.Identifier
	for i := 0; i < 1100; i++ {
		id, p := ident(identity.DeviceID, fmt.Sprintf("d%d", i)), fmt.Sprintf("q%04d", i)
		many.New = append(many.New, profile.Profile{ID: p, FirstSeq: int64(100 + i), FirstSeen: ts(1), LastSeen: ts(1)})
		many.Identities = append(many.Identities, profile.Identity{Identifier: id, Profile: p, FirstSeq: int64(100 + i)})
		ids = append(ids, id)
	}
	must(t, db.ApplyProfiles(ctx, "profiles", 5, many))
	k, err = db.KnownIdentities(ctx, append(ids, u1))
	must(t, err)
	if len(k.ProfileOf) != 1101 || len(k.FirstSeq) != 1101 || len(k.Counts) != 1101 || k.ProfileOf[ids[1099]] != "q1099" ||
		k.FirstSeq["q1099"] != 1199 || k.Counts["q1099"][identity.DeviceID] != 1 || k.ProfileOf[u1] != p1 {
		t.Errorf("KnownIdentities of 1,101 identifiers: %d, %d, %d found", len(k.ProfileOf), len(k.FirstSeq), len(k.Counts))
	}

	// Last seen is the latest time of the profile's events. A batch that leaves the row alone (neither Row nor
	// Seen) adds its events to the timeline, where reads find those after the row's seen_through; an earlier
	// time moves nothing; a batch that writes the row folds them into it.
	batch := func(seq int64, at time.Time, u profile.Update) {
		t.Helper()
		must(t, db.ApplyProfiles(ctx, "profiles", seq, profile.Changes{From: seq - 1, Events: []profile.Attribution{{Seq: seq, Profile: p1, At: at}},
			Updates: map[string]profile.Update{p1: u}}))
	}
	check := func(step string, lastSeen time.Time, seenThrough int64, updated time.Time) {
		t.Helper()
		got, err := db.Profile(ctx, p1)
		must(t, err)
		listed, err := db.ProfileSummary(ctx, p1)
		must(t, err)
		k, err := db.KnownIdentities(ctx, []identity.Identifier{u1})
		must(t, err)
		if !got.LastSeen.Equal(lastSeen) || !listed.LastSeen.Equal(lastSeen) || k.Facts[p1].SeenThrough != seenThrough || !got.UpdatedAt.Equal(updated) {
			t.Errorf("%s: last seen %v (listed %v), seen through %d, updated %v; want %v, %d, %v", step, got.LastSeen, listed.LastSeen,
				k.Facts[p1].SeenThrough, got.UpdatedAt, lastSeen, seenThrough, updated)
		}
	}
	row := profile.Update{Steps: profile.Steps{Identified: true, Connected: true}, Name: "Ada Lovelace", ConvertedAt: ts(3)}
	batch(6, ts(6), row)
	check("a later event", ts(6), 5, now)
	batch(7, ts(4), row)
	check("an earlier event", ts(6), 5, now)
	seen := row
	seen.Seen = true
	batch(8, ts(2), seen)
	check("folded into the row", ts(6), 8, clock.Now())
	clock.Advance(time.Minute)
	renamed := row
	renamed.Name, renamed.Row, renamed.Seen = "Ada King", true, true
	batch(9, ts(6).Add(time.Hour), renamed)
	check("with the row's change", ts(6).Add(time.Hour), 9, clock.Now())
	testProfileFacts(t, db, ts)
}

// testProfileFacts writes traits, touches and stage changes, and merges a profile that has them into another.
func testProfileFacts(t *testing.T, db *store.DB, ts func(int64) time.Time) {
	a, b := "fa", "fb"
	at := func(min int) time.Time { return ts(1).Add(time.Duration(min) * time.Hour) }
	trait := func(p, name, value string, seq int64) profile.ProfileTrait {
		return profile.ProfileTrait{Profile: p, Trait: profile.Trait{Name: name, Value: json.RawMessage(value), SourceID: "src1", Seq: seq, At: at(int(seq))}}
	}
	must(t, db.ApplyProfiles(ctx, "facts", 2, profile.Changes{
		New: []profile.Profile{{ID: a, FirstSeq: 1, FirstSeen: at(1), LastSeen: at(1)}, {ID: b, FirstSeq: 2, FirstSeen: at(2), LastSeen: at(2)}},
		Touches: []profile.ProfileTouch{
			{Profile: a, Touch: profile.Touch{TouchpointID: "tp1", Touchpoint: "Poster", Channel: "qr_poster", CampaignID: "c1", Count: 2, FirstSeq: 1, First: at(1), LastSeq: 1, Last: at(1)}},
			{Profile: b, Touch: profile.Touch{TouchpointID: "tp1", Touchpoint: "Poster (spring)", Channel: "qr_poster", CampaignID: "c2", Count: 1, FirstSeq: 2, First: at(2), LastSeq: 2, Last: at(2)}},
			{Profile: b, Touch: profile.Touch{TouchpointID: "tp2", Touchpoint: "Card", Channel: "business_card", Count: 1, FirstSeq: 2, First: at(2), LastSeq: 2, Last: at(2)}},
		},
		StageChanges: []profile.ProfileStageChange{{Profile: a, StageChange: profile.StageChange{Seq: 1, From: profile.Anonymous, To: profile.Identified, At: at(1)}},
			{Profile: b, StageChange: profile.StageChange{Seq: 2, From: profile.Anonymous, To: profile.Connected, At: at(2)}}},
		Traits:  []profile.ProfileTrait{trait(a, "name", `"Ada"`, 1), trait(a, "city", `"上海"`, 1), trait(b, "name", `"Ada L."`, 2), trait(b, "vip", `true`, 2)},
		Updates: map[string]profile.Update{a: {LastSeen: at(1), Steps: profile.Steps{Identified: true}, Name: "Ada", Row: true}, b: {LastSeen: at(2), Steps: profile.Steps{Identified: true, Connected: true}, Name: "Ada L.", ActivatedAt: at(2), Row: true}},
	}))
	k, err := db.KnownIdentities(ctx, nil)
	must(t, err)
	if len(k.Facts) != 0 {
		t.Errorf("KnownIdentities of no identifiers has facts: %v", k.Facts)
	}
	// b merges into a at seq 3: the processor sends the traits that won and a's new row.
	must(t, db.ApplyProfiles(ctx, "facts", 3, profile.Changes{From: 2,
		Merges:       []profile.Merge{{Seq: 3, Into: a, From: b, Via: ident(identity.Email, "ada@example.com"), At: at(3)}},
		StageChanges: []profile.ProfileStageChange{{Profile: a, StageChange: profile.StageChange{Seq: 3, From: profile.Identified, To: profile.Activated, At: at(3)}}},
		Traits:       []profile.ProfileTrait{trait(a, "name", `"Ada L."`, 2), trait(a, "vip", `true`, 2)},
		Updates:      map[string]profile.Update{a: {LastSeen: at(3), Steps: profile.Steps{Identified: true, Activated: true}, Name: "Ada L.", ActivatedAt: at(2), Row: true}},
	}))
	got, err := db.Profile(ctx, a)
	must(t, err)
	wantTraits := []profile.Trait{trait(a, "city", `"上海"`, 1).Trait, trait(a, "name", `"Ada L."`, 2).Trait, trait(a, "vip", `true`, 2).Trait}
	if diff := cmp.Diff(wantTraits, got.Traits); diff != "" {
		t.Errorf("traits after the merge (-want +got):\n%s", diff)
	}
	wantTouches := []profile.Touch{
		{TouchpointID: "tp1", Touchpoint: "Poster (spring)", Channel: "qr_poster", CampaignID: "c2", Count: 3, FirstSeq: 1, First: at(1), LastSeq: 2, Last: at(2)},
		{TouchpointID: "tp2", Touchpoint: "Card", Channel: "business_card", Count: 1, FirstSeq: 2, First: at(2), LastSeq: 2, Last: at(2)},
	}
	if diff := cmp.Diff(wantTouches, got.Touches); diff != "" {
		t.Errorf("touches after the merge (-want +got):\n%s", diff)
	}
	wantStages := []profile.StageChange{{Seq: 1, From: profile.Anonymous, To: profile.Identified, At: at(1)}, {Seq: 3, From: profile.Identified, To: profile.Activated, At: at(3)}}
	if diff := cmp.Diff(wantStages, got.Stages); diff != "" {
		t.Errorf("stage changes after the merge (-want +got):\n%s", diff)
	}
	if got.Stage != profile.Activated || got.Name != "Ada L." {
		t.Errorf("stage, name = %s, %q", got.Stage, got.Name)
	}
	// Nothing of the absorbed profile is left behind: made again (as an unmerge does), it starts empty.
	must(t, db.ApplyProfiles(ctx, "facts", 4, profile.Changes{From: 3, New: []profile.Profile{{ID: b, FirstSeq: 2, FirstSeen: at(2), LastSeen: at(2)}}}))
	again, err := db.Profile(ctx, b)
	must(t, err)
	if len(again.Traits)+len(again.Touches)+len(again.Stages) != 0 || again.Stage != profile.Anonymous {
		t.Errorf("the absorbed profile's facts were left behind: %+v", again)
	}
}

// testSegmentStepFault writes the segment engine's steps: one resolved against an older offset is a Conflict,
// but one that breaks a unique key is a fault of the step, and neither writes anything.
func testSegmentStepFault(t *testing.T, db *store.DB, clock *Clock) {
	must(t, db.CreateSegment(ctx, segment.Segment{ID: "seg_x", Name: "X", Kind: segment.RuleKind,
		Rule: &segment.Rule{Trait: &segment.Compare{Name: "city", Op: segment.Exists}}, Version: 1, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}))
	step := segment.Step{From: 0, Upto: 0, At: clock.Now(), Deltas: []segment.Delta{{Segment: "seg_x", Entered: []string{"p1", "p1"}}}}
	err := db.ApplyStep(ctx, step)
	if err == nil || hearth.KindOf(err) == hearth.Conflict {
		t.Errorf("a step entering a profile twice: %v (kind %v), want a fault, not a Conflict: the engine would retry it for ever", err, hearth.KindOf(err))
	}
	step.From, step.Upto = 7, 8
	step.Deltas = nil
	wantKind(t, db.ApplyStep(ctx, step), hearth.Conflict)
	if off, _ := db.ConsumerOffset(ctx, segment.Consumer); off != 0 {
		t.Errorf("the segment engine's offset after two failed steps: %d", off)
	}
}
