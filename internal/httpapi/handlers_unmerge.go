package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// Unmerges: an admin splits a profile where one merge joined it (docs/identity.md). The profile processor
// carries it out between two batches; the request waits for it a while.

// Unmerger asks for unmerges and reads them; *store.DB is one.
type Unmerger interface {
	RequestUnmerge(ctx context.Context, id, from, by string) (profile.Unmerge, error)
	Unmerge(ctx context.Context, id int64) (profile.Unmerge, error)
}

// unmergeWait is how long POST …/unmerge waits for the processor (which looks every second) before it
// answers 202 with the unmerge still pending.
const unmergeWait = 10 * time.Second

type unmergeJSON struct {
	ID          int64        `json:"id"`
	ProfileID   string       `json:"profile_id"`
	Merge       unmergedJSON `json:"merge"`
	Status      string       `json:"status"` // pending, done or failed
	Profiles    []string     `json:"profiles"`
	Error       string       `json:"error,omitempty"`
	RequestedBy string       `json:"requested_by"`
	RequestedAt time.Time    `json:"requested_at"`
	DoneAt      *time.Time   `json:"done_at"`
}

// unmergedJSON is the merge an unmerge undoes.
type unmergedJSON struct {
	Seq  int64   `json:"seq"`
	Into string  `json:"into"`
	From string  `json:"from"`
	Via  viaJSON `json:"via"`
}

func toUnmerge(u profile.Unmerge) unmergeJSON {
	out := unmergeJSON{ID: u.ID, ProfileID: u.Profile, Status: "pending", Profiles: u.Profiles, Error: u.Error,
		RequestedBy: u.RequestedBy, RequestedAt: u.RequestedAt,
		Merge: unmergedJSON{Seq: u.Merge.Seq, Into: u.Merge.Into, From: u.Merge.From, Via: viaJSON{Type: u.Merge.Via.Type, Value: u.Merge.Via.Value}}}
	if !u.DoneAt.IsZero() {
		out.DoneAt = &u.DoneAt
		out.Status = "done"
		if u.Error != "" {
			out.Status = "failed"
		}
	}
	if out.Profiles == nil {
		out.Profiles = []string{}
	}
	return out
}

func (s *Server) unmergesReady(w http.ResponseWriter, r *http.Request) bool {
	if s.Unmerges == nil {
		s.fail(w, r, hearth.Errorf(hearth.Unavailable, "httpapi.unmerge", "Unmerges are not available on this server."))
		return false
	}
	return true
}

// unmergeProfile asks for the merge of the profile "from" into profile {id} to be undone, and answers the
// unmerge: 200 when carried out (or failed) within unmergeWait, else 202 while it is pending.
func (s *Server) unmergeProfile(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if !s.unmergesReady(w, r) {
		return
	}
	var body struct {
		From string `json:"from"`
	}
	if err := decode(w, r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if body.From == "" {
		s.fail(w, r, hearth.Errorf(hearth.Invalid, "httpapi.unmerge", "from is required: the profile whose merge into this one is undone (see the profile's merges)."))
		return
	}
	u, err := s.Unmerges.RequestUnmerge(r.Context(), r.PathValue("id"), body.From, principalName(p))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	deadline := time.NewTimer(unmergeWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for u.DoneAt.IsZero() {
		select {
		case <-r.Context().Done():
			return
		case <-deadline.C:
			writeJSON(w, http.StatusAccepted, toUnmerge(u))
			return
		case <-tick.C:
		}
		if u, err = s.Unmerges.Unmerge(r.Context(), u.ID); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, toUnmerge(u))
}

func (s *Server) getUnmerge(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.unmergesReady(w, r) {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, hearth.Errorf(hearth.NotFound, "httpapi.unmerge", "Unmerge not found."))
		return
	}
	u, err := s.Unmerges.Unmerge(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUnmerge(u))
}
