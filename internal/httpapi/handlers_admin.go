package httpapi

import (
	"net/http"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
)

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	users, err := s.Auth.Users(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(users, toUser))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Email    string      `json:"email"`
		Name     string      `json:"name"`
		Role     hearth.Role `json:"role"`
		Password string      `json:"password"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.Auth.CreateUser(r.Context(), auth.NewUser{Email: req.Email, Name: req.Name, Role: req.Role, Password: req.Password})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toUser(u))
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req struct {
		Name     *string      `json:"name"`
		Role     *hearth.Role `json:"role"`
		Disabled *bool        `json:"disabled"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.Auth.UpdateUser(r.Context(), p, r.PathValue("id"), auth.UserChange{Name: req.Name, Role: req.Role, Disabled: req.Disabled})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUser(u))
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	keys, err := s.Auth.APIKeys(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(keys, toAPIKey))
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Name string      `json:"name"`
		Role hearth.Role `json:"role"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	key, k, err := s.Auth.CreateAPIKey(r.Context(), req.Name, req.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := toAPIKey(k)
	out.Key = key
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if err := s.Auth.RevokeAPIKey(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
