package profile_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

// A family email wrongly joined two people; an admin splits them. Each side gets back its id, its events,
// traits, touches and stage; the separation holds for later events.
func TestUnmerge(t *testing.T) {
	touch := map[string]any{"anonymousId": "b1", "event": "Touch",
		"properties": map[string]any{"touchpoint_id": "tp1", "touchpoint": "Poster", "channel": "qr_poster", "campaign_id": "c1"}}
	steps := []step{
		{"identify", map[string]any{"anonymousId": "a1", "userId": "u1", "traits": map[string]any{"name": "Ada"}}, "", false}, // 1: P1
		{"track", touch, "", false}, // 2: P2, a poster scan
		{"identify", map[string]any{"anonymousId": "b1", "traits": map[string]any{"email": "family@example.com", "name": "Bob"}}, "", false},  // 3: P2 connected
		{"identify", map[string]any{"anonymousId": "a1", "userId": "u1", "traits": map[string]any{"email": "family@example.com"}}, "", false}, // 4: P2 merges into P1 (apart again: 4 stays with u1)
		{"page", map[string]any{"anonymousId": "b1"}, "", false},                                                                              // 5: P1
	}
	later := []step{
		{"identify", map[string]any{"userId": "u1", "traits": map[string]any{"email": "family@example.com"}}, "", false}, // 6: kept apart: P1
		{"page", map[string]any{"anonymousId": "b1", "userId": "u1"}, "", false},                                         // 7: kept apart: b1 left out
	}
	for _, engine := range storetest.Engines() {
		t.Run(engine.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(start.Add(time.Hour))
			db := engine.Open(t, clock)
			appendSteps(t, db, clock, 1, steps)
			p := profile.NewProcessor(db, profile.Options{})
			processAll(t, p)
			p1, p2 := profile.ProfileID(1), profile.ProfileID(2)
			merged, err := db.Profile(ctx, p1)
			must(t, err)
			if len(merged.Merges) != 1 || merged.Merges[0].From != p2 || merged.Name != "Bob" {
				t.Fatalf("before the unmerge: merges %v, name %q", merged.Merges, merged.Name)
			}

			// Only a merge the profile holds can be undone, one at a time.
			_, err = db.RequestUnmerge(ctx, p1, "p-unknown", "user:admin")
			if hearth.KindOf(err) != hearth.NotFound {
				t.Errorf("unmerge of a merge the profile does not hold: %v", err)
			}
			u, err := db.RequestUnmerge(ctx, p1, p2, "user:admin")
			must(t, err)
			if _, err := db.RequestUnmerge(ctx, p1, p2, "user:admin"); hearth.KindOf(err) != hearth.Conflict {
				t.Errorf("a second pending unmerge: %v", err)
			}
			if _, err := p.Process(ctx); err != nil { // carries out the pending unmerge, then reads on
				t.Fatal(err)
			}
			done, err := db.Unmerge(ctx, u.ID)
			must(t, err)
			if done.DoneAt.IsZero() || done.Error != "" || !cmp.Equal(done.Profiles, []string{p1, p2}) ||
				done.Merge.Via != (identity.Identifier{Type: identity.Email, Value: "family@example.com"}) || done.Merge.Seq != 4 {
				t.Errorf("the unmerge: %+v", done)
			}

			appendSteps(t, db, clock, len(steps)+1, later)
			processAll(t, p)

			a, err := db.Profile(ctx, p1)
			must(t, err)
			b, err := db.Profile(ctx, p2)
			must(t, err)
			idents := func(pr profile.Profile) []string {
				var out []string
				for _, i := range pr.Identities {
					out = append(out, i.Identifier.String())
				}
				return out
			}
			if diff := cmp.Diff([]string{"anonymous_id:a1", "user_id:u1"}, idents(a)); diff != "" {
				t.Errorf("P1's identities (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"anonymous_id:b1", "email:family@example.com"}, idents(b)); diff != "" {
				t.Errorf("P2's identities (-want +got):\n%s", diff)
			}
			if a.Name != "Ada" || b.Name != "Bob" || a.Stage != profile.Identified || b.Stage != profile.Connected {
				t.Errorf("names and stages: P1 %q %s, P2 %q %s", a.Name, a.Stage, b.Name, b.Stage)
			}
			if len(a.Merges)+len(b.Merges) != 0 {
				t.Errorf("merge histories after the unmerge: %v, %v", a.Merges, b.Merges)
			}
			if len(b.Touches) != 1 || b.Touches[0].TouchpointID != "tp1" || len(a.Touches) != 0 {
				t.Errorf("touches: P1 %v, P2 %v", a.Touches, b.Touches)
			}
			wantStages := []profile.StageChange{{Seq: 3, From: profile.Anonymous, To: profile.Connected, At: at(3)}}
			if diff := cmp.Diff(wantStages, b.Stages); diff != "" {
				t.Errorf("P2's stage changes (-want +got):\n%s", diff)
			}
			wantTrait := profile.Trait{Name: "email", Value: json.RawMessage(`"family@example.com"`), SourceID: "web", Seq: 6, At: at(6)}
			if len(a.Traits) != 2 || !cmp.Equal(a.Traits[0], wantTrait) {
				t.Errorf("P1's traits: %v", a.Traits)
			}
			timeline := func(id string) []int64 {
				evs, err := db.ProfileEvents(ctx, id, 0, 100)
				must(t, err)
				var seqs []int64
				for _, e := range evs {
					seqs = append(seqs, e.Seq)
				}
				return seqs
			}
			if diff := cmp.Diff([]int64{7, 6, 4, 1}, timeline(p1)); diff != "" {
				t.Errorf("P1's timeline (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int64{5, 3, 2}, timeline(p2)); diff != "" {
				t.Errorf("P2's timeline (-want +got):\n%s", diff)
			}
			left, err := db.LeftOut(ctx, 0, 100)
			must(t, err)
			wantLeft := []profile.LeftOut{
				{Seq: 4, Identifier: identity.Identifier{Type: identity.Email, Value: "family@example.com"}, Reason: "separated"},
				{Seq: 6, Identifier: identity.Identifier{Type: identity.Email, Value: "family@example.com"}, Reason: "separated"},
				{Seq: 7, Identifier: identity.Identifier{Type: identity.AnonymousID, Value: "b1"}, Reason: "separated"},
			}
			if diff := cmp.Diff(wantLeft, left); diff != "" {
				t.Errorf("left out (-want +got):\n%s", diff)
			}
		})
	}
}

// A separation holds for the profile that later absorbs one side, whether the absorbing happened in an
// earlier batch (read from the store) or in the same one.
func TestSeparationFollowsMerges(t *testing.T) {
	steps := []step{
		{"page", map[string]any{"anonymousId": "z1"}, "", false},                                                              // 1: P1, Zed's first visit
		{"identify", map[string]any{"anonymousId": "a1", "userId": "u1"}, "", false},                                          // 2: P2, Ada
		{"identify", map[string]any{"anonymousId": "b1", "traits": map[string]any{"email": "family@example.com"}}, "", false}, // 3: P3, Bob
		{"identify", map[string]any{"userId": "u1", "traits": map[string]any{"email": "family@example.com"}}, "", false},      // 4: P3 into P2
	}
	later := []step{
		{"page", map[string]any{"anonymousId": "z1", "context": map[string]any{"device": map[string]any{"id": "d-bob"}}}, "", false}, // 5: P1
		{"page", map[string]any{"anonymousId": "b1", "context": map[string]any{"device": map[string]any{"id": "d-bob"}}}, "", false}, // 6: P3 into P1
		{"page", map[string]any{"anonymousId": "z1", "userId": "u1"}, "", false},                                                     // 7: P1 holds P3: kept apart from P2
	}
	for _, batch := range []int{1, 100} {
		t.Run(fmt.Sprint("batch", batch), func(t *testing.T) {
			clock := storetest.NewClock(start.Add(time.Hour))
			db := storetest.SQLite(t, clock)
			appendSteps(t, db, clock, 1, steps)
			p := profile.NewProcessor(db, profile.Options{BatchSize: batch})
			processAll(t, p)
			p1, p2, p3 := profile.ProfileID(1), profile.ProfileID(2), profile.ProfileID(3)
			_, err := db.RequestUnmerge(ctx, p2, p3, "user:admin")
			must(t, err)
			appendSteps(t, db, clock, len(steps)+1, later)
			processAll(t, p)

			zed, err := db.ProfileByIdentifier(ctx, identity.AnonymousID, "b1")
			must(t, err)
			if zed.ID != p1 || len(zed.Merges) != 1 || zed.Merges[0].From != p3 {
				t.Errorf("Bob's profile after 6 = %s with merges %v, want P3 merged into P1", zed.ID, zed.Merges)
			}
			ada, err := db.ProfileByIdentifier(ctx, identity.UserID, "u1")
			must(t, err)
			if ada.ID != p2 || len(ada.Merges) != 0 {
				t.Errorf("Ada's profile = %s with merges %v, want P2 alone", ada.ID, ada.Merges)
			}
			left, err := db.LeftOut(ctx, 6, 7)
			must(t, err)
			want := []profile.LeftOut{{Seq: 7, Identifier: identity.Identifier{Type: identity.AnonymousID, Value: "z1"}, Reason: "separated"}}
			if diff := cmp.Diff(want, left); diff != "" {
				t.Errorf("left out at 7 (-want +got):\n%s", diff)
			}
		})
	}
}

// The processor reads the next batch ahead while it stores one; an unmerge carried out in between splits the
// graph that batch was read with, so the batch is read again.
func TestUnmergeBetweenBatchesReadAhead(t *testing.T) {
	steps := []step{
		{"page", map[string]any{"anonymousId": "a1"}, "", false},                     // 1: P1
		{"page", map[string]any{"anonymousId": "b1"}, "", false},                     // 2: P2
		{"identify", map[string]any{"anonymousId": "b1", "userId": "u1"}, "", false}, // 3: u1 joins P2
		{"identify", map[string]any{"anonymousId": "a1", "userId": "u1"}, "", false}, // 4: P2 merges into P1 (apart again: 4 stays with u1)
		{"page", map[string]any{"anonymousId": "z9"}, "", false},                     // 5: P5, someone else
		{"page", map[string]any{"anonymousId": "b1"}, "", false},                     // 6: read ahead with 5: b1 on P1
	}
	clock := storetest.NewClock(start.Add(time.Hour))
	db := storetest.SQLite(t, clock)
	appendSteps(t, db, clock, 1, steps)
	p := profile.NewProcessor(db, profile.Options{BatchSize: 1})
	for range 5 {
		if _, err := p.Process(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p1, p2 := profile.ProfileID(1), profile.ProfileID(2)
	_, err := db.RequestUnmerge(ctx, p1, p2, "user:admin")
	must(t, err)
	processAll(t, p)

	got, err := db.ProfileByIdentifier(ctx, identity.AnonymousID, "b1")
	must(t, err)
	if got.ID != p2 {
		t.Fatalf("b1 is on %s after the unmerge, want %s", got.ID, p2)
	}
	evs, err := db.ProfileEvents(ctx, p2, 0, 100)
	must(t, err)
	var seqs []int64
	for _, e := range evs {
		seqs = append(seqs, e.Seq)
	}
	if diff := cmp.Diff([]int64{6, 4, 3, 2}, seqs); diff != "" {
		t.Errorf("P2's timeline (-want +got):\n%s", diff)
	}
}
