package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hearth-cdp/hearth"
)

func TestProfileSettings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		// Defaults until an admin sets them; any role may read.
		r := e.as(hearth.RoleAnalyst).do("GET", "/api/v1/settings/profiles", nil)
		wantStatus(t, r, http.StatusOK)
		var got struct {
			Identity struct {
				PhoneRegion string `json:"phone_region"`
				Types       []struct{ Type string }
			}
			Mappings  []map[string]any
			Lifecycle struct {
				ConversionEvents []string `json:"conversion_events"`
			}
		}
		r.decode(t, &got)
		if got.Identity.PhoneRegion != "CN" || len(got.Identity.Types) == 0 || got.Identity.Types[0].Type != "user_id" ||
			got.Lifecycle.ConversionEvents[0] != "Order Completed" || got.Mappings == nil {
			t.Errorf("default settings: %s", r.body)
		}

		body := `{"identity":{"phone_region":"HK"},"mappings":[{"source_id":"wechat","fields":[{"from":"nickname","to":"name"}]}]}`
		wantStatus(t, e.as(hearth.RoleMarketer).do("PUT", "/api/v1/settings/profiles", body), http.StatusForbidden)
		wantStatus(t, e.client().do("PUT", "/api/v1/settings/profiles", body), http.StatusUnauthorized)
		r = e.as(hearth.RoleAdmin).do("PUT", "/api/v1/settings/profiles", body)
		wantStatus(t, r, http.StatusOK)
		r = e.as(hearth.RoleMarketer).do("GET", "/api/v1/settings/profiles", nil)
		r.decode(t, &got)
		if got.Identity.PhoneRegion != "HK" || len(got.Mappings) != 1 || got.Lifecycle.ConversionEvents[0] != "Order Completed" {
			t.Errorf("after PUT: %s", r.body)
		}

		// Every problem at once, each named; nothing stored.
		r = e.as(hearth.RoleAdmin).do("PUT", "/api/v1/settings/profiles",
			`{"identity":{"phone_region":"XX"},"traits":[{"name":"name","precedence":"loudest"}]}`)
		wantStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(string(r.body), "phone_region") {
			t.Errorf("the error does not name the identity problem: %s", r.body)
		}
		r = e.as(hearth.RoleAdmin).do("PUT", "/api/v1/settings/profiles", `{"traits":[{"name":"name","precedence":"loudest"}],"lifecycle":{"conversion_events":[""]}}`)
		wantStatus(t, r, http.StatusBadRequest)
		for _, want := range []string{"traits[0].precedence", "lifecycle.conversion_events[0]"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("the error does not name %s: %s", want, r.body)
			}
		}
		wantStatus(t, e.as(hearth.RoleAdmin).do("PUT", "/api/v1/settings/profiles", `[1]`), http.StatusBadRequest)
		r = e.as(hearth.RoleAdmin).do("GET", "/api/v1/settings/profiles", nil)
		r.decode(t, &got)
		if got.Identity.PhoneRegion != "HK" {
			t.Errorf("a refused PUT changed the settings: %s", r.body)
		}
	})
}
