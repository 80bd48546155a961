package httpapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/store"
)

// Segments (docs/segments.md): rule and list segments, their members, sizes and history, and the segments a
// person is in. The segment service checks and stores them; the segment engine evaluates them in the
// background. Identifier values (a list's, an export's) are personal data: nothing here logs them.

// SegmentReader reads segments' members, sizes and history; *store.DB is one.
type SegmentReader interface {
	SegmentMembers(ctx context.Context, id, cursor string, limit int) (store.MemberPage, error)
	ExportMembers(ctx context.Context, id string, fn func(store.MemberExport) error) error
	SegmentSizes(ctx context.Context, id string, since time.Time) ([]store.SegmentSize, error)
	ProfileSegments(ctx context.Context, profileID string) ([]store.ProfileSegment, []store.SegmentChange, error)
}

// segmentWait is how long creating a segment, or giving it a new rule, waits for the engine's full
// evaluation before it answers with the segment still evaluating.
const segmentWait = 5 * time.Second

// maxListBytes bounds the CSV body of PUT /segments/{id}/list: a million lines of an email address or a
// phone number (the most a list reads) with room for a few more columns.
const maxListBytes = 32 << 20

type segmentJSON struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Kind        segment.Kind  `json:"kind"`
	Rule        *segment.Rule `json:"rule"`                 // null for a list segment
	ListItems   *int          `json:"list_items,omitempty"` // a list segment's only
	Size        int64         `json:"size"`
	Status      string        `json:"status"` // evaluating or ready
	EvaluatedAt *time.Time    `json:"evaluated_at"`
	// EvaluationError tells, while the segment is being evaluated, that its evaluation failed again and
	// again, and when it is tried again; null otherwise.
	EvaluationError *evaluationErrorJSON `json:"evaluation_error"`
	CreatedAt       time.Time            `json:"created_at"`
	UpdatedAt       time.Time            `json:"updated_at"`
}

type evaluationErrorJSON struct {
	Message  string    `json:"message"`
	Failures int       `json:"failures"`
	RetryAt  time.Time `json:"retry_at"`
}

// toSegment is a segment as the API answers it, with what the engine knows of its evaluation.
func (s *Server) toSegment(seg segment.Segment) segmentJSON {
	out := toSegmentJSON(seg)
	if f, ok := s.Segments.EvaluationFailure(seg.ID); ok && seg.Evaluating() {
		out.EvaluationError = &evaluationErrorJSON{Message: f.Message, Failures: f.Failures, RetryAt: f.RetryAt}
	}
	return out
}

func toSegmentJSON(s segment.Segment) segmentJSON {
	out := segmentJSON{ID: s.ID, Name: s.Name, Description: s.Description, Kind: s.Kind, Rule: s.Rule, Size: s.Size, Status: "ready",
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	if s.Kind == segment.ListKind {
		out.Rule = nil
		out.ListItems = &s.ListItems
	}
	if s.Evaluating() {
		out.Status = "evaluating"
	}
	if !s.EvaluatedAt.IsZero() {
		out.EvaluatedAt = &s.EvaluatedAt
	}
	return out
}

type segmentMemberJSON struct {
	ProfileID string        `json:"profile_id"`
	Name      string        `json:"name"`
	Stage     profile.Stage `json:"stage"`
	Since     time.Time     `json:"since"`
}

type segmentSizeJSON struct {
	At   time.Time `json:"at"`
	Size int64     `json:"size"`
}

type profileSegmentJSON struct {
	ID    string    `json:"id"`
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

type segmentChangeJSON struct {
	SegmentID string    `json:"segment_id"`
	Segment   string    `json:"segment"` // its name
	Entered   bool      `json:"entered"` // false: left
	At        time.Time `json:"at"`
}

// segmentRequest is the body of POST /segments and PATCH /segments/{id}. The rule stays raw so that
// segment.ParseRule reads it and names the part that is wrong as a path from "rule".
type segmentRequest struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Kind        segment.Kind    `json:"kind"`
	Rule        json.RawMessage `json:"rule"`
}

// input is what the request sets; a rule sent (even null) is parsed.
func (req segmentRequest) input() (segment.Input, error) {
	in := segment.Input{Name: req.Name, Description: req.Description, Kind: req.Kind}
	if req.Rule != nil {
		rule, err := segment.ParseRule(req.Rule)
		if err != nil {
			return in, err
		}
		in.Rule = &rule
	}
	return in, nil
}

func (s *Server) segmentsReady(w http.ResponseWriter, r *http.Request) bool {
	if s.Segments == nil || s.SegmentData == nil {
		s.fail(w, r, hearth.Errorf(hearth.Unavailable, "httpapi.segments", "Segments are not available on this server."))
		return false
	}
	return true
}

func (s *Server) listSegments(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	segs, err := s.Segments.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]segmentJSON, 0, len(segs))
	for _, seg := range segs {
		out = append(out, s.toSegment(seg))
	}
	writeJSON(w, http.StatusOK, struct {
		Segments []segmentJSON `json:"segments"`
	}{out})
}

// createSegment stores a rule or list segment and answers 201 once it is evaluated, or after segmentWait with
// it still evaluating.
func (s *Server) createSegment(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	var req segmentRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	in, err := req.input()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	seg, err := s.Segments.Create(r.Context(), in, principalName(p))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	seg = s.awaitEvaluation(r, seg)
	w.Header().Set("Location", segmentPath(seg.ID))
	writeJSON(w, http.StatusCreated, s.toSegment(seg))
}

// awaitEvaluation returns the segment once the engine has evaluated it, or as it is after segmentWait. The
// segment is stored already: a failure to read it again answers it as it was, rather than an error that
// would make the caller create it twice.
func (s *Server) awaitEvaluation(r *http.Request, seg segment.Segment) segment.Segment {
	if !seg.Evaluating() {
		return seg
	}
	ctx, cancel := context.WithTimeout(r.Context(), segmentWait)
	defer cancel()
	evaluated, err := s.Segments.Wait(ctx, seg.ID)
	if err != nil {
		if hearth.KindOf(err) != hearth.NotFound {
			s.logger.WarnContext(r.Context(), "segment wait failed", "request_id", requestID(r.Context()), "segment", seg.ID, "err", err)
		}
		return seg
	}
	return evaluated
}

func (s *Server) getSegment(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	seg, err := s.Segments.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.toSegment(seg))
}

// updateSegment changes any of a segment's name, description and rule; a new rule is evaluated as on create.
func (s *Server) updateSegment(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	const op = "httpapi.update_segment"
	if !s.segmentsReady(w, r) {
		return
	}
	var req segmentRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	if req.Kind != "" {
		cur, err := s.Segments.Get(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if req.Kind != cur.Kind {
			s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "A segment's kind cannot change: create a new segment."))
			return
		}
		req.Kind = ""
	}
	in, err := req.input()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	seg, err := s.Segments.Update(r.Context(), id, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if in.Rule != nil {
		seg = s.awaitEvaluation(r, seg)
	}
	writeJSON(w, http.StatusOK, s.toSegment(seg))
}

// deleteSegment removes a segment with its members and history; 409 while another segment's rule uses it.
func (s *Server) deleteSegment(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	if err := s.Segments.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// countSegment answers how many people a rule matches now, without storing it: the console's live count.
func (s *Server) countSegment(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	var req struct {
		Rule json.RawMessage `json:"rule"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Rule == nil {
		s.fail(w, r, &hearth.Error{Kind: hearth.Invalid, Op: "httpapi.count_segment", Code: "invalid_rule", Msg: "rule: is missing"})
		return
	}
	rule, err := segment.ParseRule(req.Rule)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	start := time.Now()
	c, err := s.Segments.Count(r.Context(), rule)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	took := time.Since(start) // the count's own time, without reading the sample's people
	sample, err := s.Profiles.ProfileSummaries(r.Context(), c.Sample)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Size   int64                `json:"size"`
		TookMS int64                `json:"took_ms"`
		Sample []profileSummaryJSON `json:"sample"`
	}{c.Size, took.Milliseconds(), listOf(sample, toProfileSummary).Items})
}

type listUploadJSON struct {
	Items        int               `json:"items"`
	Rejected     []rejectedRowJSON `json:"rejected"` // the first 1,000
	MoreRejected int               `json:"more_rejected"`
}

// replaceSegmentList makes a CSV body (text/csv) the list of a list segment.
func (s *Server) replaceSegmentList(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	const op = "httpapi.replace_segment_list"
	if !s.segmentsReady(w, r) {
		return
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "text/csv", "application/csv", "text/plain":
	default:
		s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "Send the list as the body, with Content-Type text/csv."))
		return
	}
	if r.ContentLength > maxListBytes {
		s.fail(w, r, hearth.Errorf(hearth.TooLarge, op, "The list is larger than %d MiB; split it.", maxListBytes>>20))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxListBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = &hearth.Error{Kind: hearth.TooLarge, Op: op, Msg: fmt.Sprintf("The list is larger than %d MiB; split it.", maxListBytes>>20), Err: err}
		} else {
			err = &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: "The upload ended early.", Err: err}
		}
		s.fail(w, r, err)
		return
	}
	res, err := s.Segments.ReplaceList(r.Context(), r.PathValue("id"), data)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := listUploadJSON{Items: res.Items, Rejected: make([]rejectedRowJSON, 0, len(res.Rejected)), MoreRejected: res.MoreRejected}
	for _, rj := range res.Rejected {
		out.Rejected = append(out.Rejected, rejectedRowJSON{Line: rj.Line, Reason: rj.Reason})
	}
	writeJSON(w, http.StatusOK, out)
}

// segmentMembers serves a page of a segment's members, newest first.
func (s *Server) segmentMembers(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	limit, err := queryInt(r, "limit", 50, 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	seg, err := s.Segments.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.SegmentData.SegmentMembers(r.Context(), seg.ID, r.URL.Query().Get("cursor"), int(max(limit, 1)))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	members := make([]segmentMemberJSON, 0, len(page.Members))
	for _, m := range page.Members {
		members = append(members, segmentMemberJSON{ProfileID: m.ProfileID, Name: m.Name, Stage: stageOrAnonymous(m.Stage), Since: m.Since})
	}
	writeJSON(w, http.StatusOK, struct {
		Members    []segmentMemberJSON `json:"members"`
		NextCursor *string             `json:"next_cursor"`
	}{members, orNull(page.Next)})
}

func stageOrAnonymous(s profile.Stage) profile.Stage {
	if s == "" {
		return profile.Anonymous
	}
	return s
}

// exportSegmentMembers streams every member of a segment as CSV, oldest member first.
func (s *Server) exportSegmentMembers(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	seg, err := s.Segments.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", attachment(seg.Name, seg.ID, ".csv"))
	h.Set("Cache-Control", "no-store")
	sent := &sentWriter{w: w}
	cw := csv.NewWriter(sent)
	cw.Write([]string{"profile_id", "name", "stage", "email", "phone", "since"})
	err = s.SegmentData.ExportMembers(r.Context(), seg.ID, func(m store.MemberExport) error {
		cw.Write([]string{m.ProfileID, csvCell(m.Name), string(stageOrAnonymous(m.Stage)), csvCell(m.Email), csvCell(m.Phone),
			m.Since.Format(time.RFC3339)})
		return cw.Error()
	})
	if err == nil {
		cw.Flush()
		err = cw.Error()
	}
	if err == nil || r.Context().Err() != nil {
		return
	}
	if !sent.any {
		h.Del("Content-Disposition")
		s.fail(w, r, err)
		return
	}
	// Part of the file is sent with a 200 already: break the response off, so that the download fails
	// rather than ends as if whole.
	s.logger.ErrorContext(r.Context(), "segment export failed", "request_id", requestID(r.Context()), "route", r.Pattern, "segment", seg.ID, "err", err)
	panic(http.ErrAbortHandler)
}

// sentWriter remembers whether anything was written to the response.
type sentWriter struct {
	w   io.Writer
	any bool
}

func (s *sentWriter) Write(p []byte) (int, error) {
	s.any = s.any || len(p) > 0
	return s.w.Write(p)
}

// csvCell keeps a value from being read as a formula when the file is opened in a spreadsheet (CSV
// injection): text that starts with = + - @, a tab or a carriage return gets a leading apostrophe, unless it
// is only a number, such as a phone number in E.164 (+8613912345678), which stays as it is.
func csvCell(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) || isNumber(v) {
		return v
	}
	return "'" + v
}

// isNumber reports whether v is a sign and digits, with at most one decimal point among them.
func isNumber(v string) bool {
	digits, point := 0, false
	for i, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case (r == '+' || r == '-') && i == 0:
		case r == '.' && !point:
			point = true
		default:
			return false
		}
	}
	return digits > 0
}

// attachment is the Content-Disposition of a download named after name: as written (filename*, RFC 6266)
// for every current browser, and in ASCII for the rest; fallback names it when name has no letter or digit.
func attachment(name, fallback, ext string) string {
	full, ascii := fileName(name, false), fileName(name, true)
	if full == "" {
		full = fallback
	}
	if ascii == "" {
		ascii = fallback
	}
	return `attachment; filename="` + ascii + ext + `"; filename*=UTF-8''` + encodeRFC5987(full+ext)
}

// fileName keeps a name's letters and digits (of any script, or ASCII only), each other run of characters
// made one dash, at most 100 characters: safe as a file name on any system and in a header.
func fileName(name string, asciiOnly bool) string {
	var b strings.Builder
	dash, n := false, 0
	for _, r := range name {
		keep := unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_'
		if asciiOnly {
			keep = keep && r < utf8.RuneSelf
		} else {
			keep = keep || unicode.IsMark(r) && b.Len() > 0
		}
		if !keep {
			dash = b.Len() > 0
			continue
		}
		if n >= 100 {
			break
		}
		if dash {
			b.WriteByte('-')
			n++
			dash = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// encodeRFC5987 percent-encodes every byte of s but the attr-chars of RFC 5987.
func encodeRFC5987(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) || strings.IndexByte("!#$&+-.^_`|~", c) >= 0) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// segmentSizes serves a segment's size at the end of each hour that changed it over the last days (1 to
// 365, 30 by default), oldest first.
func (s *Server) segmentSizes(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	days, err := queryInt(r, "days", 30, 365)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	seg, err := s.Segments.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The server has no Clock of its own (Options has none): the window ends now, by the system's clock.
	since := time.Now().UTC().Add(-time.Duration(max(days, 1)) * 24 * time.Hour)
	sizes, err := s.SegmentData.SegmentSizes(r.Context(), seg.ID, since)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]segmentSizeJSON, 0, len(sizes))
	for _, sz := range sizes {
		out = append(out, segmentSizeJSON{At: sz.At, Size: sz.Size})
	}
	writeJSON(w, http.StatusOK, struct {
		Sizes []segmentSizeJSON `json:"sizes"`
	}{out})
}

// profileSegments serves the segments a person is in now and their history of entering and leaving,
// newest first. The id of a profile merged into another answers for the one it lives in now.
func (s *Server) profileSegments(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.segmentsReady(w, r) {
		return
	}
	id := r.PathValue("id")
	if s.Profiles != nil {
		live, err := s.liveProfileID(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		id = live
	}
	in, changes, err := s.SegmentData.ProfileSegments(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	segs := make([]profileSegmentJSON, 0, len(in))
	for _, ps := range in {
		segs = append(segs, profileSegmentJSON{ID: ps.ID, Name: ps.Name, Since: ps.Since})
	}
	chs := make([]segmentChangeJSON, 0, len(changes))
	for _, c := range changes {
		chs = append(chs, segmentChangeJSON{SegmentID: c.SegmentID, Segment: c.Segment, Entered: c.Entered, At: c.At})
	}
	writeJSON(w, http.StatusOK, struct {
		Segments []profileSegmentJSON `json:"segments"`
		Changes  []segmentChangeJSON  `json:"changes"`
	}{segs, chs})
}

func segmentPath(id string) string { return "/api/v1/segments/" + id }
