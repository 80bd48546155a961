package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

// e2eConfig is the configuration of a whole app on port 0 in a temporary folder, on engine.
func e2eConfig(t *testing.T, engine string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr, cfg.Data = "127.0.0.1:0", t.TempDir()
	if engine == "postgres" {
		cfg.DB = storetest.PostgresURL(t)
	}
	return cfg
}

// started is a running app and what it printed at start.
type started struct {
	app     *App
	base    string
	stderr  string
	http    *http.Client // keeps cookies, does not follow redirects
	stopped bool         // Shutdown was called by the test
}

func startApp(t *testing.T, cfg Config) *started {
	t.Helper()
	ctx := context.Background()
	a, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := a.Start(ctx, &stderr); err != nil {
		a.Shutdown(ctx)
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	s := &started{app: a, base: "http://" + a.Addr(), stderr: stderr.String(), http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	t.Cleanup(func() {
		if !s.stopped {
			a.Shutdown(context.Background())
		}
	})
	return s
}

// shutdown stops the app.
func (s *started) shutdown(t *testing.T) {
	t.Helper()
	s.stopped = true
	if err := s.app.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
}

// do sends a request and returns the response with its body read.
func (s *started) do(t *testing.T, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// wantStatus checks a response's status.
func wantStatus(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %s %s, want %d", resp.Request.Method, resp.Request.URL.Path, resp.Status, body, status)
	}
}

// decodeJSON decodes a response body into a generic value.
func decodeJSON(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v
}

var setupLink = regexp.MustCompile(`/console/setup\?token=([A-Za-z0-9_-]+)`)

func TestEndToEnd(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			t.Run("OperationalEndpoints", func(t *testing.T) { testOperationalEndpoints(t, engine) })
			t.Run("SetupLink", func(t *testing.T) { testSetupLink(t, engine) })
			t.Run("AdminFromConfig", func(t *testing.T) { testAdminFromConfig(t, engine) })
			t.Run("GracefulShutdown", func(t *testing.T) { testGracefulShutdown(t, engine) })
		})
	}
}

func testOperationalEndpoints(t *testing.T, engine string) {
	s := startApp(t, e2eConfig(t, engine))

	resp, body := s.do(t, "GET", "/healthz", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if diff := cmp.Diff(map[string]any{"status": "ok"}, decodeJSON(t, body)); diff != "" {
		t.Errorf("/healthz (-want +got):\n%s", diff)
	}

	resp, body = s.do(t, "GET", "/metrics", nil)
	wantStatus(t, resp, body, http.StatusOK)
	for _, metric := range []string{"hearth_http_requests_total", "go_goroutines", "process_resident_memory_bytes", `hearth_event_log_consumer_lag_events{consumer="profiles"}`, `hearth_event_log_consumer_lag_events{consumer="segments"}`,
		`hearth_source_events_total{outcome="accepted",source_id="touch"}`, `hearth_source_info{kind="touch"`} {
		if !bytes.Contains(body, []byte("\n"+metric)) {
			t.Errorf("/metrics lacks %s", metric)
		}
	}
	if hits := bytes.Contains(body, []byte("\nhearth_sqlite_page_cache_hits_total ")); hits != (engine == "sqlite" && store.SeparatePageCaches) {
		t.Errorf("/metrics on %s has the SQLite page cache's hits: %v", engine, hits)
	}
	if files := bytes.Contains(body, []byte("\nhearth_sqlite_file_bytes{file=\"events.db\"} ")); files != (engine == "sqlite") {
		t.Errorf("/metrics on %s has the event log file's size: %v", engine, files)
	}

	resp, body = s.do(t, "GET", "/", nil)
	wantStatus(t, resp, body, http.StatusFound)
	if loc := resp.Header.Get("Location"); loc != "/console/" {
		t.Errorf("GET / redirects to %q, want /console/", loc)
	}

	resp, body = s.do(t, "GET", "/console/", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("/console/ Content-Type = %q, want text/html", ct)
	}

	// The admin API wants credentials, and answers JSON.
	resp, body = s.do(t, "GET", "/api/v1/sources", nil)
	wantStatus(t, resp, body, http.StatusUnauthorized)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("401 Content-Type = %q, want application/json", ct)
	}
}

func testSetupLink(t *testing.T, engine string) {
	s := startApp(t, e2eConfig(t, engine))
	m := setupLink.FindStringSubmatch(s.stderr)
	if m == nil {
		t.Fatalf("no setup link printed at start: %q", s.stderr)
	}
	token := m[1]

	resp, body := s.do(t, "GET", "/api/v1/auth/setup?token="+token, nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = s.do(t, "GET", "/api/v1/auth/setup?token=not-"+token, nil)
	wantStatus(t, resp, body, http.StatusNotFound)

	setup := map[string]string{"token": token, "email": "Lin@Example.com", "name": "Lin Wei", "password": "a long admin password"}
	resp, body = s.do(t, "POST", "/api/v1/auth/setup", setup)
	wantStatus(t, resp, body, http.StatusOK)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "hearth_session" {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value == "" || !cookie.HttpOnly {
		t.Fatalf("setup set no HttpOnly hearth_session cookie: %q", resp.Header.Values("Set-Cookie"))
	}

	resp, body = s.do(t, "GET", "/api/v1/auth/session", nil)
	wantStatus(t, resp, body, http.StatusOK)
	var session struct {
		User struct {
			Email, Name, Role string
		}
		CSRFToken string `json:"csrf_token"`
	}
	if err := json.Unmarshal(body, &session); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if diff := cmp.Diff(struct{ Email, Name, Role string }{"lin@example.com", "Lin Wei", "admin"}, session.User); diff != "" {
		t.Errorf("session user (-want +got):\n%s", diff)
	}
	if session.CSRFToken == "" {
		t.Error("the session has no CSRF token")
	}

	// The session works on the admin API.
	resp, body = s.do(t, "GET", "/api/v1/sources", nil)
	wantStatus(t, resp, body, http.StatusOK)

	// The link works once.
	setup["email"] = "mallory@example.com"
	resp, body = s.do(t, "POST", "/api/v1/auth/setup", setup)
	wantStatus(t, resp, body, http.StatusNotFound)
	resp, body = s.do(t, "GET", "/api/v1/auth/setup?token="+token, nil)
	wantStatus(t, resp, body, http.StatusNotFound)
}

func testAdminFromConfig(t *testing.T, engine string) {
	cfg := e2eConfig(t, engine)
	cfg.Admin = AdminConfig{Email: "ops@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	if strings.Contains(s.stderr, "/console/setup") {
		t.Errorf("a setup link was printed although the admin is configured: %q", s.stderr)
	}

	resp, body := s.do(t, "POST", "/api/v1/auth/login", map[string]string{"email": "ops@example.com", "password": "wrong password"})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = s.do(t, "POST", "/api/v1/auth/login", map[string]string{"email": "ops@example.com", "password": "a long admin password"})
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = s.do(t, "GET", "/api/v1/auth/session", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if got := decodeJSON(t, body)["user"].(map[string]any)["role"]; got != "admin" {
		t.Errorf("role = %v, want admin", got)
	}

	// Restarting with the same configuration neither fails nor adds a user nor prints a setup link.
	s.shutdown(t)
	cfg.Admin.Password = "another long password" // ignored: the admin exists
	s2 := startApp(t, cfg)
	if strings.Contains(s2.stderr, "/console/setup") {
		t.Errorf("a setup link was printed on restart: %q", s2.stderr)
	}
	resp, body = s2.do(t, "POST", "/api/v1/auth/login", map[string]string{"email": "ops@example.com", "password": "a long admin password"})
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = s2.do(t, "GET", "/api/v1/users", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if n := len(decodeJSON(t, body)["items"].([]any)); n != 1 {
		t.Errorf("%d users after a restart, want 1", n)
	}
}

// Shutdown lets a request in flight finish, returns nil, and closes the port.
func testGracefulShutdown(t *testing.T, engine string) {
	cfg := e2eConfig(t, engine)
	cfg.Admin = AdminConfig{Email: "ops@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	addr := s.app.Addr()

	// A sign-in whose body has not arrived when shutdown begins. "Expect: 100-continue" makes the server say
	// when the handler starts reading the body, so the request is known to be in flight, without sleeping.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"email":"ops@example.com","password":"a long admin password"}`
	head := "POST /api/v1/auth/login HTTP/1.1\r\nHost: hearth\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nExpect: 100-continue\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v, %v", resp, err)
	}

	shuttingDown := make(chan struct{})
	s.app.http.RegisterOnShutdown(func() { close(shuttingDown) }) // called once the listener is closed
	done := make(chan error, 1)
	s.stopped = true
	go func() { done <- s.app.Shutdown(context.Background()) }()
	<-shuttingDown

	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("a new connection was accepted after shutdown began")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the request in flight: %s %s, want 200", resp.Status, got)
	}

	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Shutdown", addr)
	}
}

// A start on a log that ends before what the processor read says so: its files come from different backups.
func TestWarnsWhenLogBehindProcessor(t *testing.T) {
	ctx := context.Background()
	cfg := e2eConfig(t, "sqlite")
	db, _, err := openStore(ctx, cfg, hearth.SystemClock{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetConsumerOffset(ctx, profile.Consumer, 100); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var logs bytes.Buffer
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "log_head=0 processor_offset=100") {
		t.Errorf("no warning of a log behind the processor; logged:\n%s", logs.String())
	}
}
