package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
)

func TestConsoleSession(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.client()
		r := c.login(adminEmail, "wrong password")
		if r.status != http.StatusUnauthorized || r.errCode() != "invalid_credentials" {
			t.Fatalf("wrong password: %d %s", r.status, r.body)
		}
		r = c.login(adminEmail, adminPassword)
		wantStatus(t, r, http.StatusOK)
		cookie := r.header.Get("Set-Cookie")
		for _, attr := range []string{"hearth_session=", "HttpOnly", "SameSite=Lax", "Path=/"} {
			if !strings.Contains(cookie, attr) {
				t.Errorf("session cookie %q lacks %s", cookie, attr)
			}
		}
		if strings.Contains(cookie, "Secure") {
			t.Errorf("session cookie %q is Secure on plain HTTP", cookie)
		}
		var sess struct {
			User      struct{ Email, Role string }
			CSRFToken string `json:"csrf_token"`
		}
		r = c.do("GET", "/api/v1/auth/session", nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &sess)
		if sess.User.Email != adminEmail || sess.User.Role != "admin" || sess.CSRFToken != c.header.Get("X-CSRF-Token") {
			t.Errorf("session = %+v", sess)
		}

		// Writes with the cookie need the CSRF token; reads do not.
		wantStatus(t, c.do("GET", "/api/v1/sources", nil), http.StatusOK)
		token := c.header.Get("X-CSRF-Token")
		c.header.Del("X-CSRF-Token")
		r = c.do("POST", "/api/v1/sources", map[string]string{"name": "Shop", "kind": "website"})
		if r.status != http.StatusForbidden || r.errCode() != "csrf" {
			t.Errorf("write without CSRF token: %d %s, want 403 csrf", r.status, r.body)
		}
		c.header.Set("X-CSRF-Token", "forged")
		wantStatus(t, c.do("POST", "/api/v1/sources", map[string]string{"name": "Shop", "kind": "website"}), http.StatusForbidden)
		c.header.Set("X-CSRF-Token", token)
		wantStatus(t, c.do("POST", "/api/v1/sources", map[string]string{"name": "Shop", "kind": "website"}), http.StatusCreated)

		// A cross-site browser request is refused whatever it carries.
		c.header.Set("Sec-Fetch-Site", "cross-site")
		wantStatus(t, c.do("POST", "/api/v1/sources", map[string]string{"name": "Shop 2", "kind": "website"}), http.StatusForbidden)
		c.header.Del("Sec-Fetch-Site")

		r = c.do("POST", "/api/v1/auth/logout", nil)
		wantStatus(t, r, http.StatusNoContent)
		wantStatus(t, c.do("GET", "/api/v1/auth/session", nil), http.StatusUnauthorized)
		wantStatus(t, c.do("GET", "/api/v1/sources", nil), http.StatusUnauthorized)
	})
}

func TestSessionExpires(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.client()
		wantStatus(t, c.login(adminEmail, adminPassword), http.StatusOK)
		e.clock.Advance(7*24*time.Hour + time.Second)
		wantStatus(t, c.do("GET", "/api/v1/sources", nil), http.StatusUnauthorized)
	})
}

func TestLoginThrottled(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.client()
		for i := 0; i < 10; i++ {
			wantStatus(t, c.login(adminEmail, "guess "+strconv.Itoa(i)), http.StatusUnauthorized)
		}
		r := c.login(adminEmail, adminPassword)
		if r.status != http.StatusTooManyRequests || r.errCode() != "rate_limited" {
			t.Fatalf("after 10 failures: %d %s, want 429 rate_limited", r.status, r.body)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s <= 0 || s > 15*60 {
			t.Errorf("Retry-After = %q, want 1..900 seconds", r.header.Get("Retry-After"))
		}
		e.clock.Advance(16 * time.Minute)
		wantStatus(t, c.login(adminEmail, adminPassword), http.StatusOK)
	})
}

func TestChangePassword(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c, other := e.client(), e.client()
		wantStatus(t, c.login(adminEmail, adminPassword), http.StatusOK)
		wantStatus(t, other.login(adminEmail, adminPassword), http.StatusOK)
		r := c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": "nope nope nope", "new_password": "a new long password"})
		wantStatus(t, r, http.StatusBadRequest)
		r = c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": adminPassword, "new_password": "short"})
		wantStatus(t, r, http.StatusBadRequest)
		r = c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": adminPassword, "new_password": "a new long password"})
		wantStatus(t, r, http.StatusNoContent)
		wantStatus(t, c.do("GET", "/api/v1/sources", nil), http.StatusOK)
		wantStatus(t, other.do("GET", "/api/v1/sources", nil), http.StatusUnauthorized)
		wantStatus(t, e.client().login(adminEmail, "a new long password"), http.StatusOK)
		// An API key has no password to change.
		wantStatus(t, e.as(hearth.RoleAdmin).do("POST", "/api/v1/auth/password", map[string]string{"current_password": "x", "new_password": "y"}), http.StatusForbidden)
	})
}

func TestSetupLink(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		// The shared env already has an admin, so a setup token never works there.
		token, err := e.auth.NewSetupToken(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, e.client().do("GET", "/api/v1/auth/setup?token="+token, nil), http.StatusNotFound)
		r := e.client().do("POST", "/api/v1/auth/setup", map[string]string{"token": token, "email": "x@example.com", "password": "0123456789ab"})
		if r.status == http.StatusOK {
			t.Fatalf("setup succeeded on a store with an admin: %s", r.body)
		}
	})
}
