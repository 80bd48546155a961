package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// Config is Hearth's whole configuration. It is read from defaults, then HEARTH_* environment variables, then
// command-line flags, each overriding the one before.
type Config struct {
	Addr      string // HTTP listen address
	Data      string // data folder: the embedded database and other local state
	DB        string // postgres://… selects PostgreSQL; empty means the embedded SQLite in Data
	PublicURL string // how people reach this server, for links Hearth prints or sends; default http://Addr
	Log       LogConfig
	Admin     AdminConfig
	Ingest    IngestConfig
	// MasterKey seals the secrets kept in the store (token signing keys, providers' app secrets): 32 bytes in
	// base64 or hex. Empty: master.key in the data folder, made at first start.
	MasterKey string
	// TouchCookieDomain is the domain of the anonymous-id cookie that touch links set, such as brand.example,
	// so that the brand's sites share it; empty sets it for the host serving the link only.
	TouchCookieDomain string
	// CodeBatchRetention is how long the ZIP of a batch of numbered codes is kept, such as 30d; "0" keeps
	// them forever. Validate parses it into CodeBatchKeep.
	CodeBatchRetention string
	CodeBatchKeep      time.Duration

	// origin tells, per setting, where its value came from ("default", "HEARTH_ADDR", "--addr").
	origin map[string]string
}

// LogConfig says how Hearth logs.
type LogConfig struct {
	Format string // text or json
	Level  string // debug, info, warn or error
}

// IngestConfig tunes event collection. The strings are as given; Validate parses them into the typed fields.
type IngestConfig struct {
	MaxEvent, MaxRequest, SourceRate, DedupeWindow, Retention string

	MaxEventBytes   int
	MaxRequestBytes int
	SourceRateLimit float64       // events per second per source, per node; 0: no limit
	Dedupe          time.Duration // messageId deduplication window
	RetentionPeriod time.Duration // how long the event log keeps events; 0: forever
}

// AdminConfig creates the first admin on an empty store.
type AdminConfig struct {
	Email    string
	Password string
}

// setting is one configuration value with its environment variable and flag.
type setting struct {
	name, env, flag, usage string
	secret                 bool
	field                  func(c *Config) *string
}

var settings = []setting{
	{"addr", "HEARTH_ADDR", "addr", "HTTP listen address, host:port", false, func(c *Config) *string { return &c.Addr }},
	{"data", "HEARTH_DATA", "data", "data folder for the embedded database", false, func(c *Config) *string { return &c.Data }},
	{"db", "HEARTH_DB", "db", "PostgreSQL URL (postgres://…); empty uses the embedded SQLite", true, func(c *Config) *string { return &c.DB }},
	{"public_url", "HEARTH_PUBLIC_URL", "public-url", "the URL people reach this server at (default http://ADDR)", false, func(c *Config) *string { return &c.PublicURL }},
	{"log.format", "HEARTH_LOG_FORMAT", "log-format", "log format: text or json", false, func(c *Config) *string { return &c.Log.Format }},
	{"log.level", "HEARTH_LOG_LEVEL", "log-level", "log level: debug, info, warn or error", false, func(c *Config) *string { return &c.Log.Level }},
	{"ingest.max_event", "HEARTH_MAX_EVENT_SIZE", "max-event-size", "largest accepted event, such as 32KB", false, func(c *Config) *string { return &c.Ingest.MaxEvent }},
	{"ingest.max_request", "HEARTH_MAX_REQUEST_SIZE", "max-request-size", "largest accepted tracking request, after decompression, such as 500KB", false, func(c *Config) *string { return &c.Ingest.MaxRequest }},
	{"ingest.source_rate", "HEARTH_SOURCE_RATE", "source-rate", "events per second a source without a rate limit of its own may send to this node; 0 for no limit", false, func(c *Config) *string { return &c.Ingest.SourceRate }},
	{"ingest.dedupe_window", "HEARTH_DEDUPE_WINDOW", "dedupe-window", "an event whose messageId its source sent within this window is stored once, such as 7d", false, func(c *Config) *string { return &c.Ingest.DedupeWindow }},
	{"ingest.retention", "HEARTH_EVENT_RETENTION", "event-retention", "how long the event log keeps events, such as 400d; 0 keeps them forever", false, func(c *Config) *string { return &c.Ingest.Retention }},
	{"master_key", "HEARTH_MASTER_KEY", "", "", true, func(c *Config) *string { return &c.MasterKey }},
	{"touch.cookie_domain", "HEARTH_TOUCH_COOKIE_DOMAIN", "touch-cookie-domain", "the domain of the cookie touch links set, such as brand.example (default: the link's host)", false, func(c *Config) *string { return &c.TouchCookieDomain }},
	{"touch.code_batch_retention", "HEARTH_CODE_BATCH_RETENTION", "code-batch-retention", "how long the ZIP of a batch of numbered codes is kept, such as 30d (the batch stays, and can be drawn again); 0 keeps them forever", false, func(c *Config) *string { return &c.CodeBatchRetention }},
	{"admin.email", "HEARTH_ADMIN_EMAIL", "", "", false, func(c *Config) *string { return &c.Admin.Email }},
	{"admin.password", "HEARTH_ADMIN_PASSWORD", "", "", true, func(c *Config) *string { return &c.Admin.Password }},
}

// DefaultConfig is the configuration with nothing set.
func DefaultConfig() Config {
	c := Config{
		Addr:               "127.0.0.1:8080",
		Data:               "./hearth-data",
		Log:                LogConfig{Format: "text", Level: "info"},
		Ingest:             IngestConfig{MaxEvent: "32KB", MaxRequest: "500KB", SourceRate: "0", DedupeWindow: "7d", Retention: "0"},
		CodeBatchRetention: "30d",
		origin:             map[string]string{},
	}
	for _, s := range settings {
		c.origin[s.name] = "default"
	}
	return c
}

// flagSet returns a flag set for a command whose flags are the named settings; Parse fills the config.
func (c *Config) flagSet(cmd string, stderr io.Writer, names ...string) (*flag.FlagSet, func()) {
	fs := flag.NewFlagSet("hearth "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := map[string]*string{}
	for _, s := range settings {
		for _, n := range names {
			if n == s.name && s.flag != "" {
				values[s.name] = fs.String(s.flag, *s.field(c), s.usage+" ($"+s.env+")")
			}
		}
	}
	// apply copies only the flags given on the command line, so that their origin is right.
	apply := func() {
		fs.Visit(func(f *flag.Flag) {
			for _, s := range settings {
				if s.flag == f.Name {
					*s.field(c) = *values[s.name]
					c.origin[s.name] = "--" + f.Name
				}
			}
		})
	}
	return fs, apply
}

// applyEnv reads HEARTH_* variables from getenv.
func (c *Config) applyEnv(getenv func(string) string) {
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			*s.field(c) = v
			c.origin[s.name] = s.env
		}
	}
}

// problem names a setting by where its value came from, so that the user knows what to fix.
func (c *Config) problem(name, format string, args ...any) string {
	return fmt.Sprintf("%s (from %s): %s", name, c.origin[name], fmt.Sprintf(format, args...))
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var problems []string
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		problems = append(problems, c.problem("addr", "%q is not host:port, such as 127.0.0.1:8080 or :8080", c.Addr))
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		problems = append(problems, c.problem("addr", "the port %q is not a number from 0 to 65535", port))
	} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		if _, err := net.LookupHost(host); err != nil {
			problems = append(problems, c.problem("addr", "the host %q is neither an IP address nor a name this machine knows", host))
		}
	}
	if c.DB == "" && strings.TrimSpace(c.Data) == "" {
		problems = append(problems, c.problem("data", "is empty; give a folder for the embedded database"))
	}
	if c.DB != "" {
		if !store.IsPostgresURL(c.DB) {
			problems = append(problems, c.problem("db", "must be a PostgreSQL URL such as postgres://user:password@host:5432/hearth; leave it empty for the embedded SQLite"))
		} else if _, err := url.Parse(c.DB); err != nil {
			problems = append(problems, c.problem("db", "is not a valid URL"))
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, c.problem("public_url", "%q is not an absolute http:// or https:// URL", c.PublicURL))
		}
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		problems = append(problems, c.problem("log.format", "%q is neither text nor json", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		problems = append(problems, c.problem("log.level", "%q is not one of debug, info, warn, error", c.Log.Level))
	}
	var err2 error
	if c.Ingest.MaxEventBytes, err2 = parseSize(c.Ingest.MaxEvent); err2 != nil || c.Ingest.MaxEventBytes < 1024 {
		problems = append(problems, c.problem("ingest.max_event", "%q is not a size of at least 1KB, such as 32KB", c.Ingest.MaxEvent))
	}
	if c.Ingest.MaxRequestBytes, err2 = parseSize(c.Ingest.MaxRequest); err2 != nil || c.Ingest.MaxRequestBytes < c.Ingest.MaxEventBytes {
		problems = append(problems, c.problem("ingest.max_request", "%q is not a size at least as large as the largest event, such as 500KB", c.Ingest.MaxRequest))
	}
	if c.Ingest.SourceRateLimit, err2 = strconv.ParseFloat(c.Ingest.SourceRate, 64); err2 != nil || c.Ingest.SourceRateLimit < 0 {
		problems = append(problems, c.problem("ingest.source_rate", "%q is not a number of events per second (0 for no limit)", c.Ingest.SourceRate))
	}
	if c.Ingest.Dedupe, err2 = parseDays(c.Ingest.DedupeWindow); err2 != nil || c.Ingest.Dedupe <= 0 {
		problems = append(problems, c.problem("ingest.dedupe_window", "%q is not a duration such as 7d or 36h", c.Ingest.DedupeWindow))
	}
	if c.Ingest.RetentionPeriod, err2 = parseDays(c.Ingest.Retention); err2 != nil || c.Ingest.RetentionPeriod < 0 {
		problems = append(problems, c.problem("ingest.retention", "%q is not a duration such as 400d (0 keeps events forever)", c.Ingest.Retention))
	} else if c.Ingest.RetentionPeriod > 0 && c.Ingest.RetentionPeriod < c.Ingest.Dedupe {
		problems = append(problems, c.problem("ingest.retention", "keeps events for less than the deduplication window (%s)", c.Ingest.DedupeWindow))
	}
	if c.MasterKey != "" {
		if _, err := touchpoint.ParseMasterKey(c.MasterKey); err != nil {
			problems = append(problems, c.problem("master_key", "%s", hearth.MessageOf(err)))
		}
	}
	if d := c.TouchCookieDomain; d != "" && (strings.ContainsAny(d, " /:;,=") || !strings.Contains(strings.Trim(d, "."), ".")) {
		problems = append(problems, c.problem("touch.cookie_domain", "%q is not a domain such as brand.example", d))
	}
	if c.CodeBatchKeep, err2 = parseDays(c.CodeBatchRetention); err2 != nil || c.CodeBatchKeep < 0 {
		problems = append(problems, c.problem("touch.code_batch_retention", "%q is not a duration such as 30d (0 keeps them forever)", c.CodeBatchRetention))
	}
	if (c.Admin.Email == "") != (c.Admin.Password == "") {
		problems = append(problems, "HEARTH_ADMIN_EMAIL and HEARTH_ADMIN_PASSWORD must be set together, or neither")
	} else if c.Admin.Email != "" {
		if _, err := auth.NormalizeEmail("config", c.Admin.Email); err != nil {
			problems = append(problems, c.problem("admin.email", "%q is not a valid email address", c.Admin.Email))
		}
		if len([]rune(c.Admin.Password)) < auth.MinPasswordLen {
			problems = append(problems, c.problem("admin.password", "must have at least %d characters", auth.MinPasswordLen))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	msg := "the configuration has a problem:"
	if len(problems) > 1 {
		msg = fmt.Sprintf("the configuration has %d problems:", len(problems))
	}
	return errors.New(msg + "\n  - " + strings.Join(problems, "\n  - "))
}

// BaseURL is the URL people reach this server at.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(c.Addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Print writes the effective configuration, one setting a line with where it came from; secrets are redacted.
func (c *Config) Print(w io.Writer) {
	for _, s := range settings {
		v := *s.field(c)
		switch {
		case v == "":
			v = `""`
		case s.name == "db":
			v = store.RedactURL(v)
		case s.secret:
			v = "(redacted)"
		}
		fmt.Fprintf(w, "%-15s %-45s # %s\n", s.name, v, c.origin[s.name])
	}
}

// parseSize reads a size in bytes: 32768, 32KB, 1MB (binary multiples).
func parseSize(s string) (int, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KB", 1 << 10}, {"KIB", 1 << 10}, {"MB", 1 << 20}, {"MIB", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<30/mult {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n * mult, nil
}

// parseDays reads a Go duration, with d for days too: 7d, 36h, 1h30m, 0.
func parseDays(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("not a number of days: %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}
