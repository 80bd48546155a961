package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/httpapi"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
	"github.com/prometheus/client_golang/prometheus"
)

// env is the real handler stack on a real store.
type env struct {
	t     *testing.T
	url   string
	auth  *auth.Service
	clock *storetest.Clock
	keys  map[hearth.Role]string // an API key per role
	db    *store.DB
	logs  *logBuffer // what the server logged, at every level
}

// logBuffer holds log lines written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const adminEmail, adminPassword = "admin@example.com", "correct horse battery"

// forEachEngine runs fn against a fresh server on SQLite and on PostgreSQL.
func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, eng := range storetest.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
			db := eng.Open(t, clock)
			logs := &logBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			authSvc := auth.NewService(db, clock, logger, auth.Options{})
			reg := prometheus.NewRegistry()
			master, err := touchpoint.ParseMasterKey(strings.Repeat("k", 43) + "=")
			if err != nil {
				t.Fatal(err)
			}
			tps := touchpoint.NewService(db, master, clock, touchpoint.Options{PublicURL: "https://go.example"})
			if err := tps.LoadKeys(context.Background()); err != nil {
				t.Fatal(err)
			}
			srv := httpapi.New(httpapi.Options{
				Auth: authSvc, Sources: collect.NewSources(db, clock), DefaultSourceRate: 100, Events: db, Pinger: db, Touchpoints: tps, Offline: offlineTouches(t, db, tps, clock), Profiles: db, Unmerges: db,
				ProfileConfigs: profile.NewConfigs(db),
				Logger:         logger, Metrics: httpapi.NewMetrics(reg), Gatherer: reg,
				Console:    http.NotFoundHandler(),
				System:     httpapi.System{Version: "test", Engine: string(db.Engine())},
				Processing: steadyProcessing{},
			})
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			e := &env{t: t, url: ts.URL, auth: authSvc, clock: clock, keys: map[hearth.Role]string{}, db: db, logs: logs}
			ctx := context.Background()
			if _, err := authSvc.CreateUser(ctx, auth.NewUser{Email: adminEmail, Name: "Admin", Role: hearth.RoleAdmin, Password: adminPassword}); err != nil {
				t.Fatal(err)
			}
			for _, r := range []hearth.Role{hearth.RoleAdmin, hearth.RoleMarketer, hearth.RoleAnalyst} {
				key, _, err := authSvc.CreateAPIKey(ctx, string(r)+" key", r)
				if err != nil {
					t.Fatal(err)
				}
				e.keys[r] = key
			}
			fn(t, e)
		})
	}
}

// client is an HTTP client with a cookie jar, as a browser has, plus optional headers on every request.
type client struct {
	e      *env
	http   *http.Client
	header http.Header
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, header: http.Header{}}
}

func (e *env) as(role hearth.Role) *client {
	c := e.client()
	c.header.Set("Authorization", "Bearer "+e.keys[role])
	return c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errCode() string {
	var b struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(r.body, &b)
	return b.Error.Code
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends body (a string is sent as is, anything else as JSON).
func (c *client) do(method, path string, body any) response {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.e.url+path, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// login signs c in and makes it send the CSRF token from then on.
func (c *client) login(email, password string) response {
	c.e.t.Helper()
	r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	if r.status == http.StatusOK {
		var s struct {
			CSRFToken string `json:"csrf_token"`
		}
		r.decode(c.e.t, &s)
		c.header.Set("X-CSRF-Token", s.CSRFToken)
	}
	return r
}

// steadyProcessing answers that everything follows the log closely.
type steadyProcessing struct{}

func (steadyProcessing) Processing(context.Context) (httpapi.Processing, error) {
	return httpapi.Processing{Head: 42, Parts: []httpapi.ProcessingPart{{Name: "people", State: httpapi.UpToDate, Behind: 2}}}, nil
}

func (steadyProcessing) SetAside(context.Context) ([]httpapi.SetAsideEvent, error) { return nil, nil }
