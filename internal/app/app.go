// Package app is the composition root: it opens the store, migrates, builds the services, starts the workers
// and the HTTP server, and shuts them down in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/console"
	"github.com/hearth-cdp/hearth/internal/httpapi"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// App is a running Hearth.
type App struct {
	cfg     Config
	logger  *slog.Logger
	clock   hearth.Clock
	db      *store.DB
	auth    *auth.Service
	sources *collect.Sources
	touch   *touchpoint.Service
	wechat  *touchpoint.WeChatAccounts
	master  touchpoint.MasterKey
	events  *store.EventWriter
	// writerLoad is how busy the event writer is: the profile processor gives way to it.
	writerLoad writerLoad
	http       *http.Server
	listener   net.Listener

	stopWorkers context.CancelFunc
	workers     sync.WaitGroup
	stopWriter  context.CancelFunc
	writerDone  chan struct{}
	serveErr    chan error
}

// openStore opens and migrates the store that cfg names; logger hears of long migrations.
func openStore(ctx context.Context, cfg Config, clock hearth.Clock, logger *slog.Logger) (*store.DB, int, error) {
	db, err := store.Open(ctx, store.Options{URL: cfg.DB, Dir: cfg.Data, Clock: clock, Log: logger})
	if err != nil {
		return nil, 0, err
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, 0, err
	}
	return db, n, nil
}

// New opens the store, migrates it and builds the services. It does not listen yet: call Start.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil { // also parses the typed settings
		return nil, err
	}
	clock := hearth.SystemClock{}
	db, applied, err := openStore(ctx, cfg, clock, logger)
	if err != nil {
		return nil, err
	}
	if applied > 0 {
		logger.Info("database migrated", "engine", db.Engine(), "applied", applied)
	}
	warnIfLogBehind(ctx, db, logger)
	master, err := loadMasterKey(cfg, db, logger)
	if err != nil {
		db.Close()
		return nil, err
	}
	a := &App{
		cfg: cfg, logger: logger, clock: clock, db: db, master: master,
		auth:    auth.NewService(db, clock, logger.With("component", "auth"), auth.Options{}),
		sources: collect.NewSources(db, clock),
	}
	return a, nil
}

// warnIfLogBehind warns when the event log ends before what the profile processor has read: the log is not the
// one it read (on SQLite, events.db replaced, or restored from an older backup than hearth.db). The events
// appended next would take positions it has already passed, and would be processed only once the log passes
// its offset.
func warnIfLogBehind(ctx context.Context, db *store.DB, logger *slog.Logger) {
	head, err := db.LogHead(ctx)
	if err != nil {
		return // the start fails on it soon enough
	}
	if read, err := db.ConsumerOffset(ctx, profile.Consumer); err == nil && read > head {
		logger.Warn("the event log ends before what the profile processor has read: new events will not be processed until the log passes that point; restore the database's files from one backup",
			"log_head", head, "processor_offset", read)
	}
}

// loadMasterKey reads the master key from the configuration, or else from the data folder (making it there
// at first start).
func loadMasterKey(cfg Config, db *store.DB, logger *slog.Logger) (touchpoint.MasterKey, error) {
	if cfg.MasterKey != "" {
		return touchpoint.ParseMasterKey(cfg.MasterKey)
	}
	key, created, err := touchpoint.LoadMasterKey(cfg.Data)
	if err != nil {
		return key, err
	}
	if created {
		logger.Info("master key created: back it up with the database", "file", filepath.Join(cfg.Data, touchpoint.MasterKeyFile))
	}
	if db.Engine() == store.Postgres {
		// Every node must seal and open with the same key; a file in one node's data folder is not shared.
		logger.Warn("the master key comes from the data folder: with several nodes on one database, set HEARTH_MASTER_KEY on each instead")
	}
	return key, nil
}

// Start creates the first admin or prints the setup link, listens, and serves in the background.
func (a *App) Start(ctx context.Context, stderr io.Writer) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return &hearth.Error{Kind: hearth.Unavailable, Op: "app.listen", Msg: fmt.Sprintf("Cannot listen on %s: %v.", a.cfg.Addr, err), Err: err}
	}
	a.listener = ln
	if err := a.firstStart(ctx, stderr); err != nil {
		ln.Close()
		return err
	}
	// Built once listening, so that links name the port really listened on (port 0 picks one).
	a.touch = touchpoint.NewService(a.db, a.master, a.clock, touchpoint.Options{PublicURL: a.baseURL(), CodeBatchRetention: a.cfg.CodeBatchKeep})
	a.wechat = touchpoint.NewWeChatAccounts(a.db, a.touch, newWeChatPlatform(), wechatSources{a.sources}, touchpoint.WeChatOptions{})
	if err := a.touch.LoadKeys(ctx); err != nil {
		ln.Close()
		return err
	}
	if _, err := a.sources.EnsureTouchSource(ctx); err != nil {
		ln.Close()
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bots, err := collect.NewBotDetector()
	if err != nil {
		ln.Close()
		return err
	}
	logMetrics := newLogMetrics(reg)
	logGrew := make(chan struct{}, 1) // the profile processor waits on it
	a.events = store.NewEventWriter(a.db, store.EventWriterOptions{DedupeWindow: a.cfg.Ingest.Dedupe,
		Observe: func(requests, events int, t store.WriteTimes) {
			a.writerLoad.add(t.Held)
			logMetrics(requests, events, t)
			select {
			case logGrew <- struct{}{}:
			default:
			}
		}})
	reg.MustRegister(newConsumerLag(a.db, profile.Consumer, segment.Consumer, touchpoint.StatsConsumer, touchpoint.HoursConsumer))
	reg.MustRegister(newSourceCounts(a.db))
	if a.db.Engine() == store.SQLite {
		reg.MustRegister(newSQLiteFiles(a.cfg.Data))
		if store.SeparatePageCaches {
			newPageCacheMetrics(reg)
		}
	}
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	a.stopWriter, a.writerDone = stopWriter, make(chan struct{})
	go func() {
		defer close(a.writerDone)
		if err := a.events.Run(writerCtx); err != nil {
			if writerCtx.Err() != nil { // stopping: only the next start is slower
				a.logger.Warn("event writer stopped", "err", err)
				return
			}
			a.logger.Error("event writer stopped: ingestion answers 503 until restart", "err", err)
		}
	}()
	ingest := collect.NewIngest(a.sources, a.events, a.clock, bots, collect.IngestOptions{
		MaxEventBytes: a.cfg.Ingest.MaxEventBytes, MaxRequestBytes: a.cfg.Ingest.MaxRequestBytes, SourceRate: a.cfg.Ingest.SourceRateLimit,
		PublicURL: a.baseURL(),
	}, func(r *http.Request, err error) {
		a.logger.ErrorContext(r.Context(), "ingest failed", "route", r.Pattern, "err", err)
	})
	segments := segment.NewEngine(a.db, a.clock, segment.Options{Logger: a.logger.With("component", "segments")})
	configs := profile.NewConfigs(a.db)
	processing := newProcessing(a.db, a.clock)
	offline := collect.NewOfflineTouches(touchResolver{a.touch}, touchIssuer{a.touch}, a.events, a.clock, collect.OfflineOptions{})
	srv := httpapi.New(httpapi.Options{
		Auth: a.auth, Sources: a.sources, Events: a.db, Pinger: a.db, Touchpoints: a.touch, WeChat: a.wechat, Offline: offline,
		Profiles: a.db, Unmerges: a.db, ProfileConfigs: configs,
		Segments: segment.NewService(a.db, a.clock, segments, func(ctx context.Context) (identity.Rules, error) {
			c, err := configs.Get(ctx)
			return c.Identity, err
		}), SegmentData: a.db,
		Logger: a.logger, Metrics: httpapi.NewMetrics(reg), Gatherer: reg,
		Console:           console.Handler(),
		SecureCookies:     strings.HasPrefix(a.cfg.PublicURL, "https://"),
		DefaultSourceRate: a.cfg.Ingest.SourceRateLimit,
		System:            httpapi.System{Version: hearth.Version, Engine: string(a.db.Engine()), StartedAt: a.clock.Now()},
		Processing:        processing,
	})
	srv.Handle("GET /hearth.js", collect.SnippetHandler())
	for pattern, h := range collect.AnalyticsJSRoutes() {
		srv.Handle(pattern, h)
	}
	srv.Handle("GET /t/{token}", collect.NewTouchHandler(touchResolver{a.touch}, a.events, bots, a.clock, collect.TouchOptions{
		CookieDomain: a.cfg.TouchCookieDomain, SecureCookie: strings.HasPrefix(a.cfg.PublicURL, "https://"),
		Observe: newTouchMetrics(reg),
	}, func(r *http.Request, err error) {
		a.logger.ErrorContext(r.Context(), "touch failed", "err", err)
	}))
	for pattern, h := range ingest.Routes() {
		srv.Handle(pattern, h)
	}
	for pattern, h := range collect.NewWeChatHandler(wechatEndpoints{a.wechat, a.sources}, touchResolver{a.touch}, a.events, a.clock, a.logger, collect.WeChatOptions{}).Routes() {
		srv.Handle(pattern, h)
	}
	a.http = &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	a.serveErr = make(chan error, 1)
	go func() { a.serveErr <- a.http.Serve(ln) }()

	workerCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopWorkers = cancel
	a.work(workerCtx, 10*time.Minute, "sweep", a.auth.Sweep)
	a.work(workerCtx, time.Hour, "retention", a.applyRetention)
	a.work(workerCtx, processingEvery, "processing", processing.sample)
	a.work(workerCtx, time.Second, "touch_stats", func(ctx context.Context) error {
		_, err := a.touch.CountTouches(ctx, a.db, a.db)
		return err
	})
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		a.every(workerCtx, throttledFlushEvery, "throttled_counts", ingest.FlushThrottled)
		// The workers stop after the HTTP server: the last counts are all in.
		if err := ingest.FlushThrottled(context.Background()); err != nil {
			a.logger.Warn("storing the last throttled counts failed", "err", err)
		}
	}()
	a.work(workerCtx, time.Second, "code_batches", func(ctx context.Context) error {
		_, err := a.touch.RunCodeBatches(ctx)
		return err
	})
	// Reading the next batch ahead takes the other core for a while, and costs more than reading on the
	// writer: a reader's page cache is discarded by every commit, so each lookup reads every page on its way
	// down from the file, where the writer's cache holds the inner pages (store.WarmCache). Worth it for a
	// backlog or a replay, with the writer quiet; not while events arrive, when ingestion and the segment
	// engine need the cores (at 5,000 events/s in the first run after a start, pprof: the read-ahead 60% of
	// the processor's time, the lag to 7,000 events).
	profiles := profile.NewProcessor(a.db, profile.Options{Logger: a.logger.With("component", "profiles"),
		ReadAhead: func() bool { return a.writerLoad.utilization() <= 0.1 }})
	// The processor starts as soon as events arrive, then lets them gather for a while: segment memberships
	// follow within a second, and its batches stay large enough to cost little per event.
	a.workers.Add(1)
	go func() { // beside the processor's first batches: see store.WarmCache
		defer a.workers.Done()
		pages, took, err := a.db.WarmCache(workerCtx)
		switch {
		case err != nil && workerCtx.Err() == nil:
			a.logger.Warn("warming the page cache failed", "err", err)
		case pages > 0:
			a.logger.Info("page cache warmed", "pages", pages, "took", took.Round(time.Millisecond))
		}
	}()
	a.workOn(workerCtx, logGrew, 100*time.Millisecond, time.Second, "profiles", func(ctx context.Context) error {
		behind := false
		for { // to the end of the log, a batch at a time
			// Ingestion comes first: it shares the cores and the disk with the processor (on SQLite no longer
			// the writer: the event log has its own). While events arrive, batches are of up to 1,000 events:
			// smaller ones cost more per event, and with visitors coming back the processor then fell behind
			// 5,000 events/s (batches of 250: memberships p99 3.4-5.7 s on a third run, 1,000: 0.8-0.9 s).
			// With the writer quiet, a log far ahead is read in the largest batches.
			load := a.writerLoad.utilization()
			limit := 1000
			if load <= 0.1 && behind {
				limit = profile.CatchUpBatch
			}
			start := time.Now()
			n, err := profiles.ProcessUpTo(ctx, limit)
			if err != nil || n == 0 {
				return err
			}
			behind = n == limit
			segments.Wake()
			took := time.Since(start)
			farBehind := behind && load > 0.3 && a.profilesLag(ctx) > profilesFarBehind
			if rest := profilesRest(load, farBehind, took); rest > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(rest):
				}
			}
		}
	})
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		segments.Run(workerCtx)
	}()
	a.logger.Info("serving", "addr", ln.Addr().String(), "engine", a.db.Engine(), "console", a.baseURL()+"/console/")
	return nil
}

// throttledFlushEvery is how often the counts of events refused for their source's rate are stored: one
// small write then, rather than one for each refused request while a source floods.
const throttledFlushEvery = 2 * time.Second

// rejectedRetention is how long refused events are kept for the debugger.
const rejectedRetention = 7 * 24 * time.Hour

// applyRetention deletes events older than the configured retention, old refused events, and the ZIPs of
// old code batches.
func (a *App) applyRetention(ctx context.Context) error {
	now := a.clock.Now()
	cutoff := time.Time{} // keep every event
	if a.cfg.Ingest.RetentionPeriod > 0 {
		cutoff = now.Add(-a.cfg.Ingest.RetentionPeriod)
	}
	n, err := a.db.DeleteEventsBefore(ctx, cutoff, now.Add(-rejectedRetention))
	if n > 0 {
		a.logger.Info("event retention applied", "deleted", n)
	}
	zips, zipErr := a.touch.ExpireCodeBatches(ctx)
	if zips > 0 {
		a.logger.Info("code batch retention applied", "zips_deleted", zips)
	}
	return errors.Join(err, zipErr)
}

// profilesFarBehind is how many events the profile processor may be behind the log before it gives way to
// ingestion in earnest: 4 s at 5,000 events/s, under half a second at 50,000.
const profilesFarBehind = 20_000

// profilesRest is how long the profile processor rests after a batch that took took, with the event writer
// busy load of the time (0 to 1). Close behind the log, it rests from 40% busy, up to 6x the batch's time at
// full load: its next batch is larger, so cheaper per event, and memberships still follow within a second. Far
// behind (more than profilesFarBehind), it cannot keep up with the events arriving anyway: it rests from 30%
// busy, up to 21x at full load, and catches up when the load falls. Sharing the two cores with it, ingestion
// at 50,000 events/s had a p99 of 47-77 ms; resting so when far behind, 42-58 ms; without the processor,
// 29-34 ms (BENCHMARKS.md).
func profilesRest(load float64, farBehind bool, took time.Duration) time.Duration {
	share := 10 * (load - 0.4)
	if farBehind {
		share = 30 * (load - 0.3)
	}
	return time.Duration(max(0, share) * float64(took))
}

// profilesLag is how many events the profile processor has yet to read; 0 if that cannot be read.
func (a *App) profilesLag(ctx context.Context) int64 {
	head, err := a.db.LogHead(ctx)
	if err != nil {
		return 0
	}
	at, err := a.db.ConsumerOffset(ctx, profile.Consumer)
	if err != nil {
		return 0
	}
	return head - at
}

// work runs fn every interval in a worker that Shutdown stops and waits for.
func (a *App) work(ctx context.Context, interval time.Duration, name string, fn func(context.Context) error) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		a.every(ctx, interval, name, fn)
	}()
}

// workOn runs fn in a worker when woken, at most every gap and at least every interval, until ctx ends.
func (a *App) workOn(ctx context.Context, wake <-chan struct{}, gap, interval time.Duration, name string, fn func(context.Context) error) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		t := time.NewTimer(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-t.C:
			}
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				a.logger.Error("periodic task failed", "task", name, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(gap):
			}
			t.Reset(interval)
		}
	}()
}

// every runs fn every interval until ctx ends, logging failures.
func (a *App) every(ctx context.Context, interval time.Duration, name string, fn func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				a.logger.Error("periodic task failed", "task", name, "err", err)
			}
		}
	}
}

// firstStart creates the first admin from the configuration, or prints a one-time setup link, when the store
// has no user yet.
func (a *App) firstStart(ctx context.Context, stderr io.Writer) error {
	if a.cfg.Admin.Email != "" {
		created, err := a.auth.EnsureAdmin(ctx, a.cfg.Admin.Email, a.cfg.Admin.Password)
		if err != nil {
			return fmt.Errorf("app: create the first admin: %w", err)
		}
		if created {
			a.logger.Info("first admin created from HEARTH_ADMIN_EMAIL")
		}
		return nil
	}
	empty, err := a.auth.NeedsSetup(ctx)
	if err != nil || !empty {
		return err
	}
	token, err := a.auth.NewSetupToken(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\n  Hearth has no admin yet. Open this one-time link to create one (valid 24 hours):\n\n    %s/console/setup?token=%s\n\n", a.baseURL(), token)
	return nil
}

// baseURL is the URL people reach this server at: the configured public URL, or else the address it listens
// on (whose port is the real one when the configured port is 0).
func (a *App) baseURL() string {
	if a.cfg.PublicURL != "" || a.listener == nil {
		return a.cfg.BaseURL()
	}
	c := a.cfg
	_, port, _ := net.SplitHostPort(a.listener.Addr().String())
	host, _, _ := net.SplitHostPort(c.Addr)
	c.Addr = net.JoinHostPort(host, port)
	return c.BaseURL()
}

// Addr is the address the server listens on (useful with port 0).
func (a *App) Addr() string { return a.listener.Addr().String() }

// Wait blocks until ctx ends or the server fails.
func (a *App) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-a.serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("app: serve: %w", err)
	}
}

// Shutdown stops accepting connections, lets requests in flight finish (until ctx ends), stops the workers and
// closes the store.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	if a.http != nil {
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("app: drain http: %w", err))
		}
	}
	// The event writer stops after the HTTP server: requests in flight wait for their appends.
	if a.stopWriter != nil {
		a.stopWriter()
		select {
		case <-a.writerDone:
		case <-ctx.Done():
			// A write stuck in the database must not make the server impossible to stop; an unfinished
			// append was never acknowledged, so nothing acknowledged is lost.
			errs = append(errs, fmt.Errorf("app: the event writer did not stop in time: %w", ctx.Err()))
		}
	}
	if a.stopWorkers != nil {
		a.stopWorkers()
		a.workers.Wait()
	}
	if err := a.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("app: close store: %w", err))
	}
	return errors.Join(errs...)
}
