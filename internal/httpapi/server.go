// Package httpapi is the admin API (/api/v1), the console's mount point and the operational endpoints
// (/healthz, /metrics). routes.go is the whole route table on one screen.
package httpapi

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are what the server is built from.
type Options struct {
	Auth    *auth.Service
	Sources *collect.Sources
	// DefaultSourceRate is the rate limit of sources without one of their own (events per second per node; 0:
	// none), which their answers tell.
	DefaultSourceRate float64
	Events            collect.EventViewer
	// Touchpoints manages campaigns, touchpoints, tokens and their keys.
	Touchpoints *touchpoint.Service
	// WeChat connects official accounts and makes parametric QR codes for touchpoints.
	WeChat *touchpoint.WeChatAccounts
	// Unmerges asks the profile processor to split profiles.
	Unmerges Unmerger
	// ProfileConfigs keeps the identity rules, attribute mappings, trait rules and lifecycle.
	ProfileConfigs *profile.Configs
	// Profiles reads the profiles for the 360° view.
	Profiles ProfileReader
	// Segments keeps the segments marketers define; SegmentData reads their members, sizes and history.
	Segments    *segment.Service
	SegmentData SegmentReader
	// Offline records touches that staff, kiosks and apps report, one at a time or as CSV files.
	Offline *collect.OfflineTouches
	// Pinger checks the database for /healthz.
	Pinger interface {
		Ping(ctx context.Context) error
	}
	Logger  *slog.Logger
	Metrics *Metrics
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Console serves the embedded console under /console/.
	Console http.Handler
	// SecureCookies marks the session cookie Secure even on plain HTTP, for servers behind a TLS proxy.
	SecureCookies bool
	System        System
	// Processing tells how far the work that follows the event log is behind it.
	Processing interface {
		Processing(ctx context.Context) (Processing, error)
		SetAside(ctx context.Context) ([]SetAsideEvent, error)
	}
}

// System is what GET /api/v1/system tells.
type System struct {
	Version   string    `json:"version"`
	Engine    string    `json:"engine"`
	StartedAt time.Time `json:"started_at"`
}

// Processing is what GET /api/v1/system/processing tells: how far each part of the work that follows the
// event log is behind it, so that the console can say when what it shows is not complete yet.
type Processing struct {
	Head       int64            `json:"head"` // the log's last seq
	MeasuredAt time.Time        `json:"measured_at"`
	Parts      []ProcessingPart `json:"parts"`
}

// ProcessingPart is one part: people (the profile processor), segments (memberships) or touch_counts.
type ProcessingPart struct {
	Name     string  `json:"name"`
	State    string  `json:"state"`    // UpToDate, CatchingUp or Stalled
	Behind   int64   `json:"behind"`   // events appended that it has yet to read
	Rate     float64 `json:"rate"`     // events it read a second, over the last half minute
	Incoming float64 `json:"incoming"` // events appended a second, over the same time
	// Progress is the share of the events it was behind, since it began catching up, that it has read; null
	// while up to date.
	Progress *float64 `json:"progress"`
	// ETASeconds is how long it will take at these rates; null while up to date, or if it is not gaining.
	ETASeconds *int64 `json:"eta_seconds"`
	// SetAside is how many events it failed on alone, again and again, and set aside so as to read on.
	SetAside int64 `json:"set_aside"`
}

// SetAsideEvent is an event that a part failed on alone, again and again, and set aside so as to read on; it
// stays in the log. Reason is the error, which holds no personal data.
type SetAsideEvent struct {
	Part       string    `json:"part"`
	Consumer   string    `json:"consumer"`
	Seq        int64     `json:"seq"`
	Reason     string    `json:"reason"`
	SetAsideAt time.Time `json:"set_aside_at"`
}

// The states of a ProcessingPart.
const (
	UpToDate   = "up_to_date"  // a little behind at most, as live traffic keeps it
	CatchingUp = "catching_up" // what is shown from it is not complete yet
	Stalled    = "stalled"     // behind, and has read nothing for half a minute
)

// Server is the HTTP handler of everything but the public ingestion surface.
type Server struct {
	Options
	logger  *slog.Logger
	metrics *Metrics
	mux     *http.ServeMux
	// crossOrigin refuses cross-origin browser requests that change something, whatever the credentials.
	crossOrigin *http.CrossOriginProtection
	handler     http.Handler
}

// New builds the server.
func New(opts Options) *Server {
	s := &Server{Options: opts, logger: opts.Logger.With("component", "http"), metrics: opts.Metrics, mux: http.NewServeMux()}
	s.crossOrigin = http.NewCrossOriginProtection()
	s.crossOrigin.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, hearth.Errorf(hearth.Forbidden, "httpapi.cross_origin", "Cross-origin requests are not allowed."))
	}))
	s.routes()
	s.handler = s.observe(s.mux)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Handle mounts another part's handler (the ingestion API, later touch redirects) on the same server, so that
// it shares request ids, the access log and metrics.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// access is who may call a route.
type access int

const (
	public  access = iota // no credentials needed
	readers               // any role
	writers               // admin and marketer
	admins                // admin only
)

func (a access) allows(r hearth.Role) bool {
	switch a {
	case readers:
		return r.Valid()
	case writers:
		return r.CanWrite()
	case admins:
		return r == hearth.RoleAdmin
	}
	return true
}

// apiHandler is an admin API handler; p is the authenticated caller (empty on public routes).
type apiHandler func(w http.ResponseWriter, r *http.Request, p auth.Principal)

// api mounts an admin API route: cross-origin protection, then authentication and the role check.
func (s *Server) api(pattern string, need access, h apiHandler) {
	s.mux.Handle(pattern, s.crossOrigin.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !storableAddress(r.URL) {
			s.fail(w, r, hearth.Errorf(hearth.Invalid, "httpapi.address", "The address holds a NUL character (%%00) or bytes that are not UTF-8."))
			return
		}
		if need == public {
			h(w, r, auth.Principal{})
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !need.allows(p.Role) {
			s.fail(w, r, hearth.Errorf(hearth.Forbidden, "httpapi.authorize", "Your role (%s) may not do this.", p.Role))
			return
		}
		h(w, r, p)
	})))
}

// storableAddress reports whether a request's path and query hold only text that the store can compare:
// PostgreSQL refuses NUL and bytes that are not UTF-8 in a query's parameters.
func storableAddress(u *url.URL) bool {
	text := func(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
	if !text(u.Path) {
		return false
	}
	if u.RawQuery == "" {
		return true
	}
	for k, vs := range u.Query() {
		if !text(k) {
			return false
		}
		for _, v := range vs {
			if !text(v) {
				return false
			}
		}
	}
	return true
}

const (
	sessionCookie = "hearth_session"
	csrfHeader    = "X-CSRF-Token"
)

// authenticate finds the caller: an API key in the Authorization header, else the session cookie. A
// cookie-authenticated request that changes something must carry the session's CSRF token.
func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	const op = "httpapi.authenticate"
	if h := r.Header.Get("Authorization"); h != "" {
		key, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || key == "" {
			return auth.Principal{}, hearth.Errorf(hearth.Unauthenticated, op, "The Authorization header must be \"Bearer <API key>\".")
		}
		return s.Auth.APIKeyPrincipal(r.Context(), strings.TrimSpace(key))
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return auth.Principal{}, hearth.Errorf(hearth.Unauthenticated, op, "Sign in, or send an API key as \"Authorization: Bearer <key>\".")
	}
	p, _, err := s.Auth.SessionPrincipal(r.Context(), c.Value)
	if err != nil {
		return auth.Principal{}, err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(csrfHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRFToken)) != 1 {
			return auth.Principal{}, &hearth.Error{Kind: hearth.Forbidden, Op: op, Code: "csrf", Msg: "The request lacks a valid CSRF token; reload the page and try again."}
		}
	}
	return p, nil
}

// setSessionCookie sets the cookie of a session just opened; it lasts as long as the session.
func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, sess auth.Session) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/",
		MaxAge:   int(sess.ExpiresAt.Sub(sess.CreatedAt).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: s.SecureCookies || r.TLS != nil,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.SecureCookies || r.TLS != nil,
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Pinger.Ping(ctx); err != nil {
		s.logger.WarnContext(r.Context(), "health check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{})
}
