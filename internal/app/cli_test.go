package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

// runMain calls Main as the hearth command would be run, and returns its exit code and output.
func runMain(t *testing.T, e fakeEnv, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// Commands here end by themselves; the deadline only keeps a broken one (a server started by mistake)
	// from hanging the test run. Main then returns, and the test fails on what it returned.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = Main(ctx, args, e.get, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMainExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		// wantStdout and wantStderr are texts the output must contain.
		wantStdout, wantStderr string
	}{
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: "hearth " + hearth.Version},
		{name: "--version", args: []string{"--version"}, wantCode: 0, wantStdout: "hearth " + hearth.Version},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "Usage:"},
		{name: "no command", args: nil, wantCode: 2, wantStderr: "Usage:"},
		{name: "unknown command", args: []string{"srve"}, wantCode: 2, wantStderr: `"srve"`},
		{name: "a command's help", args: []string{"migrate", "-h"}, wantCode: 0, wantStderr: "-data"},
		{name: "unknown flag", args: []string{"migrate", "--addr", ":9000"}, wantCode: 2, wantStderr: "-addr"},
		{name: "unexpected argument", args: []string{"migrate", "now"}, wantCode: 2, wantStderr: `"now"`},
		{name: "apikey without a subcommand", args: []string{"apikey"}, wantCode: 2, wantStderr: "apikey create"},
		{name: "apikey with an unknown subcommand", args: []string{"apikey", "delete"}, wantCode: 2, wantStderr: "apikey create"},
		{name: "apikey create without --name", args: []string{"apikey", "create"}, wantCode: 2, wantStderr: "--name"},
		{name: "apikey create with a blank --name", args: []string{"apikey", "create", "--name", "  "}, wantCode: 2, wantStderr: "--name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, fakeEnv{"HEARTH_DATA": t.TempDir()}, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
		})
	}
}

// A bad setting stops serve before it opens anything: the data folder is not even created.
func TestServeRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		env  fakeEnv
		args []string
		// wantStderr are texts that must appear in the error: the setting and where its value came from.
		wantStderr []string
	}{
		{"bad --addr", nil, []string{"--addr", "nonsense"}, []string{"addr", "--addr"}},
		{"bad HEARTH_ADDR", fakeEnv{"HEARTH_ADDR": "nonsense"}, nil, []string{"addr", "HEARTH_ADDR"}},
		{"admin email without password", fakeEnv{"HEARTH_ADMIN_EMAIL": "ops@example.com"}, nil, []string{"HEARTH_ADMIN_PASSWORD"}},
		{"several problems", fakeEnv{"HEARTH_LOG_LEVEL": "loud"}, []string{"--addr", "nonsense", "--db", "mysql://x"},
			[]string{"--addr", "--db", "HEARTH_LOG_LEVEL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data", data}, tt.args...)
			code, stdout, stderr := runMain(t, tt.env, args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1\nstderr: %s", code, stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("serve created the data folder before refusing its configuration (stat: %v)", err)
			}
		})
	}
}

func TestConfigCommand(t *testing.T) {
	const dbSecret, adminSecret = "db-S3cret-pw", "admin-S3cret-pw"
	e := fakeEnv{
		"HEARTH_DB":          "postgres://hearth:" + dbSecret + "@db.example.com:5432/hearth",
		"HEARTH_ADMIN_EMAIL": "ops@example.com", "HEARTH_ADMIN_PASSWORD": adminSecret,
		"HEARTH_LOG_LEVEL": "debug",
	}
	code, stdout, stderr := runMain(t, e, "config", "--addr", ":9000")
	if code != 0 {
		t.Fatalf("exit code %d, want 0\nstderr: %s", code, stderr)
	}
	for _, secret := range []string{dbSecret, adminSecret} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("config shows the secret %q:\n%s%s", secret, stdout, stderr)
		}
	}
	// Each setting is on its own line with its value and origin.
	lines := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			lines[f[0]] = f[1:]
		}
	}
	for name, want := range map[string][]string{
		"addr":       {":9000", "#", "--addr"},
		"log.level":  {"debug", "#", "HEARTH_LOG_LEVEL"},
		"log.format": {"text", "#", "default"},
	} {
		if diff := cmp.Diff(want, lines[name]); diff != "" {
			t.Errorf("line of %s (-want +got):\n%s", name, diff)
		}
	}
	if db := lines["db"]; len(db) != 3 || !strings.HasSuffix(db[0], "@db.example.com:5432/hearth") || db[2] != "HEARTH_DB" {
		t.Errorf("line of db = %q, want the URL without its password, from HEARTH_DB", db)
	}
}

// config prints what it has, then reports the problems: exit 1.
func TestConfigCommandInvalid(t *testing.T) {
	code, stdout, stderr := runMain(t, fakeEnv{"HEARTH_LOG_FORMAT": "xml"}, "config")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stdout, "xml") || !strings.Contains(stderr, "HEARTH_LOG_FORMAT") {
		t.Errorf("want the configuration on stdout and the problem on stderr;\nstdout: %s\nstderr: %s", stdout, stderr)
	}
}

var migrationsApplied = regexp.MustCompile(`\((\d+) migrations applied now\)`)

func TestMigrateTwice(t *testing.T) {
	data := t.TempDir()
	var applied []int
	for range 2 {
		code, _, stderr := runMain(t, nil, "migrate", "--data", data)
		if code != 0 {
			t.Fatalf("exit code %d, want 0\nstderr: %s", code, stderr)
		}
		m := migrationsApplied.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("migrate did not tell how many migrations it applied: %q", stderr)
		}
		n, _ := strconv.Atoi(m[1])
		applied = append(applied, n)
	}
	if applied[0] == 0 || applied[1] != 0 {
		t.Errorf("migrations applied by the first and second run = %v, want some then none", applied)
	}
}

// A database that cannot be reached is named in the error without its password.
func TestMigrateUnreachableDatabaseHidesPassword(t *testing.T) {
	const secret = "db-S3cret-pw"
	for _, url := range []string{
		"postgres://hearth:" + secret + "@127.0.0.1:1/hearth?connect_timeout=5",
		"postgres://127.0.0.1:1/hearth?user=hearth&password=" + secret + "&connect_timeout=5",
	} {
		code, stdout, stderr := runMain(t, nil, "migrate", "--db", url)
		if code != 1 {
			t.Errorf("exit code %d, want 1\nstderr: %s", code, stderr)
		}
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("the error shows the database password:\n%s", stderr)
		}
		if !strings.Contains(stderr, "127.0.0.1:1") {
			t.Errorf("the error does not say which database it could not reach:\n%s", stderr)
		}
	}
}

func TestAPIKeyCreateRefusesUnknownRole(t *testing.T) {
	code, stdout, stderr := runMain(t, nil, "apikey", "create", "--name", "CRM sync", "--role", "owner", "--data", t.TempDir())
	if code != 1 {
		t.Errorf("exit code %d, want 1\nstderr: %s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want no key", stdout)
	}
}

var apiKeyLine = regexp.MustCompile(`\Ahk_[A-Za-z0-9_-]{20,}\n\z`)

// hearth apikey create works beside a server running on the same database, and the server accepts the key at
// once.
func TestAPIKeyCreateBesideRunningServer(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addr, cfg.Data = "127.0.0.1:0", t.TempDir()
			if engine == "postgres" {
				cfg.DB = storetest.PostgresURL(t)
			}
			a := startApp(t, cfg).app

			args := []string{"apikey", "create", "--name", "CRM sync", "--data", cfg.Data}
			if cfg.DB != "" {
				args = append(args, "--db", cfg.DB)
			}
			code, stdout, stderr := runMain(t, nil, args...)
			if code != 0 {
				t.Fatalf("exit code %d, want 0\nstderr: %s", code, stderr)
			}
			if !apiKeyLine.MatchString(stdout) {
				t.Fatalf("stdout = %q, want exactly one line with the key", stdout)
			}
			key := strings.TrimSpace(stdout)

			req, _ := http.NewRequest("GET", "http://"+a.Addr()+"/api/v1/sources", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /api/v1/sources with the new key: %s %s", resp.Status, body)
			}
			var got struct{ Items []struct{ ID, Kind string } }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			// Only the built-in source that touches are recorded under.
			if diff := cmp.Diff([]struct{ ID, Kind string }{{"touch", "touch"}}, got.Items); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}

			// A made-up key of the same shape is refused, so the 200 above is the new key's doing.
			req.Header.Set("Authorization", "Bearer hk_"+strings.Repeat("A", 43))
			resp2, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp2.Body.Close()
			if resp2.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET /api/v1/sources with a made-up key: %s, want 401", resp2.Status)
			}
		})
	}
}

// A backup taken while the server runs serves as the store it copied: the same API key, and a touch link whose
// token only the copied master key can verify.
func TestBackupRestores(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr, cfg.Data = "127.0.0.1:0", t.TempDir()
	s := startApp(t, cfg)
	key, _, err := s.app.auth.CreateAPIKey(context.Background(), "test", hearth.RoleMarketer)
	if err != nil {
		t.Fatal(err)
	}
	var tp struct{ ID, Token string }
	if st := s.call(t, key, "POST", "/api/v1/touchpoints", map[string]any{"name": "Window poster", "channel": "qr_poster",
		"destination_url": "https://shop.example/spring"}, &tp); st != http.StatusCreated {
		t.Fatalf("create touchpoint: %d", st)
	}
	dest := filepath.Join(t.TempDir(), "backup")
	code, stdout, stderr := runMain(t, nil, "backup", "--data", cfg.Data, "--to", dest)
	if code != 0 || !strings.Contains(stdout, dest) || !strings.Contains(stderr, "hearth.db") || !strings.Contains(stderr, "events.db") {
		t.Fatalf("backup: exit code %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	s.shutdown(t)

	restored := cfg
	restored.Data = dest
	r := startApp(t, restored)
	var got struct{ ID string }
	if st := r.call(t, key, "GET", "/api/v1/touchpoints/"+tp.ID, nil, &got); st != http.StatusOK || got.ID != tp.ID {
		t.Fatalf("the touchpoint on the restored store: %d %+v", st, got)
	}
	resp, _ := r.visit(t, "GET", r.base+"/t/"+tp.Token, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://shop.example/spring") {
		t.Errorf("the touch link on the restored store: %s to %q", resp.Status, loc)
	}

	for _, tt := range []struct {
		args       []string
		code       int
		wantStderr string
	}{
		{[]string{"backup", "--data", cfg.Data}, 2, "--to"},
		{[]string{"backup", "--data", cfg.Data, "--to", dest}, 1, "new or empty folder"},
		{[]string{"backup", "--db", "postgres://hearth@127.0.0.1:1/hearth", "--to", t.TempDir()}, 1, "pg_dump"},
	} {
		if code, _, stderr := runMain(t, nil, tt.args...); code != tt.code || !strings.Contains(stderr, tt.wantStderr) {
			t.Errorf("hearth %s: exit code %d, stderr %q; want %d and %q", strings.Join(tt.args, " "), code, stderr, tt.code, tt.wantStderr)
		}
	}
}
