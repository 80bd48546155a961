package collect

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth"
	"golang.org/x/time/rate"
)

// IngestOptions tune the tracking API.
type IngestOptions struct {
	MaxEventBytes   int     // default 32 KiB
	MaxRequestBytes int     // default 500 KiB, after decompression
	SourceRate      float64 // events per second per source, per node; 0 means no limit
	SourceBurst     int     // events a source may send at once above its rate; default 10 × SourceRate
}

func (o *IngestOptions) setDefaults() {
	if o.MaxEventBytes == 0 {
		o.MaxEventBytes = 32 << 10
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 500 << 10
	}
	if o.SourceBurst == 0 {
		o.SourceBurst = max(1000, int(10*o.SourceRate))
	}
}

// Authenticator finds the enabled source of a write key.
type Authenticator interface {
	Authenticate(ctx context.Context, writeKey string) (Source, error)
}

// Ingest is the Segment-compatible tracking API: POST /v1/{identify,track,page,screen,group,alias,batch}.
type Ingest struct {
	sources Authenticator
	log     Log
	clock   hearth.Clock
	bots    *BotDetector
	opts    IngestOptions
	newID   func() string
	onFail  func(r *http.Request, err error) // logs internal failures

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// NewIngest returns the tracking API handler.
func NewIngest(sources Authenticator, log Log, clock hearth.Clock, bots *BotDetector, opts IngestOptions, onFail func(*http.Request, error)) *Ingest {
	opts.setDefaults()
	return &Ingest{sources: sources, log: log, clock: clock, bots: bots, opts: opts, newID: hearth.NewID, onFail: onFail, limiters: map[string]*rate.Limiter{}}
}

// Routes lists the tracking API's routes. Each answers CORS preflights, so that web pages on any site can
// send events: write keys are public, and no cookie is used.
func (h *Ingest) Routes() map[string]http.Handler {
	routes := map[string]http.Handler{}
	for _, typ := range []string{"identify", "track", "page", "screen", "group", "alias", "batch"} {
		routes["POST /v1/"+typ] = h.handler(typ)
		routes["OPTIONS /v1/"+typ] = http.HandlerFunc(preflight)
	}
	return routes
}

func setCORS(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After") // so that the snippet can honour it
}

func preflight(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// bodyBuffers recycles request buffers: at high rates, allocating half a megabyte per request shows.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// batchBody is a /v1/batch request.
type batchBody struct {
	Batch        []json.RawMessage `json:"batch"`
	Context      json.RawMessage   `json:"context"`
	Integrations json.RawMessage   `json:"integrations"`
	SentAt       json.RawMessage   `json:"sentAt"`
	WriteKey     string            `json:"writeKey"`
}

// RejectedJSON is one refused event in a response.
type RejectedJSON struct {
	Index     int    `json:"index"`
	MessageID string `json:"messageId,omitempty"`
	Reason    string `json:"reason"`
}

type responseBody struct {
	Success    bool           `json:"success"`
	Accepted   int            `json:"accepted"`
	Duplicates int            `json:"duplicates,omitempty"`
	Rejected   []RejectedJSON `json:"rejected,omitempty"`
}

func (h *Ingest) handler(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setCORS(w)
		buf := bodyBuffers.Get().(*bytes.Buffer)
		defer func() {
			if buf.Cap() <= 2*h.opts.MaxRequestBytes {
				buf.Reset()
				bodyBuffers.Put(buf)
			}
		}()
		buf.Reset()
		if err := h.readBody(w, r, buf); err != nil {
			h.fail(w, r, err)
			return
		}
		resp, err := h.ingest(r, typ, buf.Bytes())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	}
}

// readBody reads the body, gunzipping it if needed, within the request size limit.
func (h *Ingest) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	const op = "collect.read_body"
	limit := int64(h.opts.MaxRequestBytes)
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return tooLargeOr(err, hearth.Errorf(hearth.Invalid, op, "The body is not valid gzip."))
		}
		defer zr.Close()
		body = io.LimitReader(zr, limit+1) // the limit holds after decompression too
	}
	n, err := buf.ReadFrom(body)
	if err != nil {
		return tooLargeOr(err, hearth.Errorf(hearth.Invalid, op, "The body could not be read."))
	}
	if n > limit {
		return tooLarge(limit)
	}
	return nil
}

func tooLarge(limit int64) error {
	return hearth.Errorf(hearth.TooLarge, "collect.read_body", "The request is larger than %d bytes; send smaller batches.", limit)
}

func tooLargeOr(err, otherwise error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	return otherwise
}

func (h *Ingest) ingest(r *http.Request, typ string, body []byte) (responseBody, error) {
	const op = "collect.ingest"
	req := Request{ReceivedAt: h.clock.Now(), IP: clientIP(r), UserAgent: r.UserAgent()}
	var raws []json.RawMessage
	var bodyKey string
	if typ == "batch" {
		var b batchBody
		if err := json.Unmarshal(body, &b); err != nil {
			return responseBody{}, hearth.Errorf(hearth.Invalid, op, "The body is not a valid batch: %s.", describeJSONError(err))
		}
		raws, bodyKey = b.Batch, b.WriteKey
		req.Context, req.Integrations, req.SentAt = b.Context, b.Integrations, b.SentAt
		typ = ""
	} else {
		var k struct {
			WriteKey string `json:"writeKey"`
		}
		if err := json.Unmarshal(body, &k); err != nil {
			return responseBody{}, hearth.Errorf(hearth.Invalid, op, "The body is not a valid event: %s.", describeJSONError(err))
		}
		raws, bodyKey = []json.RawMessage{body}, k.WriteKey
	}
	src, err := h.authenticate(r, bodyKey)
	if err != nil {
		return responseBody{}, err
	}
	req.Browser = src.Kind == KindWebsite
	if err := h.allow(src.ID, len(raws)); err != nil {
		return responseBody{}, err
	}

	batch := &Batch{SourceID: src.ID, ReceivedAt: req.ReceivedAt, Events: make([]Event, 0, len(raws))}
	resp := responseBody{Success: true}
	for i, raw := range raws {
		var ev Event
		var err error
		if len(raw) > h.opts.MaxEventBytes {
			err = hearth.Errorf(hearth.Invalid, op, "the event is larger than %d bytes", h.opts.MaxEventBytes)
		} else {
			ev, err = Normalize(raw, typ, req, h.newID, h.bots.IsBot)
		}
		if err != nil {
			reason := hearth.MessageOf(err)
			resp.Rejected = append(resp.Rejected, RejectedJSON{Index: i, MessageID: peekMessageID(raw), Reason: reason})
			batch.Rejected = append(batch.Rejected, Rejected{Index: i, Reason: reason, Payload: clip(raw, 4096)})
			continue
		}
		ev.SourceID = src.ID
		batch.Events = append(batch.Events, ev)
	}
	// A single call whose only event is refused is a bad request; a batch is answered event by event.
	if typ != "" && len(resp.Rejected) == 1 {
		if _, err := h.log.Append(r.Context(), batch); err != nil { // keep the refusal for the debugger
			return responseBody{}, err
		}
		return responseBody{}, hearth.Errorf(hearth.Invalid, op, "%s.", capitalize(resp.Rejected[0].Reason))
	}
	res, err := h.log.Append(r.Context(), batch)
	if err != nil {
		return responseBody{}, err
	}
	resp.Accepted, resp.Duplicates = res.Accepted, res.Duplicates
	return resp, nil
}

// authenticate finds the source from the Basic-auth user name, or else the body's writeKey.
func (h *Ingest) authenticate(r *http.Request, bodyKey string) (Source, error) {
	key := bodyKey
	if user, _, ok := r.BasicAuth(); ok && user != "" {
		key = user
	} else if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Basic ") {
		// Some clients send the key without the colon that separates an empty password.
		if dec, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic ")); err == nil {
			key = strings.TrimSuffix(string(dec), ":")
		}
	}
	if key == "" {
		return Source{}, hearth.Errorf(hearth.Unauthenticated, "collect.authenticate", "The write key is missing: send it as the Basic-auth user name or as writeKey in the body.")
	}
	return h.sources.Authenticate(r.Context(), key)
}

// allow applies a source's rate limit to n events.
func (h *Ingest) allow(sourceID string, n int) error {
	if h.opts.SourceRate <= 0 || n == 0 {
		return nil
	}
	h.mu.Lock()
	l := h.limiters[sourceID]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(h.opts.SourceRate), h.opts.SourceBurst)
		h.limiters[sourceID] = l
	}
	h.mu.Unlock()
	now := time.Now()
	res := l.ReserveN(now, n)
	if !res.OK() {
		return &RetryAfterError{After: time.Second, Err: hearth.Errorf(hearth.RateLimited, "collect.rate", "The request holds more events than this source may send at once (%d); send smaller batches.", h.opts.SourceBurst)}
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return &RetryAfterError{After: d, Err: hearth.Errorf(hearth.RateLimited, "collect.rate", "This source sends more than %g events per second; slow down and retry.", h.opts.SourceRate)}
	}
	return nil
}

// RetryAfterError tells a rate-limited client when to try again.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// statusOf maps error kinds to statuses for the tracking API.
var statusOf = map[hearth.Kind]int{
	hearth.Invalid:         http.StatusBadRequest,
	hearth.Unauthenticated: http.StatusUnauthorized,
	hearth.TooLarge:        http.StatusRequestEntityTooLarge,
	hearth.RateLimited:     http.StatusTooManyRequests,
	hearth.Unavailable:     http.StatusServiceUnavailable,
}

func (h *Ingest) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, ok := statusOf[hearth.KindOf(err)]
	if !ok {
		status = http.StatusInternalServerError
		if r.Context().Err() == nil {
			h.onFail(r, err)
		}
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		w.Header().Set("Retry-After", strconv.Itoa(int(ra.After.Seconds()+0.999)))
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = hearth.CodeOf(err), hearth.MessageOf(err)
	json.NewEncoder(w).Encode(body)
}

// clientIP is the address the request came from.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func peekMessageID(raw json.RawMessage) string {
	var m struct {
		MessageID any `json:"messageId"`
	}
	if json.Unmarshal(raw, &m) != nil || m.MessageID == nil {
		return ""
	}
	return truncate(fmt.Sprint(m.MessageID), 100)
}

func clip(b []byte, n int) []byte {
	if len(b) <= n {
		return append([]byte(nil), b...)
	}
	return append(append([]byte(nil), b[:n]...), "…"...)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
