package app

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeEnv is a fake environment for getenv.
type fakeEnv map[string]string

func (e fakeEnv) get(name string) string { return e[name] }

// effective is every setting of c as "value # origin", keyed by setting name.
func effective(c *Config) map[string]string {
	m := map[string]string{}
	for _, s := range settings {
		m[s.name] = *s.field(c) + " # " + c.origin[s.name]
	}
	return m
}

func TestLoadConfigPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  fakeEnv
		args []string
		// want lists the settings that differ from the defaults.
		want map[string]string
	}{
		{
			name: "defaults",
		},
		{
			name: "environment overrides defaults",
			env: fakeEnv{
				"HEARTH_ADDR": ":9000", "HEARTH_LOG_LEVEL": "debug", "HEARTH_DB": "postgres://db.example.com/hearth",
				"HEARTH_ADMIN_EMAIL": "ops@example.com", "HEARTH_ADMIN_PASSWORD": "a long password",
			},
			want: map[string]string{
				"addr":           ":9000 # HEARTH_ADDR",
				"log.level":      "debug # HEARTH_LOG_LEVEL",
				"db":             "postgres://db.example.com/hearth # HEARTH_DB",
				"admin.email":    "ops@example.com # HEARTH_ADMIN_EMAIL",
				"admin.password": "a long password # HEARTH_ADMIN_PASSWORD",
			},
		},
		{
			name: "flags override environment",
			env:  fakeEnv{"HEARTH_ADDR": ":9000", "HEARTH_LOG_FORMAT": "json", "HEARTH_DATA": "/env/data"},
			args: []string{"--addr", ":9100", "-data=/flag/data", "--event-retention", "400d"},
			want: map[string]string{
				"addr":             ":9100 # --addr",
				"data":             "/flag/data # --data",
				"log.format":       "json # HEARTH_LOG_FORMAT",
				"ingest.retention": "400d # --event-retention",
			},
		},
		{
			name: "a flag given its default value still overrides the environment",
			env:  fakeEnv{"HEARTH_ADDR": ":9000"},
			args: []string{"--addr", "127.0.0.1:8080"},
			want: map[string]string{"addr": "127.0.0.1:8080 # --addr"},
		},
		{
			name: "an empty variable counts as unset",
			env:  fakeEnv{"HEARTH_ADDR": "", "HEARTH_LOG_LEVEL": ""},
		},
		{
			name: "an empty flag counts as set",
			env:  fakeEnv{"HEARTH_PUBLIC_URL": "https://cdp.example.com"},
			args: []string{"--public-url="},
			want: map[string]string{"public_url": " # --public-url"},
		},
	}
	defaults := DefaultConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := loadConfig("serve", tt.args, tt.env.get, io.Discard, serveSettings...)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			want := effective(&defaults)
			for k, v := range tt.want {
				want[k] = v
			}
			if diff := cmp.Diff(want, effective(&cfg)); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadConfigUsageErrors(t *testing.T) {
	tests := []struct {
		name  string
		cmd   string
		names []string
		args  []string
	}{
		{"unknown flag", "serve", serveSettings, []string{"--port", "80"}},
		{"flag of another command", "migrate", []string{"data", "db"}, []string{"--addr", ":9000"}},
		{"flag without its value", "serve", serveSettings, []string{"--addr"}},
		{"positional argument", "serve", serveSettings, []string{"--addr", ":9000", "extra"}},
		{"admin password has no flag", "serve", serveSettings, []string{"--admin-password", "a long password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, _, err := loadConfig(tt.cmd, tt.args, fakeEnv{}.get, &stderr, tt.names...)
			if !errors.Is(err, errUsage) {
				t.Errorf("loadConfig(%q) = %v, want a usage error", tt.args, err)
			}
			if stderr.Len() == 0 {
				t.Error("nothing printed to stderr: the user is not told what is wrong")
			}
		})
	}
}

// problems splits Validate's error into its "  - …" lines.
func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n")[1:] {
		p, ok := strings.CutPrefix(line, "  - ")
		if !ok {
			t.Fatalf("unexpected line %q in:\n%v", line, err)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		t.Fatalf("error without problems: %v", err)
	}
	return out
}

func TestValidateReportsEveryProblemWithItsOrigin(t *testing.T) {
	e := fakeEnv{"HEARTH_ADDR": "nonsense", "HEARTH_LOG_LEVEL": "loud"}
	cfg, _, err := loadConfig("serve", []string{"--db", "mysql://root:pw@localhost/hearth"}, e.get, io.Discard, serveSettings...)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad address, database URL and log level")
	}
	got := problems(t, err)
	want := []string{"addr (from HEARTH_ADDR): ", "db (from --db): ", "log.level (from HEARTH_LOG_LEVEL): "}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to start with %q", i, got[i], want[i])
		}
	}
	if !strings.HasPrefix(err.Error(), "the configuration has 3 problems:") {
		t.Errorf("error does not count its problems: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		// want names each expected problem by its setting ("addr", "db") or by a text only it contains; nil
		// means valid.
		want []string
	}{
		{"defaults", func(c *Config) {}, nil},
		{"any interface", func(c *Config) { c.Addr = ":8080" }, nil},
		{"localhost and port 0", func(c *Config) { c.Addr = "localhost:0" }, nil},
		{"IPv6 loopback", func(c *Config) { c.Addr = "[::1]:8080" }, nil},
		{"address without port", func(c *Config) { c.Addr = "nonsense" }, []string{"addr"}},
		{"port too large", func(c *Config) { c.Addr = "127.0.0.1:65536" }, []string{"addr"}},
		{"port by name", func(c *Config) { c.Addr = "127.0.0.1:http" }, []string{"addr"}},
		{"no data folder", func(c *Config) { c.Data = " " }, []string{"data"}},
		{"no data folder is fine on PostgreSQL", func(c *Config) { c.Data, c.DB = "", "postgres://db.example.com/hearth" }, nil},
		{"postgresql scheme", func(c *Config) { c.DB = "postgresql://hearth:pw@db.example.com:5432/hearth" }, nil},
		{"not PostgreSQL", func(c *Config) { c.DB = "mysql://db.example.com/hearth" }, []string{"db"}},
		{"SQLite file as URL", func(c *Config) { c.DB = "file:hearth.db" }, []string{"db"}},
		{"unparsable PostgreSQL URL", func(c *Config) { c.DB = "postgres://db.example.com:port/hearth" }, []string{"db"}},
		{"public URL", func(c *Config) { c.PublicURL = "https://cdp.example.com/" }, nil},
		{"public URL without scheme", func(c *Config) { c.PublicURL = "cdp.example.com" }, []string{"public_url"}},
		{"public URL relative", func(c *Config) { c.PublicURL = "/hearth" }, []string{"public_url"}},
		{"public URL not http", func(c *Config) { c.PublicURL = "ftp://cdp.example.com" }, []string{"public_url"}},
		{"public URL without host", func(c *Config) { c.PublicURL = "https://" }, []string{"public_url"}},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, []string{"log.format"}},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, []string{"log.level"}},
		{"admin", func(c *Config) { c.Admin = AdminConfig{"ops@example.com", "0123456789"} }, nil},
		{"admin password counted in characters", func(c *Config) { c.Admin = AdminConfig{"ops@example.com", "密码密码密码密码密码"} }, nil},
		{"admin email without password", func(c *Config) { c.Admin.Email = "ops@example.com" }, []string{"HEARTH_ADMIN_PASSWORD"}},
		{"admin password without email", func(c *Config) { c.Admin.Password = "a long password" }, []string{"HEARTH_ADMIN_EMAIL"}},
		{"admin password too short", func(c *Config) { c.Admin = AdminConfig{"ops@example.com", "012345678"} }, []string{"admin.password"}},
		{"admin email invalid", func(c *Config) { c.Admin = AdminConfig{"ops at example", "a long password"} }, []string{"admin.email"}},
		{"admin email and password both bad", func(c *Config) { c.Admin = AdminConfig{"ops", "short"} }, []string{"admin.email", "admin.password"}},
		{"event size", func(c *Config) { c.Ingest.MaxEvent = "1KB" }, nil},
		{"event size too small", func(c *Config) { c.Ingest.MaxEvent = "512" }, []string{"ingest.max_event"}},
		{"event size not a size", func(c *Config) { c.Ingest.MaxEvent = "large" }, []string{"ingest.max_event"}},
		{"request smaller than an event", func(c *Config) { c.Ingest.MaxEvent, c.Ingest.MaxRequest = "64KB", "32KB" }, []string{"ingest.max_request"}},
		{"source rate", func(c *Config) { c.Ingest.SourceRate = "12.5" }, nil},
		{"negative source rate", func(c *Config) { c.Ingest.SourceRate = "-1" }, []string{"ingest.source_rate"}},
		{"dedupe window in hours", func(c *Config) { c.Ingest.DedupeWindow = "36h" }, nil},
		{"no dedupe window", func(c *Config) { c.Ingest.DedupeWindow = "0" }, []string{"ingest.dedupe_window"}},
		{"retention", func(c *Config) { c.Ingest.Retention = "400d" }, nil},
		{"retention shorter than dedupe window", func(c *Config) { c.Ingest.Retention = "1d" }, []string{"ingest.retention"}},
		{"negative retention", func(c *Config) { c.Ingest.Retention = "-5h" }, []string{"ingest.retention"}},
		{"code batch ZIPs kept forever", func(c *Config) { c.CodeBatchRetention = "0" }, nil},
		{"code batch retention not a duration", func(c *Config) { c.CodeBatchRetention = "a month" }, []string{"touch.code_batch_retention"}},
		{"many at once", func(c *Config) {
			c.Addr, c.PublicURL, c.Log.Format, c.Admin.Email = ":99999", "example.com", "yaml", "ops@example.com"
		}, []string{"addr", "public_url", "log.format", "HEARTH_ADMIN_PASSWORD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			got := problems(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() = %v\nwant %d problems: %q", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w+" (from ") && !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want one about %s", i, got[i], w)
				}
			}
		})
	}
}

func TestValidateParsesIngestSettings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Ingest = IngestConfig{MaxEvent: "64kb", MaxRequest: "1MiB", SourceRate: "250", DedupeWindow: "36h", Retention: "400d"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := IngestConfig{
		MaxEvent: "64kb", MaxRequest: "1MiB", SourceRate: "250", DedupeWindow: "36h", Retention: "400d",
		MaxEventBytes: 64 << 10, MaxRequestBytes: 1 << 20, SourceRateLimit: 250,
		Dedupe: 36 * time.Hour, RetentionPeriod: 400 * 24 * time.Hour,
	}
	if diff := cmp.Diff(want, cfg.Ingest); diff != "" {
		t.Errorf("ingest settings (-want +got):\n%s", diff)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		name      string
		addr      string
		publicURL string
		want      string
	}{
		{"any interface", ":8080", "", "http://localhost:8080"},
		{"any IPv4 interface", "0.0.0.0:80", "", "http://localhost:80"},
		{"any IPv6 interface", "[::]:8080", "", "http://localhost:8080"},
		{"loopback", "127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"IPv6 loopback", "[::1]:9000", "", "http://[::1]:9000"},
		{"public URL", ":8080", "https://cdp.example.com", "https://cdp.example.com"},
		{"public URL with trailing slash", ":8080", "https://cdp.example.com/", "https://cdp.example.com"},
		{"public URL with a path", ":8080", "https://example.com/hearth/", "https://example.com/hearth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addr, cfg.PublicURL = tt.addr, tt.publicURL
			if got := cfg.BaseURL(); got != tt.want {
				t.Errorf("BaseURL() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrintRedactsSecrets(t *testing.T) {
	const dbSecret, adminSecret = "db-S3cret-pw", "admin-S3cret-pw"
	tests := []struct {
		name string
		env  fakeEnv
		// shown must appear in the output; the secrets must not.
		shown []string
	}{
		{
			name: "password in the URL's user info",
			env: fakeEnv{
				"HEARTH_DB":          "postgres://hearth:" + dbSecret + "@db.example.com:5432/hearth?sslmode=require",
				"HEARTH_ADMIN_EMAIL": "ops@example.com", "HEARTH_ADMIN_PASSWORD": adminSecret,
			},
			shown: []string{"db.example.com:5432/hearth", "ops@example.com", "# HEARTH_DB", "# HEARTH_ADMIN_PASSWORD"},
		},
		{
			// PostgreSQL (and pgx) take the password from the query string as well.
			name:  "password in the URL's query",
			env:   fakeEnv{"HEARTH_DB": "postgres://db.example.com/hearth?user=hearth&password=" + dbSecret},
			shown: []string{"db.example.com/hearth", "# HEARTH_DB"},
		},
		{
			name:  "URL that does not parse",
			env:   fakeEnv{"HEARTH_DB": "postgres://hearth:" + dbSecret + "@db.example.com:port/hearth"},
			shown: []string{"# HEARTH_DB"},
		},
		{
			name:  "not a PostgreSQL URL",
			env:   fakeEnv{"HEARTH_DB": "mysql://hearth:" + dbSecret + "@db.example.com/hearth"},
			shown: []string{"# HEARTH_DB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := loadConfig("config", nil, tt.env.get, io.Discard, serveSettings...)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cfg.Print(&out)
			for _, secret := range []string{dbSecret, adminSecret} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("the output shows the secret %q:\n%s", secret, out.String())
				}
			}
			for _, s := range tt.shown {
				if !strings.Contains(out.String(), s) {
					t.Errorf("the output lacks %q:\n%s", s, out.String())
				}
			}
			if n := strings.Count(out.String(), "\n"); n != len(settings) {
				t.Errorf("printed %d lines, want one per setting (%d)", n, len(settings))
			}
		})
	}
}
