package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
)

// Opener opens a fresh, migrated store on one engine.
type Opener func(t testing.TB, clock hearth.Clock) *store.DB

// Run runs the conformance suite: every behaviour the domain relies on, checked the same way on an engine.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB, clock *Clock)
	}{
		{"MigrateTwice", testMigrateTwice},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"APIKeys", testAPIKeys},
		{"SetupToken", testSetupToken},
		{"LoginFailures", testLoginFailures},
		{"Sources", testSources},
		{"EventLog", testEventLog},
		{"EventLogConcurrent", testEventLogConcurrent},
		{"AppendBatches", testAppendBatches},
		{"DedupeAfterRestart", testDedupeAfterRestart},
		{"Campaigns", testCampaigns},
		{"Touchpoints", testTouchpoints},
		{"ReserveSerials", testReserveSerials},
		{"Revocations", testRevocations},
		{"TouchCounts", testTouchCounts},
		{"CampaignTouchHours", testCampaignTouchHours},
		{"SigningKeys", testSigningKeys},
		{"CodeBatches", testCodeBatches},
		{"CodeBatchClaims", testCodeBatchClaims},
		{"CodeBatchRedraw", testCodeBatchRedraw},
		{"CodeBatchClaimsConcurrent", testCodeBatchClaimsConcurrent},
		{"WeChatAccounts", testWeChatAccounts},
		{"WeChatQRCodes", testWeChatQRCodes},
		{"Profiles", testProfiles},
		{"SegmentStepFault", testSegmentStepFault},
		{"Settings", testSettings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock(time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC))
			tt.fn(t, open(t, clock), clock)
		})
	}
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantKind(t *testing.T, err error, kind hearth.Kind) {
	t.Helper()
	if got := hearth.KindOf(err); err == nil || got != kind {
		t.Fatalf("error = %v (kind %v), want kind %v", err, got, kind)
	}
}

func testMigrateTwice(t *testing.T, db *store.DB, _ *Clock) {
	n, err := db.Migrate(ctx)
	must(t, err)
	if n != 0 {
		t.Errorf("second Migrate applied %d migrations, want 0", n)
	}
}

func newUser(clock *Clock, email string) auth.User {
	return auth.User{ID: hearth.NewID(), Email: email, Name: "Ada", Role: hearth.RoleMarketer, PasswordHash: "$argon2id$x", CreatedAt: clock.Now()}
}

func testUsers(t *testing.T, db *store.DB, clock *Clock) {
	n, err := db.CountUsers(ctx)
	must(t, err)
	if n != 0 {
		t.Fatalf("CountUsers on an empty store = %d", n)
	}
	u := newUser(clock, "ada@example.com")
	must(t, db.CreateUser(ctx, u))
	wantKind(t, db.CreateUser(ctx, newUser(clock, "ada@example.com")), hearth.Conflict)

	got, err := db.UserByEmail(ctx, "ada@example.com")
	must(t, err)
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("UserByEmail (-want +got):\n%s", diff)
	}
	_, err = db.UserByID(ctx, "nope")
	wantKind(t, err, hearth.NotFound)
	_, err = db.UserByEmail(ctx, "nobody@example.com")
	wantKind(t, err, hearth.NotFound)

	clock.Advance(time.Minute)
	at := clock.Now()
	must(t, db.RecordLogin(ctx, u.ID, at))
	u.Name, u.Role, u.Disabled = "Ada L.", hearth.RoleAdmin, true
	must(t, db.UpdateUser(ctx, u))
	must(t, db.SetPasswordHash(ctx, u.ID, "$argon2id$y"))
	u.PasswordHash, u.LastLoginAt = "$argon2id$y", &at
	got, err = db.UserByID(ctx, u.ID)
	must(t, err)
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}
	wantKind(t, db.UpdateUser(ctx, newUser(clock, "ghost@example.com")), hearth.NotFound)

	v := newUser(clock, "bob@example.com")
	must(t, db.CreateUser(ctx, v))
	list, err := db.ListUsers(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != u.ID || list[1].ID != v.ID {
		t.Errorf("ListUsers = %v, want ada then bob", list)
	}
}

func testSessions(t *testing.T, db *store.DB, clock *Clock) {
	u := newUser(clock, "ada@example.com")
	must(t, db.CreateUser(ctx, u))
	s1 := auth.Session{TokenHash: "h1", UserID: u.ID, CSRFToken: "c1", CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)}
	s2 := auth.Session{TokenHash: "h2", UserID: u.ID, CSRFToken: "c2", CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(2 * time.Hour)}
	must(t, db.CreateSession(ctx, s1))
	must(t, db.CreateSession(ctx, s2))
	got, err := db.SessionByHash(ctx, "h1")
	must(t, err)
	if diff := cmp.Diff(s1, got); diff != "" {
		t.Errorf("SessionByHash (-want +got):\n%s", diff)
	}
	must(t, db.DeleteExpiredSessions(ctx, clock.Now().Add(90*time.Minute)))
	_, err = db.SessionByHash(ctx, "h1")
	wantKind(t, err, hearth.NotFound)
	_, err = db.SessionByHash(ctx, "h2")
	must(t, err)

	must(t, db.CreateSession(ctx, s1))
	must(t, db.DeleteUserSessions(ctx, u.ID, "h2"))
	_, err = db.SessionByHash(ctx, "h1")
	wantKind(t, err, hearth.NotFound)
	must(t, db.DeleteSession(ctx, "h2"))
	must(t, db.DeleteSession(ctx, "h2")) // deleting twice is fine
	_, err = db.SessionByHash(ctx, "h2")
	wantKind(t, err, hearth.NotFound)
}

func testAPIKeys(t *testing.T, db *store.DB, clock *Clock) {
	k := auth.APIKey{ID: hearth.NewID(), Name: "CRM sync", Role: hearth.RoleAnalyst, Prefix: "hk_abcdef", CreatedAt: clock.Now()}
	must(t, db.CreateAPIKey(ctx, k, "hash1"))
	wantKind(t, db.CreateAPIKey(ctx, auth.APIKey{ID: hearth.NewID(), Name: "dup", Role: hearth.RoleAdmin, Prefix: "hk_x", CreatedAt: clock.Now()}, "hash1"), hearth.Conflict)
	got, err := db.APIKeyByHash(ctx, "hash1")
	must(t, err)
	if diff := cmp.Diff(k, got); diff != "" {
		t.Errorf("APIKeyByHash (-want +got):\n%s", diff)
	}
	_, err = db.APIKeyByHash(ctx, "nope")
	wantKind(t, err, hearth.NotFound)

	clock.Advance(time.Hour)
	used := clock.Now()
	must(t, db.TouchAPIKey(ctx, k.ID, used))
	must(t, db.RevokeAPIKey(ctx, k.ID, used))
	clock.Advance(time.Hour)
	must(t, db.RevokeAPIKey(ctx, k.ID, clock.Now())) // keeps the first revocation time
	wantKind(t, db.RevokeAPIKey(ctx, "nope", used), hearth.NotFound)
	keys, err := db.ListAPIKeys(ctx)
	must(t, err)
	k.LastUsedAt, k.RevokedAt = &used, &used
	if diff := cmp.Diff([]auth.APIKey{k}, keys); diff != "" {
		t.Errorf("ListAPIKeys (-want +got):\n%s", diff)
	}
}

func testSetupToken(t *testing.T, db *store.DB, clock *Clock) {
	now := clock.Now()
	must(t, db.ReplaceSetupToken(ctx, "old", now, now.Add(time.Hour)))
	must(t, db.ReplaceSetupToken(ctx, "new", now, now.Add(time.Hour)))
	for _, tc := range []struct {
		hash string
		at   time.Time
		want bool
	}{
		{"old", now, false},
		{"new", now, true},
		{"new", now.Add(time.Hour), false},
	} {
		ok, err := db.SetupTokenValid(ctx, tc.hash, tc.at)
		must(t, err)
		if ok != tc.want {
			t.Errorf("SetupTokenValid(%s, %v) = %v, want %v", tc.hash, tc.at, ok, tc.want)
		}
	}
	wantKind(t, db.CreateFirstAdmin(ctx, "old", now, newUser(clock, "a@example.com")), hearth.NotFound)
	must(t, db.CreateFirstAdmin(ctx, "new", now, newUser(clock, "a@example.com")))
	wantKind(t, db.CreateFirstAdmin(ctx, "new", now, newUser(clock, "b@example.com")), hearth.NotFound) // spent

	must(t, db.ReplaceSetupToken(ctx, "again", now, now.Add(time.Hour)))
	ok, err := db.SetupTokenValid(ctx, "again", now)
	must(t, err)
	if ok {
		t.Error("a setup token is valid although a user exists")
	}
	wantKind(t, db.CreateFirstAdmin(ctx, "again", now, newUser(clock, "c@example.com")), hearth.Conflict)
}

func testLoginFailures(t *testing.T, db *store.DB, clock *Clock) {
	start := clock.Now()
	must(t, db.RecordLoginFailure(ctx, []string{"email", "client"}, start))
	clock.Advance(time.Minute)
	must(t, db.RecordLoginFailure(ctx, []string{"email"}, clock.Now()))
	n, oldest, err := db.LoginFailures(ctx, "email", start.Add(-time.Second))
	must(t, err)
	if n != 2 || !oldest.Equal(start) {
		t.Errorf("LoginFailures = %d, %v; want 2, %v", n, oldest, start)
	}
	n, _, err = db.LoginFailures(ctx, "email", start)
	must(t, err)
	if n != 1 {
		t.Errorf("LoginFailures since the first = %d, want 1", n)
	}
	must(t, db.DeleteLoginFailures(ctx, start))
	n, _, err = db.LoginFailures(ctx, "client", start.Add(-time.Hour))
	must(t, err)
	if n != 0 {
		t.Errorf("after DeleteLoginFailures, client failures = %d, want 0", n)
	}
}

func testSources(t *testing.T, db *store.DB, clock *Clock) {
	a := collect.Source{ID: hearth.NewID(), Name: "Website", Kind: collect.KindWebsite, WriteKey: "wk1", Enabled: true, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
	must(t, db.CreateSource(ctx, a))
	dupName := a
	dupName.ID, dupName.WriteKey = hearth.NewID(), "wk2"
	wantKind(t, db.CreateSource(ctx, dupName), hearth.Conflict)

	clock.Advance(time.Second)
	b := collect.Source{ID: hearth.NewID(), Name: "WeChat", Kind: collect.KindWeChat, WriteKey: "wk3", Enabled: true, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
	must(t, db.CreateSource(ctx, b))
	got, err := db.SourceByWriteKey(ctx, "wk1")
	must(t, err)
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("SourceByWriteKey (-want +got):\n%s", diff)
	}
	list, err := db.ListSources(ctx)
	must(t, err)
	if diff := cmp.Diff([]collect.Source{b, a}, list); diff != "" {
		t.Errorf("ListSources, newest first (-want +got):\n%s", diff)
	}

	// Throttled counts add up, and an update of what they were read with does not set them back.
	clock.Advance(time.Second)
	must(t, db.AddThrottled(ctx, map[string]int64{a.ID: 7, b.ID: 1, "deleted": 3}, clock.Now()))
	must(t, db.AddThrottled(ctx, map[string]int64{a.ID: 5}, clock.Now()))
	throttledAt := clock.Now()
	clock.Advance(time.Second)
	a.Name, a.WriteKey, a.Enabled, a.RateLimit, a.UpdatedAt = "Main website", "wk4", false, 2.5, clock.Now()
	must(t, db.UpdateSource(ctx, a))
	got, err = db.Source(ctx, a.ID)
	must(t, err)
	a.Throttled, a.LastThrottledAt = 12, &throttledAt
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("after UpdateSource (-want +got):\n%s", diff)
	}
	_, err = db.SourceByWriteKey(ctx, "wk1")
	wantKind(t, err, hearth.NotFound)
	b.Name = "Main website"
	wantKind(t, db.UpdateSource(ctx, b), hearth.Conflict)
	_, err = db.Source(ctx, "nope")
	wantKind(t, err, hearth.NotFound)
}
