package auth_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

var bg = context.Background()

var start = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// newService is the auth service on a fresh SQLite store with a stopped clock.
func newService(t *testing.T, opts auth.Options) (*auth.Service, *store.DB, *storetest.Clock) {
	t.Helper()
	clock := storetest.NewClock(start)
	db := storetest.SQLite(t, clock)
	return auth.NewService(db, clock, slog.New(slog.DiscardHandler), opts), db, clock
}

// newUser creates a user whose password is testPassword.
func newUser(t *testing.T, svc *auth.Service, email string, role hearth.Role) auth.User {
	t.Helper()
	u, err := svc.CreateUser(bg, auth.NewUser{Email: email, Role: role, Password: testPassword})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	return u
}

// login signs in with testPassword and returns the session token.
func login(t *testing.T, svc *auth.Service, email string) string {
	t.Helper()
	token, _, _, err := svc.Login(bg, email, testPassword, "192.0.2.1")
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return token
}

func wantKind(t *testing.T, err error, kind hearth.Kind) {
	t.Helper()
	if err == nil || hearth.KindOf(err) != kind {
		t.Fatalf("error = %v (kind %v), want kind %v", err, hearth.KindOf(err), kind)
	}
}

func wantBadCredentials(t *testing.T, err error) {
	t.Helper()
	wantKind(t, err, hearth.Unauthenticated)
	if code := hearth.CodeOf(err); code != "invalid_credentials" {
		t.Errorf("code = %q, want invalid_credentials", code)
	}
}

// wantSignedOut checks that a session token no longer works.
func wantSignedOut(t *testing.T, svc *auth.Service, token string) {
	t.Helper()
	_, _, err := svc.SessionPrincipal(bg, token)
	wantKind(t, err, hearth.Unauthenticated)
}

func TestLogin(t *testing.T) {
	t.Parallel()
	svc, db, clock := newService(t, auth.Options{})
	admin := newUser(t, svc, "ops@example.com", hearth.RoleAdmin)
	gone := newUser(t, svc, "gone@example.com", hearth.RoleMarketer)
	gone.Disabled = true
	if err := db.UpdateUser(bg, gone); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, email, password string
		ok                    bool
	}{
		{"right password", "ops@example.com", testPassword, true},
		{"email in another case, with spaces", "  OPS@Example.COM ", testPassword, true},
		{"wrong password", "ops@example.com", testPassword + "!", false},
		{"empty password", "ops@example.com", "", false},
		{"unknown email", "nobody@example.com", testPassword, false},
		{"not an email", "ops", testPassword, false},
		{"empty email", "", testPassword, false},
		{"disabled user", "gone@example.com", testPassword, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, sess, u, err := svc.Login(bg, tt.email, tt.password, fmt.Sprintf("192.0.2.%d", i))
			if !tt.ok {
				wantBadCredentials(t, err)
				if token != "" {
					t.Errorf("a failed sign-in returned a token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			now := clock.Now()
			if diff := cmp.Diff(auth.User{ID: admin.ID, Email: "ops@example.com", Role: hearth.RoleAdmin, LastLoginAt: &now},
				auth.User{ID: u.ID, Email: u.Email, Role: u.Role, LastLoginAt: u.LastLoginAt}); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			if sess.UserID != admin.ID || !sess.ExpiresAt.Equal(now.Add(7*24*time.Hour)) || sess.CSRFToken == "" {
				t.Errorf("session = %+v, want the admin's, for 7 days, with a CSRF token", sess)
			}
			p, _, err := svc.SessionPrincipal(bg, token)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(auth.Principal{Role: hearth.RoleAdmin, UserID: admin.ID, CSRFToken: sess.CSRFToken}, p); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoginThrottlePerEmail(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t, auth.Options{}) // 10 failures per email in 15 minutes
	newUser(t, svc, "ops@example.com", hearth.RoleAdmin)
	for i := range 10 {
		// From different clients, so that only the per-email limit can apply.
		_, _, _, err := svc.Login(bg, "ops@example.com", fmt.Sprintf("guess %d", i), fmt.Sprintf("192.0.2.%d", i))
		wantBadCredentials(t, err)
	}
	clock.Advance(time.Minute)

	tests := []struct {
		name, email, password string
	}{
		{"the right password", "ops@example.com", testPassword},
		{"another guess", "ops@example.com", "guess 10"},
		// The limit is on the account, not on how its address is spelt.
		{"another guess, email in capitals", "OPS@EXAMPLE.COM", "guess 11"},
		{"another guess, email with spaces", " ops@example.com", "guess 12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := svc.Login(bg, tt.email, tt.password, "198.51.100.1")
			wantKind(t, err, hearth.RateLimited)
			retry, ok := auth.RetryAfter(err)
			if !ok || retry != 14*time.Minute {
				t.Errorf("RetryAfter = %v, %v; want 14m (the first failure leaves the 15-minute window then)", retry, ok)
			}
		})
	}

	// Another address is not throttled by this one's failures.
	_, _, _, err := svc.Login(bg, "someone@example.com", "guess", "192.0.2.1")
	wantBadCredentials(t, err)

	clock.Advance(14 * time.Minute)
	if _, _, _, err := svc.Login(bg, "ops@example.com", testPassword, "198.51.100.1"); err != nil {
		t.Errorf("after the window, the right password: %v", err)
	}
}

func TestLoginThrottlePerClient(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t, auth.Options{MaxFailuresPerClient: 3})
	newUser(t, svc, "ops@example.com", hearth.RoleAdmin)
	for i := range 3 {
		_, _, _, err := svc.Login(bg, fmt.Sprintf("user%d@example.com", i), "guess", "192.0.2.1")
		wantBadCredentials(t, err)
	}
	_, _, _, err := svc.Login(bg, "ops@example.com", testPassword, "192.0.2.1")
	wantKind(t, err, hearth.RateLimited)
	if retry, ok := auth.RetryAfter(err); !ok || retry != 15*time.Minute {
		t.Errorf("RetryAfter = %v, %v; want 15m", retry, ok)
	}
	if _, _, _, err := svc.Login(bg, "ops@example.com", testPassword, "192.0.2.2"); err != nil {
		t.Errorf("from another client: %v", err)
	}
	clock.Advance(15 * time.Minute)
	if _, _, _, err := svc.Login(bg, "ops@example.com", testPassword, "192.0.2.1"); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestDisabledUser(t *testing.T) {
	t.Parallel()
	svc, db, _ := newService(t, auth.Options{})
	admin := newUser(t, svc, "ops@example.com", hearth.RoleAdmin)
	user := newUser(t, svc, "lin@example.com", hearth.RoleMarketer)
	actor := auth.Principal{Role: hearth.RoleAdmin, UserID: admin.ID}
	token := login(t, svc, "lin@example.com")
	yes, no := true, false

	if _, err := svc.UpdateUser(bg, actor, user.ID, auth.UserChange{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	wantSignedOut(t, svc, token)
	_, _, _, err := svc.Login(bg, "lin@example.com", testPassword, "192.0.2.1")
	wantBadCredentials(t, err)

	if _, err := svc.UpdateUser(bg, actor, user.ID, auth.UserChange{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	wantSignedOut(t, svc, token) // enabling again does not bring old sessions back
	token = login(t, svc, "lin@example.com")

	// A session of a user disabled some other way (another node, an old version) stops working too.
	user.Disabled = true
	if err := db.UpdateUser(bg, user); err != nil {
		t.Fatal(err)
	}
	wantSignedOut(t, svc, token)
}

func TestSession(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t, auth.Options{SessionTTL: time.Hour})
	newUser(t, svc, "ops@example.com", hearth.RoleAdmin)

	t.Run("expires", func(t *testing.T) {
		token := login(t, svc, "ops@example.com")
		clock.Advance(time.Hour - time.Second)
		if _, _, err := svc.SessionPrincipal(bg, token); err != nil {
			t.Fatalf("a second before expiry: %v", err)
		}
		clock.Advance(time.Second)
		wantSignedOut(t, svc, token)
	})
	t.Run("logout", func(t *testing.T) {
		token := login(t, svc, "ops@example.com")
		other := login(t, svc, "ops@example.com")
		if err := svc.Logout(bg, token); err != nil {
			t.Fatal(err)
		}
		wantSignedOut(t, svc, token)
		if _, _, err := svc.SessionPrincipal(bg, other); err != nil {
			t.Errorf("logging out ended another session: %v", err)
		}
		if err := svc.Logout(bg, token); err != nil {
			t.Errorf("logging out twice: %v", err)
		}
	})
	t.Run("unknown tokens", func(t *testing.T) {
		for _, token := range []string{"", "not-a-token", strings.Repeat("A", 43)} {
			wantSignedOut(t, svc, token)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t, auth.Options{})
	key, k, err := svc.CreateAPIKey(bg, " CRM sync ", hearth.RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, auth.KeyPrefix) || len(key) < 40 || k.Prefix != key[:len(k.Prefix)] || len(k.Prefix) <= len(auth.KeyPrefix) {
		t.Errorf("key %q with prefix %q: want hk_ and a long secret, and a prefix that starts it", key, k.Prefix)
	}
	if diff := cmp.Diff(auth.APIKey{ID: k.ID, Name: "CRM sync", Role: hearth.RoleAnalyst, Prefix: k.Prefix, CreatedAt: start}, k); diff != "" {
		t.Errorf("key (-want +got):\n%s", diff)
	}
	other, _, err := svc.CreateAPIKey(bg, "Other", hearth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if other == key {
		t.Fatal("two keys are the same")
	}

	clock.Advance(time.Minute)
	p, err := svc.APIKeyPrincipal(bg, key)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.Principal{Role: hearth.RoleAnalyst, APIKeyID: k.ID}, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	used := clock.Now()
	for _, bad := range []string{"", key + "x", key[:len(key)-1], strings.ToUpper(key), auth.KeyPrefix} {
		_, err := svc.APIKeyPrincipal(bg, bad)
		wantKind(t, err, hearth.Unauthenticated)
	}

	clock.Advance(time.Minute)
	if err := svc.RevokeAPIKey(bg, k.ID); err != nil {
		t.Fatal(err)
	}
	_, err = svc.APIKeyPrincipal(bg, key)
	wantKind(t, err, hearth.Unauthenticated)
	if _, err := svc.APIKeyPrincipal(bg, other); err != nil {
		t.Errorf("revoking one key stopped another: %v", err)
	}
	wantKind(t, svc.RevokeAPIKey(bg, "no-such-key"), hearth.NotFound)

	keys, err := svc.APIKeys(bg)
	if err != nil {
		t.Fatal(err)
	}
	var listed *auth.APIKey
	for i := range keys {
		if keys[i].ID == k.ID {
			listed = &keys[i]
		}
	}
	revoked := clock.Now()
	if listed == nil {
		t.Fatalf("the revoked key is not listed: %+v", keys)
	}
	if diff := cmp.Diff(auth.APIKey{ID: k.ID, Name: "CRM sync", Role: hearth.RoleAnalyst, Prefix: k.Prefix, CreatedAt: start, LastUsedAt: &used, RevokedAt: &revoked}, *listed); diff != "" {
		t.Errorf("listed key (-want +got):\n%s", diff)
	}
}

func TestCreateAPIKeyInvalid(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t, auth.Options{})
	tests := []struct {
		name    string
		keyName string
		role    hearth.Role
	}{
		{"empty name", "", hearth.RoleAdmin},
		{"blank name", "   ", hearth.RoleAdmin},
		{"long name", strings.Repeat("n", 101), hearth.RoleAdmin},
		{"unknown role", "CRM sync", hearth.Role("owner")},
		{"no role", "CRM sync", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _, err := svc.CreateAPIKey(bg, tt.keyName, tt.role)
			wantKind(t, err, hearth.Invalid)
			if key != "" {
				t.Errorf("a refused key was returned: %q", key)
			}
		})
	}
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t, auth.Options{})
	admin := newUser(t, svc, "ops@example.com", hearth.RoleAdmin)
	// Another admin, so that only the rule about oneself can refuse the changes to oneself below.
	user := newUser(t, svc, "lin@example.com", hearth.RoleAdmin)
	self := auth.Principal{Role: hearth.RoleAdmin, UserID: admin.ID}
	str := func(s string) *string { return &s }
	role := func(r hearth.Role) *hearth.Role { return &r }
	yes, no := true, false

	// The cases run in order on one store.
	tests := []struct {
		name    string
		id      string
		change  auth.UserChange
		wantErr bool
		kind    hearth.Kind
	}{
		{"demote self", admin.ID, auth.UserChange{Role: role(hearth.RoleAnalyst)}, true, hearth.Invalid},
		{"disable self", admin.ID, auth.UserChange{Disabled: &yes}, true, hearth.Invalid},
		{"rename self and demote self", admin.ID, auth.UserChange{Name: str("Ops"), Role: role(hearth.RoleMarketer)}, true, hearth.Invalid},
		{"rename self", admin.ID, auth.UserChange{Name: str(" Ops ")}, false, 0},
		{"keep own role", admin.ID, auth.UserChange{Role: role(hearth.RoleAdmin)}, false, 0},
		{"enable self", admin.ID, auth.UserChange{Disabled: &no}, false, 0},
		{"demote another", user.ID, auth.UserChange{Role: role(hearth.RoleMarketer)}, false, 0},
		{"promote another", user.ID, auth.UserChange{Role: role(hearth.RoleAdmin)}, false, 0},
		{"disable another", user.ID, auth.UserChange{Disabled: &yes}, false, 0},
		{"unknown role", user.ID, auth.UserChange{Role: role("owner")}, true, hearth.Invalid},
		{"empty name", user.ID, auth.UserChange{Name: str(" ")}, true, hearth.Invalid},
		{"long name", user.ID, auth.UserChange{Name: str(strings.Repeat("n", 101))}, true, hearth.Invalid},
		{"unknown user", "no-such-user", auth.UserChange{Name: str("Nobody")}, true, hearth.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := svc.User(bg, tt.id)
			got, err := svc.UpdateUser(bg, self, tt.id, tt.change)
			after, _ := svc.User(bg, tt.id)
			if tt.wantErr {
				wantKind(t, err, tt.kind)
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("a refused change changed the user (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(after, got); diff != "" {
				t.Errorf("UpdateUser's answer differs from the stored user (-stored +answer):\n%s", diff)
			}
			want := before
			if tt.change.Name != nil {
				want.Name = strings.TrimSpace(*tt.change.Name)
			}
			if tt.change.Role != nil {
				want.Role = *tt.change.Role
			}
			if tt.change.Disabled != nil {
				want.Disabled = *tt.change.Disabled
			}
			if diff := cmp.Diff(want, after); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}

// "There is always an enabled admin", whoever the caller: an admin API key cannot demote or disable the last
// enabled admin either.
func TestUpdateUserKeepsAnEnabledAdmin(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t, auth.Options{})
	admin := newUser(t, svc, "ops@example.com", hearth.RoleAdmin)
	_, k, err := svc.CreateAPIKey(bg, "automation", hearth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	key := auth.Principal{Role: hearth.RoleAdmin, APIKeyID: k.ID}
	role, yes := hearth.RoleAnalyst, true
	for name, ch := range map[string]auth.UserChange{"demote": {Role: &role}, "disable": {Disabled: &yes}} {
		t.Run(name, func(t *testing.T) {
			if _, err := svc.UpdateUser(bg, key, admin.ID, ch); err == nil {
				t.Error("an API key removed the last enabled admin")
			}
			u, err := svc.User(bg, admin.ID)
			if err != nil {
				t.Fatal(err)
			}
			if u.Role != hearth.RoleAdmin || u.Disabled {
				t.Errorf("the only admin is now %s, disabled %v", u.Role, u.Disabled)
			}
			// Restore, so that the next case starts from one enabled admin.
			r, no := hearth.RoleAdmin, false
			self := auth.Principal{Role: hearth.RoleAdmin}
			if _, err := svc.UpdateUser(bg, self, admin.ID, auth.UserChange{Role: &r, Disabled: &no}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t, auth.Options{})
	u := newUser(t, svc, "ops@example.com", hearth.RoleAdmin)
	current := login(t, svc, "ops@example.com")
	other := login(t, svc, "ops@example.com")
	p, _, err := svc.SessionPrincipal(bg, current)
	if err != nil {
		t.Fatal(err)
	}
	const next = "a new long password"

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name          string
			actor         auth.Principal
			current, next string
			kind          hearth.Kind
			code          string
		}{
			{"wrong current password", p, "not the password", next, hearth.Invalid, "invalid_credentials"},
			{"new password too short", p, testPassword, "short", hearth.Invalid, "invalid"},
			{"new password too long", p, testPassword, strings.Repeat("x", 1025), hearth.Invalid, "invalid"},
			{"API key", auth.Principal{Role: hearth.RoleAdmin, APIKeyID: "key"}, testPassword, next, hearth.Forbidden, "forbidden"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := svc.ChangePassword(bg, tt.actor, current, tt.current, tt.next)
				wantKind(t, err, tt.kind)
				if code := hearth.CodeOf(err); code != tt.code {
					t.Errorf("code = %q, want %q", code, tt.code)
				}
			})
		}
		// Nothing changed: both sessions still work.
		for _, token := range []string{current, other} {
			if _, _, err := svc.SessionPrincipal(bg, token); err != nil {
				t.Errorf("a refused change ended a session: %v", err)
			}
		}
	})

	if err := svc.ChangePassword(bg, p, current, testPassword, next); err != nil {
		t.Fatal(err)
	}
	if _, got, err := svc.SessionPrincipal(bg, current); err != nil || got.ID != u.ID {
		t.Errorf("the session that changed the password: %v, want it kept", err)
	}
	wantSignedOut(t, svc, other)
	_, _, _, err = svc.Login(bg, "ops@example.com", testPassword, "192.0.2.1")
	wantBadCredentials(t, err)
	if _, _, _, err := svc.Login(bg, "ops@example.com", next, "192.0.2.1"); err != nil {
		t.Errorf("sign in with the new password: %v", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t, auth.Options{})
	_, err := svc.EnsureAdmin(bg, "ops@example.com", "short")
	wantKind(t, err, hearth.Invalid)
	for i, email := range []string{"ops@example.com", "other@example.com"} {
		created, err := svc.EnsureAdmin(bg, email, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if created != (i == 0) {
			t.Errorf("EnsureAdmin #%d created = %v", i+1, created)
		}
	}
	users, err := svc.Users(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Email != "ops@example.com" || users[0].Role != hearth.RoleAdmin {
		t.Errorf("users = %+v, want the first admin only", users)
	}
	if needs, err := svc.NeedsSetup(bg); err != nil || needs {
		t.Errorf("NeedsSetup = %v, %v; want false", needs, err)
	}
}

func TestSetup(t *testing.T) {
	t.Parallel()
	form := auth.NewUser{Email: "lin@example.com", Name: "Lin Wei", Password: testPassword}

	t.Run("completes once", func(t *testing.T) {
		svc, _, _ := newService(t, auth.Options{})
		if needs, err := svc.NeedsSetup(bg); err != nil || !needs {
			t.Fatalf("NeedsSetup on an empty store = %v, %v", needs, err)
		}
		token, err := svc.NewSetupToken(bg)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.CheckSetupToken(bg, token); err != nil {
			t.Fatal(err)
		}
		wantKind(t, svc.CheckSetupToken(bg, token+"x"), hearth.NotFound)
		wantKind(t, svc.CheckSetupToken(bg, ""), hearth.NotFound)

		// A refused form does not spend the token.
		bad := form
		bad.Password = "short"
		_, _, _, err = svc.CompleteSetup(bg, token, bad)
		wantKind(t, err, hearth.Invalid)
		if err := svc.CheckSetupToken(bg, token); err != nil {
			t.Fatalf("a refused form spent the token: %v", err)
		}

		analyst := form
		analyst.Role = hearth.RoleAnalyst // ignored: the first user is an admin
		sessToken, _, u, err := svc.CompleteSetup(bg, token, analyst)
		if err != nil {
			t.Fatal(err)
		}
		if u.Role != hearth.RoleAdmin || u.Email != "lin@example.com" || u.Name != "Lin Wei" {
			t.Errorf("first user = %+v, want the admin Lin Wei", u)
		}
		if p, _, err := svc.SessionPrincipal(bg, sessToken); err != nil || p.UserID != u.ID {
			t.Errorf("the setup's session: %+v, %v", p, err)
		}
		wantKind(t, svc.CheckSetupToken(bg, token), hearth.NotFound)
		_, _, _, err = svc.CompleteSetup(bg, token, auth.NewUser{Email: "mallory@example.com", Password: testPassword})
		wantKind(t, err, hearth.NotFound)

		// A fresh token cannot add a second "first" admin.
		token2, err := svc.NewSetupToken(bg)
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, svc.CheckSetupToken(bg, token2), hearth.NotFound)
		_, _, _, err = svc.CompleteSetup(bg, token2, auth.NewUser{Email: "mallory@example.com", Password: testPassword})
		wantKind(t, err, hearth.Conflict)
		if users, _ := svc.Users(bg); len(users) != 1 {
			t.Errorf("%d users, want 1", len(users))
		}
	})

	t.Run("a new token replaces the old", func(t *testing.T) {
		svc, _, _ := newService(t, auth.Options{})
		old, err := svc.NewSetupToken(bg)
		if err != nil {
			t.Fatal(err)
		}
		token, err := svc.NewSetupToken(bg)
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, svc.CheckSetupToken(bg, old), hearth.NotFound)
		if err := svc.CheckSetupToken(bg, token); err != nil {
			t.Error(err)
		}
	})

	t.Run("expires", func(t *testing.T) {
		svc, _, clock := newService(t, auth.Options{SetupTTL: time.Hour})
		token, err := svc.NewSetupToken(bg)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour - time.Second)
		if err := svc.CheckSetupToken(bg, token); err != nil {
			t.Fatalf("a second before expiry: %v", err)
		}
		clock.Advance(time.Second)
		wantKind(t, svc.CheckSetupToken(bg, token), hearth.NotFound)
		_, _, _, err = svc.CompleteSetup(bg, token, form)
		wantKind(t, err, hearth.NotFound)
	})
}

// Two people opening the setup link at once: exactly one becomes the first admin.
func TestCompleteSetupRace(t *testing.T) {
	t.Parallel()
	for _, eng := range storetest.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			for round := range 3 {
				clock := storetest.NewClock(start)
				svc := auth.NewService(eng.Open(t, clock), clock, slog.New(slog.DiscardHandler), auth.Options{})
				token, err := svc.NewSetupToken(bg)
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				errs := make([]error, 2)
				ready := make(chan struct{})
				for i := range errs {
					wg.Go(func() {
						<-ready
						_, _, _, errs[i] = svc.CompleteSetup(bg, token, auth.NewUser{Email: fmt.Sprintf("admin%d@example.com", i), Password: testPassword})
					})
				}
				close(ready)
				wg.Wait()
				succeeded := 0
				for _, err := range errs {
					switch k := hearth.KindOf(err); {
					case err == nil:
						succeeded++
					case k != hearth.NotFound && k != hearth.Conflict:
						t.Errorf("round %d: the losing setup failed with %v (kind %v), want NotFound or Conflict", round, err, k)
					}
				}
				users, err := svc.Users(bg)
				if err != nil {
					t.Fatal(err)
				}
				if succeeded != 1 || len(users) != 1 {
					t.Errorf("round %d: %d setups succeeded and %d users exist, want 1 and 1 (errors: %v)", round, succeeded, len(users), errs)
				}
			}
		})
	}
}
