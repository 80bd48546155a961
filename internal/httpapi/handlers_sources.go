package httpapi

import (
	"net/http"

	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
)

func (s *Server) listSources(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	srcs, err := s.Sources.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(srcs, toSource))
}

func (s *Server) createSource(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Name string             `json:"name"`
		Kind collect.SourceKind `json:"kind"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	src, err := s.Sources.Create(r.Context(), req.Name, req.Kind)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toSource(src))
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	src, err := s.Sources.Get(r.Context(), r.PathValue("id"))
	s.answerSource(w, r, src, err)
}

func (s *Server) renameSource(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	src, err := s.Sources.Rename(r.Context(), r.PathValue("id"), req.Name)
	s.answerSource(w, r, src, err)
}

func (s *Server) disableSource(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	src, err := s.Sources.SetEnabled(r.Context(), r.PathValue("id"), false)
	s.answerSource(w, r, src, err)
}

func (s *Server) enableSource(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	src, err := s.Sources.SetEnabled(r.Context(), r.PathValue("id"), true)
	s.answerSource(w, r, src, err)
}

func (s *Server) regenerateWriteKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	src, err := s.Sources.RegenerateWriteKey(r.Context(), r.PathValue("id"))
	s.answerSource(w, r, src, err)
}

func (s *Server) answerSource(w http.ResponseWriter, r *http.Request, src collect.Source, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toSource(src))
}
