package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/hearth-cdp/hearth"
)

// Every admin API route refuses callers without credentials (401) and roles that may not (403).
func TestAccessControl(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		src := createSource(t, e.as(hearth.RoleAdmin), "Website", "website")
		revoked, k, err := e.auth.CreateAPIKey(t.Context(), "old", hearth.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.auth.RevokeAPIKey(t.Context(), k.ID); err != nil {
			t.Fatal(err)
		}
		var tp struct{ ID string }
		e.as(hearth.RoleAdmin).do("POST", "/api/v1/touchpoints", map[string]string{"name": "Poster", "channel": "qr_poster", "destination_url": "https://shop.example/"}).decode(t, &tp)
		var cp struct{ ID string }
		e.as(hearth.RoleAdmin).do("POST", "/api/v1/campaigns", map[string]string{"name": "Spring"}).decode(t, &cp)
		var cb struct{ ID string }
		e.as(hearth.RoleAdmin).do("POST", "/api/v1/touchpoints/"+tp.ID+"/code-batches", map[string]int{"count": 1}).decode(t, &cb)
		// Who may call each route: "read" any role, "write" admin and marketer, "admin" admin only.
		routes := []struct {
			method, path string
			body         any
			need         string
		}{
			{"GET", "/api/v1/system", nil, "read"},
			{"GET", "/api/v1/system/processing", nil, "read"},
			{"GET", "/api/v1/system/set-aside", nil, "admin"},
			{"GET", "/api/v1/touches", nil, "read"},
			{"GET", "/api/v1/sources", nil, "read"},
			{"GET", "/api/v1/sources/" + src.ID, nil, "read"},
			{"POST", "/api/v1/sources", map[string]string{"name": "x", "kind": "app"}, "write"},
			{"PATCH", "/api/v1/sources/" + src.ID, map[string]string{"name": "Website"}, "write"},
			{"POST", "/api/v1/sources/" + src.ID + "/enable", nil, "write"},
			{"POST", "/api/v1/sources/" + src.ID + "/write-key", nil, "write"},
			{"GET", "/api/v1/campaigns", nil, "read"},
			{"POST", "/api/v1/campaigns", map[string]string{"name": "x"}, "write"},
			{"GET", "/api/v1/campaigns/" + cp.ID, nil, "read"},
			{"PATCH", "/api/v1/campaigns/" + cp.ID, map[string]string{"goal": "x"}, "write"},
			{"POST", "/api/v1/campaigns/" + cp.ID + "/pause", nil, "write"},
			{"POST", "/api/v1/campaigns/" + cp.ID + "/resume", nil, "write"},
			{"GET", "/api/v1/campaigns/" + cp.ID + "/people", nil, "read"},
			{"GET", "/api/v1/touchpoints", nil, "read"},
			{"POST", "/api/v1/touchpoints", map[string]string{"name": "x", "channel": "ad", "destination_url": "https://shop.example/"}, "write"},
			{"GET", "/api/v1/touchpoints/" + tp.ID, nil, "read"},
			{"PATCH", "/api/v1/touchpoints/" + tp.ID, map[string]string{"owner": "x"}, "write"},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/pause", nil, "write"},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/resume", nil, "write"},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/tokens", map[string]int{"serial": 0}, "write"},
			{"GET", "/api/v1/touchpoints/" + tp.ID + "/qr.png", nil, "read"},
			{"GET", "/api/v1/touchpoints/" + tp.ID + "/qr.svg", nil, "read"},
			{"GET", "/api/v1/touchpoints/" + tp.ID + "/people", nil, "read"},
			{"GET", "/api/v1/touchpoints/" + tp.ID + "/revocations", nil, "read"},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/revocations", map[string]any{"kind": "serials", "serial_from": 5, "serial_to": 6}, "write"},
			{"GET", "/api/v1/touchpoints/" + tp.ID + "/code-batches", nil, "read"},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/code-batches", map[string]int{"count": 1}, "write"},
			{"GET", "/api/v1/code-batches/" + cb.ID, nil, "read"},
			{"GET", "/api/v1/code-batches/" + cb.ID + "/download", nil, "read"},
			{"GET", "/api/v1/touchpoints/" + tp.ID + "/wechat-qr", nil, "read"},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/wechat-qr", map[string]any{"account_id": "nope", "permanent": true}, "write"},
			{"GET", "/api/v1/wechat-accounts", nil, "read"},
			{"POST", "/api/v1/wechat-accounts", map[string]string{"name": "x"}, "write"},
			{"GET", "/api/v1/wechat-accounts/nope", nil, "read"},
			{"PATCH", "/api/v1/wechat-accounts/nope", map[string]string{"name": "x"}, "write"},
			{"GET", "/api/v1/profiles", nil, "read"},
			{"GET", "/api/v1/profiles?q=ada", nil, "read"},
			{"GET", "/api/v1/profiles/lookup?type=email&value=ada@example.com", nil, "read"},
			{"GET", "/api/v1/profiles/nope", nil, "read"},
			{"GET", "/api/v1/profiles/nope/events", nil, "read"},
			{"GET", "/api/v1/profiles/nope/segments", nil, "read"},
			{"POST", "/api/v1/profiles/nope/unmerge", map[string]string{"from": "nope"}, "admin"},
			{"GET", "/api/v1/unmerges/1", nil, "read"},
			{"GET", "/api/v1/settings/profiles", nil, "read"},
			{"PUT", "/api/v1/settings/profiles", map[string]any{}, "admin"},
			{"GET", "/api/v1/segments", nil, "read"},
			{"POST", "/api/v1/segments", map[string]string{"name": "x", "kind": "list"}, "write"},
			{"POST", "/api/v1/segments/count", map[string]any{"rule": map[string]any{"reachable": map[string]string{"channel": "email"}}}, "read"},
			{"GET", "/api/v1/segments/nope", nil, "read"},
			{"PATCH", "/api/v1/segments/nope", map[string]string{"name": "x"}, "write"},
			{"DELETE", "/api/v1/segments/nope", nil, "write"},
			{"PUT", "/api/v1/segments/nope/list", "email\na@example.com\n", "write"},
			{"GET", "/api/v1/segments/nope/members", nil, "read"},
			{"GET", "/api/v1/segments/nope/members.csv", nil, "read"},
			{"GET", "/api/v1/segments/nope/sizes", nil, "read"},
			{"POST", "/api/v1/touches", map[string]string{"touchpoint_id": tp.ID, "phone": "13800138000"}, "write"},
			{"POST", "/api/v1/touches/import", "touchpoint_id,phone\n" + tp.ID + ",13800138000\n", "write"},
			{"GET", "/api/v1/signing-keys", nil, "admin"},
			{"POST", "/api/v1/signing-keys", nil, "admin"},
			{"POST", "/api/v1/signing-keys/999/retire", nil, "admin"},
			{"GET", "/api/v1/users", nil, "admin"},
			{"POST", "/api/v1/users", map[string]string{"email": "x@example.com", "role": "analyst", "password": "0123456789"}, "admin"},
			{"PATCH", "/api/v1/users/nope", map[string]string{"name": "x"}, "admin"},
			{"GET", "/api/v1/api-keys", nil, "admin"},
			{"POST", "/api/v1/api-keys", map[string]string{"name": "x", "role": "analyst"}, "admin"},
			{"DELETE", "/api/v1/api-keys/nope", nil, "admin"},
			{"GET", "/api/v1/no-such-thing", nil, "read"},
		}
		allowed := map[string][]hearth.Role{
			"read":  {hearth.RoleAdmin, hearth.RoleMarketer, hearth.RoleAnalyst},
			"write": {hearth.RoleAdmin, hearth.RoleMarketer},
			"admin": {hearth.RoleAdmin},
		}
		for _, rt := range routes {
			name := rt.method + " " + rt.path
			t.Run(name, func(t *testing.T) {
				if r := e.client().do(rt.method, rt.path, rt.body); r.status != http.StatusUnauthorized || r.errCode() != "unauthenticated" {
					t.Errorf("without credentials: %d %s, want 401 unauthenticated", r.status, r.body)
				}
				bad := e.client()
				bad.header.Set("Authorization", "Bearer hk_not-a-key")
				if r := bad.do(rt.method, rt.path, rt.body); r.status != http.StatusUnauthorized {
					t.Errorf("with a wrong key: %d, want 401", r.status)
				}
				old := e.client()
				old.header.Set("Authorization", "Bearer "+revoked)
				if r := old.do(rt.method, rt.path, rt.body); r.status != http.StatusUnauthorized {
					t.Errorf("with a revoked key: %d, want 401", r.status)
				}
				for _, role := range []hearth.Role{hearth.RoleAdmin, hearth.RoleMarketer, hearth.RoleAnalyst} {
					r := e.as(role).do(rt.method, rt.path, rt.body)
					may := false
					for _, a := range allowed[rt.need] {
						may = may || a == role
					}
					if may && (r.status == http.StatusUnauthorized || r.status == http.StatusForbidden) {
						t.Errorf("%s: %d %s, want it allowed", role, r.status, r.body)
					}
					if !may && (r.status != http.StatusForbidden || r.errCode() != "forbidden") {
						t.Errorf("%s: %d %s, want 403 forbidden", role, r.status, r.body)
					}
				}
			})
		}
	})
}

func TestMalformedAuthorization(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.client()
		c.header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
		r := c.do("GET", "/api/v1/sources", nil)
		wantStatus(t, r, http.StatusUnauthorized)
	})
}
