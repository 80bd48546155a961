package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/hearth-cdp/hearth"

	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
)

func (s *Server) listSources(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	srcs, err := s.Sources.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stats, err := s.Events.AllSourceStats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(srcs, func(src collect.Source) sourceJSON { return s.toSource(src, stats[src.ID]) }))
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
	writeJSON(w, http.StatusCreated, s.toSource(src, collect.SourceStats{}))
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	src, err := s.Sources.Get(r.Context(), r.PathValue("id"))
	s.answerSource(w, r, src, err)
}

// editSource changes a source's name or rate limit; "rate_limit": null or 0 gives it the server's default.
func (s *Server) editSource(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	const op = "httpapi.edit_source"
	var req struct {
		Name      *string         `json:"name"`
		RateLimit json.RawMessage `json:"rate_limit"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	edit := collect.SourceEdit{Name: req.Name}
	if len(req.RateLimit) > 0 {
		limit := 0.0
		if string(req.RateLimit) != "null" {
			if err := json.Unmarshal(req.RateLimit, &limit); err != nil {
				s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "The rate_limit must be a number of events per second, or null for the server's default."))
				return
			}
		}
		edit.RateLimit = &limit
	}
	if edit == (collect.SourceEdit{}) {
		s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "Send the name or the rate_limit to change."))
		return
	}
	src, err := s.Sources.Edit(r.Context(), r.PathValue("id"), edit)
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
	stats, err := s.Events.AllSourceStats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.toSource(src, stats[src.ID]))
}

// queryInt reads an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string, def, maxValue int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, hearth.Errorf(hearth.Invalid, "httpapi.query", "The parameter %s must be a non-negative integer.", name)
	}
	return min(n, maxValue), nil
}

// debuggerQuery reads what the debugger's reads share: the source, a position (named param) and a limit.
func (s *Server) debuggerQuery(r *http.Request, param string) (src collect.Source, pos int64, limit int, err error) {
	if src, err = s.Sources.Get(r.Context(), r.PathValue("id")); err != nil {
		return src, 0, 0, err
	}
	if pos, err = queryInt(r, param, 0, math.MaxInt64); err != nil {
		return src, 0, 0, err
	}
	n, err := queryInt(r, "limit", 50, 200)
	return src, pos, int(max(n, 1)), err
}

// sourceEvents serves the live event debugger: a source's latest events, then those after a cursor.
func (s *Server) sourceEvents(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	src, cursor, limit, err := s.debuggerQuery(r, "cursor")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	evs, next, err := s.Events.SourceEvents(r.Context(), src.ID, cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Items  []eventJSON `json:"items"`
		Cursor int64       `json:"cursor"`
	}{Items: listOf(evs, toEvent).Items, Cursor: next}
	writeJSON(w, http.StatusOK, out)
}

// sourceRejections lists a source's refused events with their reasons, newest first.
func (s *Server) sourceRejections(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	src, after, limit, err := s.debuggerQuery(r, "after")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rej, err := s.Events.SourceRejections(r.Context(), src.ID, after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(rej, toRejected))
}
