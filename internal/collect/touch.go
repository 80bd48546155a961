package collect

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hearth-cdp/hearth"
	"golang.org/x/time/rate"
)

// TouchResolver finds where a touch token leads, for a touch at time at (its expiry and its campaign's dates
// are judged then). The touchpoint part does it; this package only records.
type TouchResolver interface {
	ResolveTouch(ctx context.Context, token string, at time.Time) (ResolvedTouch, error)
}

// ResolvedTouch is what a token leads to.
type ResolvedTouch struct {
	TouchpointID   string
	TouchpointName string
	CampaignID     string
	Channel        string
	Serial         int64
	// Destination is where to send the person; empty when the token is refused.
	Destination string
	// Refused says why, in a word: malformed, forged, expired, revoked, paused, …
	Refused string
	// Known is true when the token is genuine (signed by Hearth) even if refused: such tokens are not
	// guesses, and do not count against the client's allowance of bad tokens.
	Known bool
	// FallbackURL is the campaign's page for refused tokens, when it has one.
	FallbackURL string
}

// Touch is one person (or bot) meeting a touchpoint, as the event log records it: a track event named
// "Touch" whose properties say which touchpoint and how.
type Touch struct {
	Resolved    ResolvedTouch
	Token       string
	Via         string // link, wechat, offline, web
	AnonymousID string
	UserID      string
	// Traits are identifiers the touch came with (phone, email), for identity resolution.
	Traits map[string]string
	// ExternalIDs are typed identifiers such as a WeChat openid: {"type":"wechat_openid","id":"…"}.
	ExternalIDs []ExternalID
	// Properties are extra properties, a JSON object (valid, as read from a request), or nil.
	Properties json.RawMessage
	MessageID  string // empty for a new one; set for touches that may be reported twice
	IP         string
	UserAgent  string
	Referrer   string
	Method     string // the HTTP method of a link touch
	Bot        bool
	At         time.Time
	ReceivedAt time.Time
}

// ExternalID is a typed identifier, as Segment's context.externalIds holds them.
type ExternalID struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// TouchEventName is the event name of touches.
const TouchEventName = "Touch"

// Event builds the touch's event for the log. The payload is written by hand: the redirect builds one per
// request.
func (t Touch) Event(sourceID string, newID func() string) (Event, error) {
	if t.MessageID == "" {
		t.MessageID = newID()
	}
	p := make([]byte, 0, 512)
	p = append(p, `{"type":"track","messageId":`...)
	p = appendString(p, t.MessageID)
	if t.AnonymousID != "" {
		p = appendString(append(p, `,"anonymousId":`...), t.AnonymousID)
	}
	if t.UserID != "" {
		p = appendString(append(p, `,"userId":`...), t.UserID)
	}
	p = append(p, `,"event":"Touch","properties":{`...)
	// Extra properties first: where a name repeats, the last one counts.
	if extra := appendCompact(nil, t.Properties); len(extra) > 2 {
		p = append(append(p, extra[1:len(extra)-1]...), ',')
	}
	member := func(name, v string) {
		p = appendString(append(appendString(p, name), ':'), v)
		p = append(p, ',')
	}
	member("touchpoint_id", t.Resolved.TouchpointID)
	member("touchpoint", t.Resolved.TouchpointName)
	member("channel", t.Resolved.Channel)
	member("token", t.Token)
	member("via", t.Via)
	if t.Resolved.CampaignID != "" {
		member("campaign_id", t.Resolved.CampaignID)
	}
	if t.Method != "" {
		member("method", t.Method)
	}
	if t.Resolved.Serial > 0 {
		p = strconv.AppendInt(append(p, `"serial":`...), t.Resolved.Serial, 10)
		p = append(p, ',')
	}
	p = append(p[:len(p)-1], `},"context":{"library":{"name":"hearth","version":`...)
	p = appendString(p, hearth.Version)
	p = append(p, '}')
	if t.IP != "" {
		p = appendString(append(p, `,"ip":`...), t.IP)
	}
	if t.UserAgent != "" {
		p = appendString(append(p, `,"userAgent":`...), t.UserAgent)
	}
	if t.Referrer != "" {
		p = append(appendString(append(p, `,"page":{"referrer":`...), t.Referrer), '}')
	}
	if len(t.Traits) > 0 {
		names := make([]string, 0, len(t.Traits))
		for k := range t.Traits {
			names = append(names, k)
		}
		slices.Sort(names)
		p = append(p, `,"traits":{`...)
		for i, k := range names {
			if i > 0 {
				p = append(p, ',')
			}
			p = appendString(append(appendString(p, k), ':'), t.Traits[k])
		}
		p = append(p, '}')
	}
	if len(t.ExternalIDs) > 0 {
		p = append(p, `,"externalIds":[`...)
		for i, x := range t.ExternalIDs {
			if i > 0 {
				p = append(p, ',')
			}
			p = append(appendString(append(appendString(append(p, `{"type":`...), x.Type), `,"id":`...), x.ID), '}')
		}
		p = append(p, ']')
	}
	p = append(p, '}')
	var err error
	if p, err = appendTime(p, "timestamp", t.At, false); err != nil {
		return Event{}, err
	}
	if p, err = appendTime(p, "receivedAt", t.ReceivedAt, false); err != nil {
		return Event{}, err
	}
	if t.Bot {
		p = append(p, `,"bot":true`...)
	}
	p = append(p, '}')
	return Event{SourceID: sourceID, MessageID: t.MessageID, Type: "track", Name: TouchEventName, UserID: t.UserID, AnonymousID: t.AnonymousID,
		Timestamp: t.At, ReceivedAt: t.ReceivedAt, Bot: t.Bot, Payload: p}, nil
}

// TouchOptions configure the touch redirect.
type TouchOptions struct {
	// CookieDomain is the Domain of the anonymous-id cookie, such as brand.example; empty for the host only.
	CookieDomain string
	// SecureCookie marks the cookie Secure: Hearth is reached over HTTPS.
	SecureCookie bool
	// BadTokensPerMinute is how many tokens that are not Hearth's one client address may present a minute
	// (after a burst of as many) before it is answered 429. Default 30.
	BadTokensPerMinute int
	// Observe counts each request by outcome: person, bot, rate_limited, error, or the refusal (forged,
	// expired, …). Optional.
	Observe func(outcome string)
}

// TouchHandler serves GET and HEAD /t/{token}: it records the touch in the event log, durably, then sends
// the person on to the touchpoint's destination. A token that leads nowhere gets a friendly page, or the
// campaign's fallback page; the redirect only ever goes to a URL a marketer saved.
type TouchHandler struct {
	resolver TouchResolver
	log      Log
	bots     *BotDetector
	clock    hearth.Clock
	opts     TouchOptions
	onError  func(*http.Request, error)
	newID    func() string

	mu      sync.Mutex
	limiter map[string]*rate.Limiter // by client address, for bad tokens
}

// NewTouchHandler builds the redirect handler; onError reports failures of the store.
func NewTouchHandler(resolver TouchResolver, log Log, bots *BotDetector, clock hearth.Clock, opts TouchOptions, onError func(*http.Request, error)) *TouchHandler {
	if opts.BadTokensPerMinute == 0 {
		opts.BadTokensPerMinute = 30
	}
	if opts.Observe == nil {
		opts.Observe = func(string) {}
	}
	return &TouchHandler{resolver: resolver, log: log, bots: bots, clock: clock, opts: opts, onError: onError, newID: hearth.NewID,
		limiter: map[string]*rate.Limiter{}}
}

// anonymousCookie is the snippet's cookie: the redirect and hearth.js name the same browser the same way.
const anonymousCookie = "hearth_aid"

func (h *TouchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.clock.Now()
	ip := clientIP(r)
	token := r.PathValue("token")
	if !h.allowed(ip, false) {
		h.opts.Observe("rate_limited")
		h.page(w, r, http.StatusTooManyRequests, pageTooMany)
		return
	}
	res, err := h.resolver.ResolveTouch(r.Context(), token, now)
	if err != nil {
		h.opts.Observe("error")
		h.onError(r, err)
		h.page(w, r, http.StatusServiceUnavailable, pageUnavailable)
		return
	}
	if res.Destination == "" {
		h.opts.Observe(res.Refused)
		if !res.Known {
			h.allowed(ip, true) // spends the allowance
		}
		if res.FallbackURL != "" {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, res.FallbackURL, http.StatusFound)
			return
		}
		status, page := http.StatusNotFound, pageInvalid
		if res.Known {
			status, page = http.StatusGone, pageEnded
		}
		h.page(w, r, status, page)
		return
	}

	anon := ""
	if c, err := r.Cookie(anonymousCookie); err == nil && validAnonymousID(c.Value) {
		anon = c.Value
	} else {
		anon = newAnonymousID()
	}
	ua := r.UserAgent()
	t := Touch{Resolved: res, Token: token, Via: "link", AnonymousID: anon, IP: ip, UserAgent: ua, Referrer: r.Referer(),
		Method: r.Method, Bot: r.Method == http.MethodHead || h.bots.IsBot(ua), At: now, ReceivedAt: now}
	ev, err := t.Event(TouchSourceID, h.newID)
	if err == nil {
		_, err = h.log.Append(r.Context(), &Batch{SourceID: TouchSourceID, ReceivedAt: now, Events: []Event{ev}})
	}
	switch {
	case err != nil:
		// The person still gets where they were going; the touch is lost, and the operator told.
		h.opts.Observe("error")
		h.onError(r, err)
	case t.Bot:
		h.opts.Observe("bot")
	default:
		h.opts.Observe("person")
	}
	if !t.Bot {
		http.SetCookie(w, &http.Cookie{Name: anonymousCookie, Value: anon, Path: "/", Domain: h.opts.CookieDomain, MaxAge: 365 * 24 * 3600,
			Secure: h.opts.SecureCookie || r.TLS != nil, SameSite: http.SameSiteLaxMode})
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer-when-downgrade")
	http.Redirect(w, r, res.Destination, http.StatusFound)
}

// newAnonymousID makes a new visitor's id as hearth.js does: a version 7 UUID, the time in milliseconds and 74
// random bits, so that new visitors' ids follow one another in the identity index rather than each landing on
// a page of its own at random.
func newAnonymousID() string { return uuid.Must(uuid.NewV7()).String() }

// validAnonymousID accepts what hearth.js accepts as an anonymous id.
func validAnonymousID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// allowed checks a client's allowance of bad tokens, spending one when spend is set.
func (h *TouchHandler) allowed(ip string, spend bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.limiter[ip]
	if l == nil {
		if !spend {
			return true
		}
		if len(h.limiter) > 50_000 { // forget everyone rather than grow without bound under a spray of addresses
			clear(h.limiter)
		}
		per := h.opts.BadTokensPerMinute
		l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(per)), per)
		h.limiter[ip] = l
	}
	if spend {
		return l.AllowN(h.clock.Now(), 1)
	}
	return l.TokensAt(h.clock.Now()) >= 1
}

// The friendly pages, in English and Simplified Chinese.
type touchPage struct{ title, text [2]string }

var (
	pageInvalid = touchPage{
		title: [2]string{"This link is not valid", "链接无效"},
		text:  [2]string{"Please check the code or link and try again.", "请检查二维码或链接后重试。"},
	}
	pageEnded = touchPage{
		title: [2]string{"This code is no longer active", "此二维码已失效"},
		text:  [2]string{"The offer or event it was for has ended or is paused.", "相关活动已结束或暂停。"},
	}
	pageTooMany = touchPage{
		title: [2]string{"Too many attempts", "尝试次数过多"},
		text:  [2]string{"Please wait a minute and try again.", "请稍候一分钟再试。"},
	}
	pageUnavailable = touchPage{
		title: [2]string{"Please try again", "请稍后重试"},
		text:  [2]string{"We could not open this link just now.", "暂时无法打开此链接。"},
	}
)

var touchPageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;background:#f6f7f9;color:#1f2933}
main{max-width:22rem;padding:2rem;text-align:center}h1{font-size:1.25rem;margin:0 0 .5rem}p{margin:0;color:#52606d}</style></head>
<body><main><h1>{{.Title}}</h1><p>{{.Text}}</p></main></body></html>
`))

// page answers with a friendly page in the language the browser prefers.
func (h *TouchHandler) page(w http.ResponseWriter, r *http.Request, status int, p touchPage) {
	lang, i := "en", 0
	if prefersChinese(r.Header.Get("Accept-Language")) {
		lang, i = "zh-CN", 1
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	touchPageTemplate.Execute(w, struct{ Lang, Title, Text string }{lang, p.title[i], p.text[i]})
}

// prefersChinese reports whether Chinese comes before English in an Accept-Language header.
func prefersChinese(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return true
		case strings.HasPrefix(tag, "en"):
			return false
		}
	}
	return false
}
