package httpapi

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// Per-item code batches: many serial codes of one touchpoint, drawn by a worker into a ZIP to download.

func (s *Server) createCodeBatch(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Count     int64               `json:"count"`
		Format    touchpoint.QRFormat `json:"format"`
		Size      int                 `json:"size"`
		Margin    *int                `json:"margin"` // absent for the default; 0 for none, as on qr.png
		Level     string              `json:"level"`
		ExpiresAt *time.Time          `json:"expires_at"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		expires = *req.ExpiresAt
	}
	opts := touchpoint.QROptions{Size: req.Size, Level: req.Level}
	if req.Margin != nil {
		if opts.Margin = *req.Margin; opts.Margin == 0 {
			opts.Margin = touchpoint.QRNoMargin
		}
	}
	b, err := s.Touchpoints.CreateCodeBatch(r.Context(), r.PathValue("id"), req.Count, req.Format, opts, expires)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", codeBatchPath(b.ID))
	writeJSON(w, http.StatusAccepted, toCodeBatch(b))
}

func (s *Server) listCodeBatches(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	bs, err := s.Touchpoints.CodeBatches(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(bs, toCodeBatch))
}

func (s *Server) getCodeBatch(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	b, err := s.Touchpoints.CodeBatch(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toCodeBatch(b))
}

// redrawCodeBatch queues a batch whose ZIP expired, or that failed, to be drawn again: the same codes.
func (s *Server) redrawCodeBatch(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	b, err := s.Touchpoints.RedrawCodeBatch(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", codeBatchPath(b.ID))
	writeJSON(w, http.StatusAccepted, toCodeBatch(b))
}

// downloadCodeBatch serves a done batch's ZIP (ranges too, so that a broken download resumes); 409 until then.
func (s *Server) downloadCodeBatch(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	b, zip, err := s.Touchpoints.CodeBatchZIP(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.Touchpoints.Touchpoint(r.Context(), b.TouchpointID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Named after the touchpoint's number and the serials: ASCII, safe in a header, and unique.
	name := "touchpoint-" + strconv.FormatInt(t.Number, 10) + "-serials-" + strconv.FormatInt(b.FirstSerial, 10) + "-" +
		strconv.FormatInt(b.LastSerial(), 10) + ".zip"
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "private, no-cache")
	var modified time.Time
	if b.FinishedAt != nil {
		modified = *b.FinishedAt
	}
	http.ServeContent(w, r, name, modified, bytes.NewReader(zip)) // sets Content-Length
}

func codeBatchPath(id string) string { return "/api/v1/code-batches/" + id }
