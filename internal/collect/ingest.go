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
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"golang.org/x/time/rate"
)

// IngestOptions tune the tracking API.
type IngestOptions struct {
	MaxEventBytes   int // default 32 KiB
	MaxRequestBytes int // default 500 KiB, after decompression
	// PublicURL is where browsers reach the tracking API ("https://hearth.example"): the settings that
	// Segment's analytics.js loads send its events there.
	PublicURL string
	// SourceRate is how many events a second a source without a rate limit of its own may send to this node;
	// 0 means no limit.
	SourceRate float64
}

func (o *IngestOptions) setDefaults() {
	if o.MaxEventBytes == 0 {
		o.MaxEventBytes = 32 << 10
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 500 << 10
	}
}

// burst is how many events a source limited to perSecond may send at once: a batch of SDK retries after an
// outage, say.
func burst(perSecond float64) int { return max(1000, int(10*perSecond)) }

// Authenticator finds the enabled source of a write key, and counts what the sources' rate limits refused.
type Authenticator interface {
	Authenticate(ctx context.Context, writeKey string) (Source, error)
	AddThrottled(ctx context.Context, events map[string]int64) error
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

	mu        sync.Mutex
	limiters  map[string]*rate.Limiter
	throttled map[string]int64 // events refused for their source's rate since the last FlushThrottled
}

// NewIngest returns the tracking API handler.
func NewIngest(sources Authenticator, log Log, clock hearth.Clock, bots *BotDetector, opts IngestOptions, onFail func(*http.Request, error)) *Ingest {
	opts.setDefaults()
	return &Ingest{sources: sources, log: log, clock: clock, bots: bots, opts: opts, newID: hearth.NewID, onFail: onFail,
		limiters: map[string]*rate.Limiter{}, throttled: map[string]int64{}}
}

// Routes lists the tracking API's routes. Each answers CORS preflights, so that web pages on any site can
// send events: write keys are public, and no cookie is used. Each type also has the one-letter path that
// Segment's analytics.js posts to (/v1/t for track, …, /v1/b for a batch), and analytics.js's settings are
// served as its CDN would (see settings).
func (h *Ingest) Routes() map[string]http.Handler {
	routes := map[string]http.Handler{}
	for _, typ := range []string{"identify", "track", "page", "screen", "group", "alias", "batch"} {
		for _, path := range []string{typ, typ[:1]} {
			routes["POST /v1/"+path] = h.handler(typ)
			routes["OPTIONS /v1/"+path] = http.HandlerFunc(preflight)
		}
	}
	// RudderStack's JavaScript SDK sends with navigator.sendBeacon here, if told to (useBeacon).
	routes["POST /beacon/v1/batch"] = h.handler("batch")
	routes["GET /v1/projects/{writeKey}/settings"] = http.HandlerFunc(h.settings)
	for _, path := range []string{"/sourceConfig", "/sourceConfig/{$}"} {
		routes["GET "+path] = http.HandlerFunc(h.sourceConfig)
		routes["OPTIONS "+path] = http.HandlerFunc(preflight) // it asks with the write key as Basic auth
	}
	return routes
}

// sourceConfig answers what RudderStack's JavaScript SDK loads from its control plane before it sends anything
// (configUrl/sourceConfig/?writeKey=…): the source, with no destination for the SDK to load in the browser
// and its error and metrics reports off. A page that loads it with configUrl and dataPlaneUrl set to Hearth
// then sends its events here.
func (h *Ingest) sourceConfig(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	key := r.URL.Query().Get("writeKey")
	if key == "" {
		key, _, _ = r.BasicAuth()
	}
	src, err := h.sourceOf(r, key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	off := map[string]any{"enabled": false}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(map[string]any{
		"isHosted": false,
		"source": map[string]any{
			// Not the source's name: whoever has the (public) write key need not learn it.
			"id": src.ID, "name": "Hearth", "writeKey": src.WriteKey, "enabled": true, "workspaceId": "hearth",
			"config":       map[string]any{"statsCollection": map[string]any{"errors": off, "metrics": off}},
			"destinations": []any{},
		},
	})
}

// sourceOf finds the enabled source of a write key that an SDK asks its settings for: not found otherwise.
func (h *Ingest) sourceOf(r *http.Request, writeKey string) (Source, error) {
	src, err := h.sources.Authenticate(r.Context(), writeKey)
	if hearth.KindOf(err) == hearth.Unauthenticated {
		err = hearth.Errorf(hearth.NotFound, "collect.sdk_settings", "No enabled source has this write key.")
	}
	return src, err
}

// settings answers what Segment's analytics.js loads from its CDN before it sends anything
// (cdnURL/v1/projects/WRITE_KEY/settings): its Segment.io destination pointed at this server, and nothing
// else to load. A page that loads analytics.js with cdnURL set to Hearth then sends its events here.
func (h *Ingest) settings(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	src, err := h.sourceOf(r, r.PathValue("writeKey"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	public, perr := url.Parse(h.opts.PublicURL)
	if perr != nil || public.Host == "" {
		public = &url.URL{Scheme: "http", Host: r.Host}
		if r.TLS != nil {
			public.Scheme = "https"
		}
	}
	apiHost := public.Host + strings.TrimRight(public.Path, "/") + "/v1"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	json.NewEncoder(w).Encode(map[string]any{
		"integrations": map[string]any{
			"Segment.io": map[string]any{"apiKey": src.WriteKey, "apiHost": apiHost, "protocol": public.Scheme},
		},
		"plan":                      map[string]any{"track": map[string]any{"__default": map[string]any{"enabled": true}}},
		"metrics":                   map[string]any{"sampleRate": 0}, // analytics.js's own telemetry goes nowhere
		"middlewareSettings":        map[string]any{},
		"enabledMiddleware":         map[string]any{},
		"legacyVideoPluginsEnabled": false,
		"remotePlugins":             []any{},
	})
}

func setCORS(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After") // so that the snippet can honour it
}

func preflight(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
	// Whatever headers an SDK sends (analytics.js counts its retries in X-Retry-Count, RudderStack's sends
	// AnonymousId, SentAt and RSA-…): nothing but the write key authenticates a request, and no cookie is sent.
	allowed := "Authorization, Content-Type, Content-Encoding"
	if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" && len(asked) <= 1024 {
		allowed = asked
	}
	w.Header().Set("Access-Control-Allow-Headers", allowed)
	w.Header().Add("Vary", "Access-Control-Request-Headers")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// bodyBuffers recycles request buffers: at high rates, allocating half a megabyte per request shows.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

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
		w.Write(resp.appendJSON(buf.Bytes()[:0])) // the body is read: its buffer serves again
	}
}

// appendJSON encodes the response; most have no refusals, and are written without reflection.
func (b responseBody) appendJSON(dst []byte) []byte {
	if len(b.Rejected) > 0 {
		out, _ := json.Marshal(b)
		return append(append(dst, out...), '\n')
	}
	dst = strconv.AppendInt(append(dst, `{"success":`+strconv.FormatBool(b.Success)+`,"accepted":`...), int64(b.Accepted), 10)
	if b.Duplicates > 0 {
		dst = strconv.AppendInt(append(dst, `,"duplicates":`...), int64(b.Duplicates), 10)
	}
	return append(dst, "}\n"...)
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

func (h *Ingest) ingest(r *http.Request, typ string, data []byte) (responseBody, error) {
	const op = "collect.ingest"
	req := Request{ReceivedAt: h.clock.Now(), IP: clientIP(r), UserAgent: r.UserAgent()}
	body, err := decodeBody(data, typ)
	if err != nil {
		return responseBody{}, err
	}
	defer body.release()
	src, err := h.authenticate(r, body.writeKey)
	if err != nil {
		return responseBody{}, err
	}
	req.Browser = src.Kind == KindWebsite
	if err := h.allow(src, len(body.events)); err != nil {
		return responseBody{}, err
	}
	if typ == "batch" {
		typ = ""
	}
	batch, rejected := h.normalizeEvents(&body, typ, req, src.ID)
	// A single call whose only event is refused is a bad request; a batch is answered event by event.
	if typ != "" && len(rejected) == 1 {
		if _, err := h.log.Append(r.Context(), batch); err != nil { // keep the refusal for the debugger
			return responseBody{}, err
		}
		return responseBody{}, hearth.Errorf(hearth.Invalid, op, "%s.", capitalize(rejected[0].Reason))
	}
	res, err := h.log.Append(r.Context(), batch)
	if err != nil {
		return responseBody{}, err
	}
	return responseBody{Success: true, Accepted: res.Accepted, Duplicates: res.Duplicates, Rejected: rejected}, nil
}

// requestBody is a request's body taken apart: its events, and what a batch says of them all. Its release
// recycles what it holds once the events are normalised.
type requestBody struct {
	data     []byte
	events   []rawEvent
	writeKey string
	batch    batchFields
	dec      *decoder
}

// raw is an event as sent.
func (b *requestBody) raw(i int) []byte { return b.events[i].raw.in(b.data) }

func (b *requestBody) release() {
	if b.dec == nil {
		return
	}
	if cap(b.events) <= 1000 { // not the room for a batch of many tiny events
		clear(b.events)
		b.dec.events = b.events[:0]
	}
	b.dec.data, b.dec.buf = nil, bytes.Buffer{}
	decoders.Put(b.dec)
	*b = requestBody{}
}

// decodeBody takes apart the body of a call to /v1/{typ}, reading it once. The body must not change until
// the requestBody is released.
func decodeBody(data []byte, typ string) (requestBody, error) {
	const op = "collect.ingest"
	if len(data) > math.MaxInt32 {
		return requestBody{}, tooLarge(math.MaxInt32)
	}
	d := decoders.Get().(*decoder)
	b := requestBody{data: data, events: d.events[:0], dec: d}
	if typ != "batch" {
		var ev rawEvent
		var reason string
		switch {
		case d.readEvent(data, &ev) != nil:
			reason = describeInvalid(data)
		case d.kind(ev.raw) != '{' && d.kind(ev.raw) != 'n':
			reason = "an event must be a JSON object"
		case ev.badWriteKey:
			reason = "writeKey has the wrong type"
		}
		if reason != "" {
			b.release()
			return requestBody{}, hearth.Errorf(hearth.Invalid, op, "The body is not a valid event: %s.", reason)
		}
		ev.raw = span{0, int32(len(data))} // the size limit and the debugger see the body as sent
		b.events = append(b.events, ev)
		if ev.writeKey != (span{}) {
			b.writeKey = unquote(ev.writeKey.in(data))
		}
		return b, nil
	}
	refused, err := d.readBatch(data, &b)
	if err != nil {
		b.release()
		return requestBody{}, hearth.Errorf(hearth.Invalid, op, "The body is not a valid batch: %s.", describeInvalid(data))
	}
	if refused != "" {
		b.release()
		return requestBody{}, hearth.Errorf(hearth.Invalid, op, "The body is not a valid batch: %s.", refused)
	}
	return b, nil
}

// normalizeEvents normalises a body's events (typ is the endpoint's type, "" for a batch) into a batch for
// the log, and words the refusals for the response.
func (h *Ingest) normalizeEvents(body *requestBody, typ string, req Request, sourceID string) (*Batch, []RejectedJSON) {
	batch := &Batch{SourceID: sourceID, ReceivedAt: req.ReceivedAt, Events: make([]Event, 0, len(body.events))}
	var rejected []RejectedJSON
	for i := range body.events {
		raw := body.raw(i)
		var ev Event
		var err error
		if len(raw) > h.opts.MaxEventBytes {
			err = fmt.Errorf("the event is larger than %d bytes", h.opts.MaxEventBytes)
		} else {
			ev, err = normalize(&body.events[i], body.data, typ, req, &body.batch, h.newID, h.bots.IsBot)
		}
		if err != nil {
			reason := err.Error()
			rejected = append(rejected, RejectedJSON{Index: i, MessageID: peekMessageID(raw), Reason: reason})
			batch.Rejected = append(batch.Rejected, Rejected{Index: i, Reason: reason, Payload: clip(raw, 4096)})
			continue
		}
		ev.SourceID = sourceID
		batch.Events = append(batch.Events, ev)
	}
	return batch, rejected
}

// authenticate finds the source from the Basic-auth user name, or else the body's writeKey, or else the
// query's (what RudderStack's SDK sends with navigator.sendBeacon, which cannot set a header).
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
	if key == "" && r.URL.RawQuery != "" { // parsed only then: most requests have none
		key = r.URL.Query().Get("writeKey")
	}
	if key == "" {
		return Source{}, hearth.Errorf(hearth.Unauthenticated, "collect.authenticate", "The write key is missing: send it as the Basic-auth user name, or as writeKey in the body or the query.")
	}
	return h.sources.Authenticate(r.Context(), key)
}

// allow applies a source's rate limit to n events, and counts them if it refuses them.
func (h *Ingest) allow(src Source, n int) error {
	perSecond := src.RateLimit
	if perSecond <= 0 {
		perSecond = h.opts.SourceRate
	}
	if perSecond <= 0 || n == 0 {
		return nil
	}
	h.mu.Lock()
	l := h.limiters[src.ID]
	if l == nil || l.Limit() != rate.Limit(perSecond) { // new, or the source's limit changed: a full bucket
		l = rate.NewLimiter(rate.Limit(perSecond), burst(perSecond))
		h.limiters[src.ID] = l
	}
	h.mu.Unlock()
	now := time.Now()
	slow := func(after time.Duration) error {
		return &RetryAfterError{After: after, Err: hearth.Errorf(hearth.RateLimited, "collect.rate", "This source is over its rate limit of %g events a second; slow down and retry.", perSecond)}
	}
	var err error
	if n <= l.Burst() {
		res := l.ReserveN(now, n)
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			err = slow(d)
		}
	} else if missing := float64(l.Burst()) - l.TokensAt(now); missing > 0 {
		// More events than may come at once: SDKs retry such a request as it is, so refusing it for ever
		// would stop the source. It goes through once the bucket is full, and the requests after it pay for
		// its excess.
		err = slow(time.Duration(missing / perSecond * float64(time.Second)))
	} else {
		for left := n; left > 0; left -= l.Burst() {
			l.ReserveN(now, min(left, l.Burst()))
		}
	}
	if err != nil {
		h.mu.Lock()
		h.throttled[src.ID] += int64(n)
		h.mu.Unlock()
	}
	return err
}

// FlushThrottled stores the counts of events refused for their sources' rates since the last flush. Counts it
// could not store are kept for the next.
func (h *Ingest) FlushThrottled(ctx context.Context) error {
	h.mu.Lock()
	counts := h.throttled
	if len(counts) == 0 {
		h.mu.Unlock()
		return nil
	}
	h.throttled = map[string]int64{}
	h.mu.Unlock()
	err := h.sources.AddThrottled(ctx, counts)
	if err != nil {
		h.mu.Lock()
		for id, n := range counts {
			h.throttled[id] += n
		}
		h.mu.Unlock()
	}
	return err
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
	hearth.NotFound:        http.StatusNotFound,
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

// clip cuts b to n bytes at most, between characters, as text that both engines store: the debugger shows it.
func clip(b []byte, n int) []byte {
	cut := len(b) > n
	if cut {
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		b = b[:n]
	}
	b = bytes.ToValidUTF8(b, []byte(string(utf8.RuneError)))
	if cut {
		b = append(b, "…"...)
	}
	return b
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
