package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hearth-cdp/hearth"
)

func TestUsers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		admin := e.client()
		wantStatus(t, admin.login(adminEmail, adminPassword), http.StatusOK)
		var me struct{ User struct{ ID string } }
		admin.do("GET", "/api/v1/auth/session", nil).decode(t, &me)

		r := admin.do("POST", "/api/v1/users", map[string]string{"email": " Mei@Example.com ", "name": "李梅", "role": "marketer", "password": "a good password"})
		wantStatus(t, r, http.StatusCreated)
		var mei struct {
			ID, Email, Name, Role string
			Disabled              bool
		}
		r.decode(t, &mei)
		if mei.Email != "mei@example.com" || mei.Role != "marketer" || mei.Name != "李梅" {
			t.Errorf("created %+v", mei)
		}
		r = admin.do("POST", "/api/v1/users", map[string]string{"email": "mei@example.com", "role": "analyst", "password": "a good password"})
		if r.status != http.StatusConflict {
			t.Errorf("duplicate email: %d %s", r.status, r.body)
		}
		for name, body := range map[string]map[string]string{
			"bad email":      {"email": "mei", "role": "analyst", "password": "a good password"},
			"bad role":       {"email": "x@example.com", "role": "owner", "password": "a good password"},
			"short password": {"email": "x@example.com", "role": "analyst", "password": "short"},
		} {
			if r := admin.do("POST", "/api/v1/users", body); r.status != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", name, r.status, r.body)
			}
		}

		// Mei signs in; an admin disables her; her session ends at once.
		m := e.client()
		wantStatus(t, m.login("mei@example.com", "a good password"), http.StatusOK)
		wantStatus(t, m.do("POST", "/api/v1/sources", map[string]string{"name": "App", "kind": "app"}), http.StatusCreated)
		wantStatus(t, m.do("GET", "/api/v1/users", nil), http.StatusForbidden)
		r = admin.do("PATCH", "/api/v1/users/"+mei.ID, map[string]any{"role": "analyst"})
		wantStatus(t, r, http.StatusOK)
		wantStatus(t, m.do("POST", "/api/v1/sources", map[string]string{"name": "App 2", "kind": "app"}), http.StatusForbidden)
		wantStatus(t, admin.do("PATCH", "/api/v1/users/"+mei.ID, map[string]any{"disabled": true}), http.StatusOK)
		wantStatus(t, m.do("GET", "/api/v1/sources", nil), http.StatusUnauthorized)
		wantStatus(t, e.client().login("mei@example.com", "a good password"), http.StatusUnauthorized)

		// There is always an admin: one cannot demote or disable oneself.
		wantStatus(t, admin.do("PATCH", "/api/v1/users/"+me.User.ID, map[string]any{"role": "analyst"}), http.StatusBadRequest)
		wantStatus(t, admin.do("PATCH", "/api/v1/users/"+me.User.ID, map[string]any{"disabled": true}), http.StatusBadRequest)

		var users struct{ Items []struct{ Email string } }
		admin.do("GET", "/api/v1/users", nil).decode(t, &users)
		if len(users.Items) != 2 {
			t.Errorf("users = %+v", users.Items)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		admin := e.as(hearth.RoleAdmin)
		r := admin.do("POST", "/api/v1/api-keys", map[string]string{"name": "BI export", "role": "analyst"})
		wantStatus(t, r, http.StatusCreated)
		var k struct{ ID, Key, Prefix, Role string }
		r.decode(t, &k)
		if len(k.Key) < 40 || k.Key[:len(k.Prefix)] != k.Prefix || k.Role != "analyst" {
			t.Fatalf("created %+v", k)
		}
		bi := e.client()
		bi.header.Set("Authorization", "Bearer "+k.Key)
		wantStatus(t, bi.do("GET", "/api/v1/sources", nil), http.StatusOK)
		wantStatus(t, bi.do("POST", "/api/v1/sources", map[string]string{"name": "x", "kind": "app"}), http.StatusForbidden)

		var keys struct {
			Items []struct {
				ID, Key    string
				LastUsedAt *string `json:"last_used_at"`
			}
		}
		admin.do("GET", "/api/v1/api-keys", nil).decode(t, &keys)
		if len(keys.Items) != 4 || keys.Items[0].ID != k.ID || keys.Items[0].Key != "" || keys.Items[0].LastUsedAt == nil {
			t.Errorf("list = %+v; want 4 keys, newest first, without the key, with last use", keys.Items)
		}
		wantStatus(t, admin.do("DELETE", "/api/v1/api-keys/"+k.ID, nil), http.StatusNoContent)
		wantStatus(t, bi.do("GET", "/api/v1/sources", nil), http.StatusUnauthorized)
		wantStatus(t, admin.do("DELETE", "/api/v1/api-keys/nope", nil), http.StatusNotFound)
		wantStatus(t, admin.do("POST", "/api/v1/api-keys", map[string]string{"name": "", "role": "analyst"}), http.StatusBadRequest)
	})
}

func TestOperational(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.client()
		r := c.do("GET", "/healthz", nil)
		wantStatus(t, r, http.StatusOK)
		if r.header.Get("X-Request-ID") == "" {
			t.Error("no X-Request-ID")
		}
		c.header.Set("X-Request-ID", "abc123")
		if got := c.do("GET", "/healthz", nil).header.Get("X-Request-ID"); got != "abc123" {
			t.Errorf("X-Request-ID = %q, want the caller's", got)
		}
		e.as(hearth.RoleAnalyst).do("GET", "/api/v1/sources", nil)
		r = c.do("GET", "/metrics", nil)
		wantStatus(t, r, http.StatusOK)
		if want := `hearth_http_requests_total{code="200",route="GET /api/v1/sources"} 1`; !contains(r.body, want) {
			t.Errorf("metrics lack %s", want)
		}
		r = c.do("GET", "/", nil)
		if r.status != http.StatusFound || r.header.Get("Location") != "/console/" {
			t.Errorf("GET / = %d to %q", r.status, r.header.Get("Location"))
		}
		var sys struct{ Version, Engine string }
		e.as(hearth.RoleAnalyst).do("GET", "/api/v1/system", nil).decode(t, &sys)
		if sys.Version != "test" || (sys.Engine != "sqlite" && sys.Engine != "postgres") {
			t.Errorf("system = %+v", sys)
		}
	})
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
