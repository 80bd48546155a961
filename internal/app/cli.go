package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/store"
)

const usage = `Hearth: the centre that all of a company's customer touchpoints connect to.

Usage:
  hearth serve         [--addr ADDR] [--data DIR] [--db URL] [--public-url URL]   run everything
  hearth migrate       [--data DIR] [--db URL]                    bring the database schema up to date
  hearth apikey create --name NAME [--role ROLE] [--data DIR] [--db URL]
                                                                  print a new admin API key on stdout
  hearth config        [serve's flags]                            print the effective configuration
  hearth backup        --to DIR [--data DIR]                      copy the embedded store while it serves
  hearth bench ingest  --url URL (--write-key KEY | --api-key KEY) [--batch N] [--concurrency N] [--rate N] [--duration D]
                                                                  measure a running server's ingestion
  hearth bench touch   --url URL (--link URL | --api-key KEY) [--concurrency N] [--rate N] [--duration D]
                                                                  measure a running server's touch-link redirects
  hearth bench lookup  --url URL --api-key KEY --truth FILE [--types T,…] [--concurrency N] [--rate N] [--duration D]
                                                                  measure a running server's profile lookups with their timelines
  hearth bench segments --url URL --api-key KEY [--rule JSON] [--counts N] [--rate N] [--probes N] [--duration D]
                                                                  measure a running server's segments: evaluation, live counts, event to membership
  hearth demo          [--data DIR] [--db URL] [--people N] [--days D] [--seed S] [--truth FILE] [--force]
                                                                  fill a store with a retail brand's world and its ground truth
  hearth version                                                  print the version

Every flag can also be set in the environment: HEARTH_ADDR, HEARTH_DATA, HEARTH_DB, HEARTH_PUBLIC_URL,
HEARTH_LOG_FORMAT, HEARTH_LOG_LEVEL. HEARTH_ADMIN_EMAIL and HEARTH_ADMIN_PASSWORD create the first admin.
Run "hearth COMMAND -h" for a command's flags.
`

// Main runs the hearth command line and returns the process exit code: 0 on success, 1 on failure, 2 for a
// usage error.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = runServe(ctx, rest, getenv, stderr)
	case "migrate":
		err = runMigrate(ctx, rest, getenv, stderr)
	case "apikey":
		err = runAPIKey(ctx, rest, getenv, stdout, stderr)
	case "config":
		err = runConfig(rest, getenv, stdout, stderr)
	case "backup":
		err = runBackup(ctx, rest, getenv, stdout, stderr)
	case "bench":
		err = runBench(ctx, rest, stdout, stderr)
	case "demo":
		err = runDemo(ctx, rest, getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "hearth %s (%s, %s/%s)\n", hearth.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "hearth: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "hearth: %s\n", describe(err))
	return 1
}

// errUsage marks a command-line mistake whose message the flag package has already printed.
var errUsage = errors.New("usage")

// describe words an error for the terminal: the user-facing message, with the cause for operators.
func describe(err error) string {
	var he *hearth.Error
	if errors.As(err, &he) && he.Msg != "" {
		if he.Err != nil {
			return he.Msg + " (" + he.Err.Error() + ")"
		}
		return he.Msg
	}
	return err.Error()
}

// loadConfig builds the configuration of a command: defaults, then environment, then the command's flags.
func loadConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer, names ...string) (Config, *flag.FlagSet, error) {
	cfg := DefaultConfig()
	cfg.applyEnv(getenv)
	fs, apply := cfg.flagSet(cmd, stderr, names...)
	return cfg, fs, parse(fs, args, apply)
}

func parse(fs *flag.FlagSet, args []string, apply func()) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	apply()
	return nil
}

var serveSettings = []string{"addr", "data", "db", "public_url", "log.format", "log.level", "ingest.max_event", "ingest.max_request", "ingest.source_rate", "ingest.dedupe_window", "ingest.retention"}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// defaultProcs is the Go runtime's own GOMAXPROCS: the cores this process may use. serve runs twice as many
// Go processors unless GOMAXPROCS is set: a request woken by its commit then finds one free at once, and the
// kernel, rather than Go's scheduler, shares the cores between it and the background work that is running
// (the profile processor's batches, checkpoints), preempting that for it within a scheduler tick. On 2 cores:
// redirects at 2,000/s p99 3.9 against 4.7 ms (medians of 14 runs), single events and redirects flat out +10-20%,
// batched ingestion at 50,000 events/s p99 13-18 against 17-31 ms, for 5% less batched ingestion flat out
// (BENCHMARKS.md).
var defaultProcs = runtime.GOMAXPROCS(0)

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, _, err := loadConfig("serve", args, getenv, stderr, serveSettings...)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2 * defaultProcs)
	}
	a, err := New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if err := a.Start(ctx, stderr); err != nil {
		a.Shutdown(context.Background())
		return err
	}
	waitErr := a.Wait(ctx)
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return errors.Join(waitErr, a.Shutdown(shutdownCtx))
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, _, err := loadConfig("migrate", args, getenv, stderr, "data", "db")
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	db, n, err := openStore(ctx, cfg, hearth.SystemClock{}, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stderr, "%s database is up to date (%d migrations applied now)\n", db.Engine(), n)
	return nil
}

// runBackup copies the embedded store into a new folder while Hearth may go on serving; the folder is then a
// data folder of its own (README, Backups).
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	cfg.applyEnv(getenv)
	fs, apply := cfg.flagSet("backup", stderr, "data", "db")
	to := fs.String("to", "", "the folder to write the backup into: new, or empty (required)")
	if err := parse(fs, args, apply); err != nil {
		return err
	}
	if strings.TrimSpace(*to) == "" {
		fmt.Fprint(stderr, "hearth backup: --to is required\n")
		return errUsage
	}
	if cfg.DB != "" {
		return hearth.Errorf(hearth.Invalid, "app.backup", "hearth backup copies the embedded SQLite store; back PostgreSQL up with pg_dump or your provider's snapshots, and keep the master key (HEARTH_MASTER_KEY, or master.key in the data folder) with them")
	}
	start := time.Now()
	err := store.BackupSQLite(ctx, cfg.Data, *to, func(file string, written, size int64, done bool) {
		if done {
			fmt.Fprintf(stderr, "hearth backup: %s: %s written\n", file, megabytes(written))
			return
		}
		fmt.Fprintf(stderr, "hearth backup: %s: %s of about %s\n", file, megabytes(written), megabytes(size))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "hearth backup: %s is a copy of %s (%.1f s); serve it with --data to restore\n", *to, cfg.Data, time.Since(start).Seconds())
	return nil
}

// megabytes words a size for a progress line.
func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func runAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, "usage: hearth apikey create --name NAME [--role admin|marketer|analyst] [--data DIR] [--db URL]\n")
		return errUsage
	}
	cfg := DefaultConfig()
	cfg.applyEnv(getenv)
	fs, apply := cfg.flagSet("apikey create", stderr, "data", "db")
	name := fs.String("name", "", "what the key is for, such as \"CRM sync\" (required)")
	role := fs.String("role", string(hearth.RoleAdmin), "the key's role: admin, marketer or analyst")
	if err := parse(fs, args[1:], apply); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		fmt.Fprint(stderr, "hearth apikey create: --name is required\n")
		return errUsage
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	db, _, err := openStore(ctx, cfg, hearth.SystemClock{}, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	svc := auth.NewService(db, hearth.SystemClock{}, slog.New(slog.DiscardHandler), auth.Options{})
	key, _, err := svc.CreateAPIKey(ctx, *name, hearth.Role(*role))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	return nil
}

func runConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("config", args, getenv, stderr, serveSettings...)
	if err != nil {
		return err
	}
	cfg.Print(stdout)
	return cfg.Validate()
}
