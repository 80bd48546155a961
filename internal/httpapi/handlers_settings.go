package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
)

// Profile settings: the identity rules, attribute mappings, trait rules and lifecycle (docs/identity.md).

func (s *Server) profileSettingsReady(w http.ResponseWriter, r *http.Request) bool {
	if s.ProfileConfigs == nil {
		s.fail(w, r, hearth.Errorf(hearth.Unavailable, "httpapi.profile_settings", "Profile settings are not available on this server."))
		return false
	}
	return true
}

func (s *Server) getProfileSettings(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.profileSettingsReady(w, r) {
		return
	}
	c, err := s.ProfileConfigs.Get(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// putProfileSettings replaces the settings whole; absent members take their defaults. They apply to the
// events processed from then on.
func (s *Server) putProfileSettings(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if !s.profileSettingsReady(w, r) {
		return
	}
	var body json.RawMessage
	if err := decode(w, r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.ProfileConfigs.Put(r.Context(), body, principalName(p))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// principalName says who made a change: the user, or the API key.
func principalName(p auth.Principal) string {
	if p.UserID != "" {
		return "user:" + p.UserID
	}
	return "api-key:" + p.APIKeyID
}
