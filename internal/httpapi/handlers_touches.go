package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
)

// Offline touches: what store staff, kiosks and apps report.

type offlineTouchRequest struct {
	Token         string          `json:"token"`
	TouchpointID  string          `json:"touchpoint_id"`
	Serial        int64           `json:"serial"`
	At            string          `json:"at"`
	Phone         string          `json:"phone"`
	Email         string          `json:"email"`
	WeChatOpenID  string          `json:"wechat_openid"`
	WeChatUnionID string          `json:"wechat_unionid"`
	UserID        string          `json:"user_id"`
	AnonymousID   string          `json:"anonymous_id"`
	MessageID     string          `json:"message_id"`
	Properties    json.RawMessage `json:"properties"`
}

type offlineTouchJSON struct {
	TouchpointID string    `json:"touchpoint_id"`
	CampaignID   *string   `json:"campaign_id"`
	Channel      string    `json:"channel"`
	Serial       int64     `json:"serial"`
	At           time.Time `json:"at"`
	MessageID    string    `json:"message_id"`
}

type recordedTouchJSON struct {
	Touch     offlineTouchJSON `json:"touch"`
	Duplicate bool             `json:"duplicate"`
}

type importJSON struct {
	Rows           int               `json:"rows"`
	Imported       int               `json:"imported"`
	Duplicates     int               `json:"duplicates"`
	Rejected       []rejectedRowJSON `json:"rejected"`
	MoreRejected   int               `json:"more_rejected"`
	IgnoredColumns []string          `json:"ignored_columns"`
}

type rejectedRowJSON struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func (s *Server) recordTouch(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req offlineTouchRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.Offline.Record(r.Context(), collect.OfflineReport{
		Token: req.Token, TouchpointID: req.TouchpointID, Serial: req.Serial, At: req.At,
		Phone: req.Phone, Email: req.Email, WeChatOpenID: req.WeChatOpenID, WeChatUnionID: req.WeChatUnionID,
		UserID: req.UserID, AnonymousID: req.AnonymousID, MessageID: req.MessageID, Properties: req.Properties,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var campaign *string
	if t.CampaignID != "" {
		campaign = &t.CampaignID
	}
	writeJSON(w, http.StatusCreated, recordedTouchJSON{Duplicate: t.Duplicate, Touch: offlineTouchJSON{TouchpointID: t.TouchpointID,
		CampaignID: campaign, Channel: t.Channel, Serial: t.Serial, At: t.At, MessageID: t.MessageID}})
}

// importTouches takes a CSV file as the body (text/csv) or as the field "file" of a multipart form.
func (s *Server) importTouches(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	const op = "httpapi.import_touches"
	tz, err := collect.ParseTimeZone(r.URL.Query().Get("timezone"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	maxBytes, _ := s.Offline.ImportLimits()
	if r.ContentLength > maxBytes+1<<20 {
		s.fail(w, r, hearth.Errorf(hearth.TooLarge, op, "The file is larger than %d MiB; split it.", maxBytes>>20))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBytes+1<<20) // room for a multipart form's own parts
	var file io.Reader
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "text/csv", "application/csv", "text/plain":
		file = r.Body
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "The multipart form is not valid."))
			return
		}
		for file == nil {
			part, err := mr.NextPart()
			if err == io.EOF {
				s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "The form has no field \"file\" holding the CSV file."))
				return
			} else if err != nil {
				s.fail(w, r, importReadError(op, err))
				return
			}
			if part.FormName() == "file" {
				file = part
			}
		}
	default:
		s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "Send the CSV file as the body with Content-Type text/csv, or as the field \"file\" of a multipart/form-data upload."))
		return
	}
	res, err := s.Offline.Import(r.Context(), file, collect.ImportOptions{TimeZone: tz})
	if err != nil {
		s.fail(w, r, importReadError(op, err))
		return
	}
	out := importJSON{Rows: res.Rows, Imported: res.Imported, Duplicates: res.Duplicates, MoreRejected: res.MoreRejected,
		Rejected: make([]rejectedRowJSON, len(res.Rejected)), IgnoredColumns: res.IgnoredColumns}
	for i, rr := range res.Rejected {
		out.Rejected[i] = rejectedRowJSON{Line: rr.Line, Reason: rr.Reason}
	}
	if out.IgnoredColumns == nil {
		out.IgnoredColumns = []string{}
	}
	writeJSON(w, http.StatusOK, out)
}

// importReadError tells a body over the limit, or cut short, from a failure of ours.
func importReadError(op string, err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &hearth.Error{Kind: hearth.TooLarge, Op: op, Msg: "The upload is larger than the limit; split the file.", Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: "The upload ended early.", Err: err}
	}
	return err
}
