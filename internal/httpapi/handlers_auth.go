package httpapi

import (
	"net"
	"net/http"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
)

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	token, sess, u, err := s.Auth.Login(r.Context(), req.Email, req.Password, clientAddr(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.setSessionCookie(w, r, token, sess)
	writeJSON(w, http.StatusOK, sessionJSON{User: toUser(u), CSRFToken: sess.CSRFToken})
}

func (s *Server) session(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		s.fail(w, r, hearth.Errorf(hearth.Unauthenticated, "httpapi.session", "You are not signed in."))
		return
	}
	p, u, err := s.Auth.SessionPrincipal(r.Context(), c.Value)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON{User: toUser(u), CSRFToken: p.CSRFToken})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.Auth.Logout(r.Context(), c.Value); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.clearSessionCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var token string
	if c, err := r.Cookie(sessionCookie); err == nil {
		token = c.Value
	}
	if err := s.Auth.ChangePassword(r.Context(), p, token, req.Current, req.New); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) checkSetup(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if err := s.Auth.CheckSetupToken(r.Context(), r.URL.Query().Get("token")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"valid": true})
}

func (s *Server) completeSetup(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Token    string `json:"token"`
		Email    string `json:"email"`
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	token, sess, u, err := s.Auth.CompleteSetup(r.Context(), req.Token, auth.NewUser{Email: req.Email, Name: req.Name, Password: req.Password})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "first admin created", "user_id", u.ID)
	s.setSessionCookie(w, r, token, sess)
	writeJSON(w, http.StatusOK, sessionJSON{User: toUser(u), CSRFToken: sess.CSRFToken})
}

func (s *Server) system(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	writeJSON(w, http.StatusOK, s.System)
}

func (s *Server) processing(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	p, err := s.Processing.Processing(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) setAside(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	events, err := s.Processing.SetAside(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(events, func(e SetAsideEvent) SetAsideEvent { return e }))
}
