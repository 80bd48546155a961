package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/demo"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// runDemo fills a store with a retail brand's world (hearth demo) and writes its ground truth.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	cfg.applyEnv(getenv)
	fs, apply := cfg.flagSet("demo", stderr, "data", "db", "public_url")
	people := fs.Int("people", 2000, "how many people")
	days := fs.Int("days", 90, "how many days back their stories start")
	seed := fs.Uint64("seed", 1, "the same seed makes the same people and stories")
	truthPath := fs.String("truth", "", "where to write the ground truth, JSON (default DATA/demo-truth.json, or demo-truth.json with --db)")
	force := fs.Bool("force", false, "add to a store that already holds events")
	if err := parse(fs, args, apply); err != nil {
		return err
	}
	if *people < 1 || *days < 1 {
		fmt.Fprint(stderr, "hearth demo: --people and --days must be at least 1\n")
		return errUsage
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	clock := hearth.SystemClock{}
	db, _, err := openStore(ctx, cfg, clock, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	head, err := db.LogHead(ctx)
	if err != nil {
		return err
	}
	if head > 0 && !*force {
		return hearth.Errorf(hearth.Conflict, "app.demo", "This store already holds events (%d): the demo fills an empty one. Add --force to add to it anyway.", head)
	}
	logger := newLogger(cfg, stderr)
	master, err := loadMasterKey(cfg, db, logger)
	if err != nil {
		return err
	}
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + cfg.Addr
	}
	touch := touchpoint.NewService(db, master, clock, touchpoint.Options{PublicURL: publicURL})
	if err := touch.LoadKeys(ctx); err != nil {
		return err
	}

	if *truthPath == "" {
		*truthPath = "demo-truth.json"
		if cfg.DB == "" {
			*truthPath = filepath.Join(cfg.Data, "demo-truth.json")
		}
	}
	f, err := os.Create(*truthPath)
	if err != nil {
		return &hearth.Error{Kind: hearth.Invalid, Op: "app.demo", Msg: fmt.Sprintf("Cannot write the truth file %s.", *truthPath), Err: err}
	}
	defer f.Close()

	events := store.NewEventWriter(db, store.EventWriterOptions{DedupeWindow: cfg.Ingest.Dedupe})
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	writerDone := make(chan error, 1)
	go func() { writerDone <- events.Run(writerCtx) }()

	fmt.Fprintf(stderr, "hearth demo: %d people over %d days (seed %d) into the %s store\n", *people, *days, *seed, db.Engine())
	last := time.Now() // the first line after a second: a small world needs none
	sum, runErr := demo.Run(ctx, demo.Services{
		Sources: collect.NewSources(db, clock), Touchpoints: touch, Resolver: touchResolver{touch}, Log: events,
		ProfileSettings: func(ctx context.Context, config []byte) error {
			if stored, err := db.Setting(ctx, profile.ConfigSetting); err != nil || stored != nil {
				return err // an admin's settings stay
			}
			_, err := profile.NewConfigs(db).Put(ctx, config, "hearth demo")
			return err
		},
	}, demo.Options{People: *people, Days: *days, Seed: *seed, Now: clock.Now(), Progress: func(s demo.Summary) {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		// People are made a part ahead of their events' appending: say so, or the two counts look at odds.
		fmt.Fprintf(stderr, "  %d people made, %d events appended, %.0f events/s\n", s.People, s.Events, rate(s.Events, s.Elapsed))
	}}, f)
	stopWriter()
	runErr = errors.Join(runErr, <-writerDone, f.Close())
	if runErr != nil {
		return runErr
	}
	fmt.Fprintf(stderr, "hearth demo: done in %s: %d sources, %d campaigns, %d touchpoints; %d people (%d identified), %d events (%d touches, %d orders, ¥%d), %.0f events/s\n",
		sum.Elapsed.Round(time.Millisecond), sum.Sources, sum.Campaigns, sum.Touchpoints, sum.People, sum.Identified, sum.Events, sum.Touches, sum.Orders, sum.Revenue, rate(sum.Events, sum.Elapsed))
	fmt.Fprintf(stderr, "hearth demo: ground truth in %s\n", *truthPath)
	return nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
