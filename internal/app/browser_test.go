package app

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

// browser starts headless Chromium for a test. Without Chromium the test is skipped, except under CI, where
// the console's browser tests must run.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("HEARTH_TEST_CHROMIUM")
	if path == "" {
		path, _ = exec.LookPath("chromium")
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("Chromium is missing: under CI the browser tests must run (use scripts/test)")
		}
		t.Skip("Chromium is missing; scripts/test installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// Less motion, as a person may ask for: nothing scrolls or slides under a click on a slow machine.
	reduce := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia,
			emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}})
		return err
	})
	if err := chromedp.Do(ctx, reduce); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser actions, and on failure saves a screenshot to look at.
func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(stepCtx, actions...); err != nil {
		screenshot(t, ctx)
		t.Fatalf("%s: %v", step, err)
	}
}

// read runs one browser action that gives a value.
func read[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		screenshot(t, ctx)
		t.Fatalf("read %s: %v", what, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	shotCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if png, err := chromedp.Run(shotCtx, chromedp.CaptureScreenshot()); err == nil {
		path := filepath.Join(os.TempDir(), "hearth-browser-"+strings.ReplaceAll(t.Name(), "/", "-")+".png")
		os.WriteFile(path, png, 0o644)
		t.Logf("screenshot: %s", path)
	}
}

func tid(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// startForBrowser starts the whole app on port 0 and returns its base URL and what it printed.
func startForBrowser(t *testing.T, cfg Config) (string, string) {
	t.Helper()
	s := startApp(t, cfg)
	return s.base, s.stderr
}

func browserConfig(t *testing.T, engine string) Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	if engine == "postgres" {
		cfg.DB = storetest.PostgresURL(t)
	}
	return cfg
}

// An admin signs in, creates a source and sees its write key, switches the console to Chinese (remembered
// after a reload), uses it at phone width, and signs out: on SQLite and on PostgreSQL.
func TestBrowserSignInAndCreateSource(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			cfg := browserConfig(t, engine)
			cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
			base, _ := startForBrowser(t, cfg)
			ctx := browser(t)

			do(t, ctx, "open the console",
				chromedp.Navigate(base+"/console/sources"),
				chromedp.WaitVisible(tid("login-form")),
			)
			do(t, ctx, "sign in",
				chromedp.SendKeys(tid("login-email"), "admin@example.com"),
				chromedp.SendKeys(tid("login-password"), "wrong password"),
				chromedp.Click(tid("login-submit")),
				chromedp.WaitVisible(tid("login-error")),
				chromedp.Clear(tid("login-password")),
				chromedp.SendKeys(tid("login-password"), "a long admin password"),
				chromedp.Click(tid("login-submit")),
				chromedp.WaitVisible(tid("create-source")), // back where we were going: sources
			)
			if url := read(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(url, "/console/sources") {
				t.Errorf("after sign-in at %s, want /console/sources", url)
			}

			do(t, ctx, "create a source",
				chromedp.Click(tid("create-source")),
				chromedp.WaitVisible(tid("source-name")),
				chromedp.SendKeys(tid("source-name"), "Flagship store kiosk"),
				chromedp.SetValue(tid("source-kind"), "offline"),
				chromedp.Click(tid("source-save")),
				chromedp.WaitVisible(tid("source-title")),
			)
			if key := read(t, ctx, "write key", chromedp.Value(tid("write-key"))); len(key) < 24 {
				t.Errorf("write key shown = %q", key)
			}
			do(t, ctx, "list sources",
				chromedp.Click(tid("nav-sources")),
				chromedp.WaitVisible(tid("sources-table")),
			)
			if rows := read(t, ctx, "sources", chromedp.Text(tid("sources-table"))); !strings.Contains(rows, "Flagship store kiosk") {
				t.Errorf("sources table lacks the new source: %q", rows)
			}

			do(t, ctx, "switch to Chinese and reload",
				chromedp.Click(tid("user-menu")),
				chromedp.WaitVisible(tid("lang-zh-CN")),
				chromedp.Click(tid("lang-zh-CN")),
				chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"]`)), // once its messages are loaded
				chromedp.Reload(),
				chromedp.WaitVisible(tid("sources-table")),
			)
			lang := read(t, ctx, "lang", chromedp.Evaluate[string](`document.documentElement.lang`))
			title := read(t, ctx, "title", chromedp.Text(chromedp.CSS("h1")))
			if lang != "zh-CN" || !regexp.MustCompile(`\p{Han}`).MatchString(title) {
				t.Errorf("after switching to Chinese and reloading: lang %q, title %q", lang, title)
			}

			do(t, ctx, "phone width",
				chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
				chromedp.Reload(),
				chromedp.WaitVisible(tid("nav-toggle")),
				chromedp.Tap(tid("nav-toggle")),
				chromedp.WaitVisible(tid("nav-home")),
				chromedp.Sleep(400*time.Millisecond), // let the drawer finish sliding in
				chromedp.Tap(tid("nav-home")),
				chromedp.WaitVisible(tid("home-title")),
				chromedp.EmulateViewport(1280, 800),
			)

			do(t, ctx, "sign out",
				chromedp.Reload(),
				chromedp.WaitVisible(tid("user-menu")),
				chromedp.Click(tid("user-menu")),
				chromedp.WaitVisible(tid("sign-out")),
				chromedp.Click(tid("sign-out")),
				chromedp.WaitVisible(tid("login-form")),
			)
		})
	}
}

// On a store without users, the setup link printed at start creates the first admin and signs them in.
func TestBrowserSetupLink(t *testing.T) {
	base, out := startForBrowser(t, browserConfig(t, "sqlite"))
	link := regexp.MustCompile(`http://\S+/console/setup\?token=\S+`).FindString(out)
	if !strings.HasPrefix(link, base+"/console/setup?token=") {
		t.Fatalf("no setup link to %s in %q", base, out)
	}
	ctx := browser(t)
	do(t, ctx, "create the first admin",
		chromedp.Navigate(link),
		chromedp.WaitVisible(tid("setup-form")),
		chromedp.SendKeys(tid("setup-name"), "Lin Wei"),
		chromedp.SendKeys(tid("setup-email"), "lin@example.com"),
		chromedp.SendKeys(tid("setup-password"), "a long admin password"),
		chromedp.SendKeys(tid("setup-confirm"), "a long admin password"),
		chromedp.Click(tid("setup-submit")),
		chromedp.WaitVisible(tid("home-title")),
	)
	do(t, ctx, "the link works once",
		chromedp.Navigate(link),
		chromedp.WaitVisible(tid("setup-invalid")),
	)
}

// Pages load when first opened: on a slow network a bar along the top shows that one is opening. A console
// left open across an upgrade asks for a page's script that the new build no longer has: it loads the new
// build at that page, once, and never reloads in a loop.
func TestBrowserPagesLoadWhenOpened(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	base, _ := startForBrowser(t, cfg)

	for _, tc := range []struct {
		name      string
		failFirst int           // requests for the Sources page's script that fail before one is let through
		hold      time.Duration // how long the network takes to answer for it
		wantPage  bool
		wantTries int
	}{
		{name: "a slow network", hold: 1500 * time.Millisecond, wantPage: true, wantTries: 1},
		{name: "the new build has it", failFirst: 1, wantPage: true, wantTries: 2},
		{name: "the new build lacks it too", failFirst: 1000, wantPage: false, wantTries: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t)
			signIn(t, ctx, base, "/", "admin@example.com", "a long admin password", tid("nav-sources"))

			var mu sync.Mutex
			tries := 0
			if err := chromedp.Listen(ctx, func(ev any) {
				paused, ok := ev.(*fetch.EventRequestPaused)
				if !ok {
					return
				}
				mu.Lock()
				tries++
				fail := tries <= tc.failFirst
				mu.Unlock()
				go func() { // a listener must not call the browser itself
					time.Sleep(tc.hold)
					if fail {
						chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: paused.RequestID, ErrorReason: network.ErrorReasonFailed})
					} else {
						chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: paused.RequestID})
					}
				}()
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{
				Patterns: []*fetch.RequestPattern{{URLPattern: "*/console/assets/SourcesView-*.js"}}}); err != nil {
				t.Fatal(err)
			}

			do(t, ctx, "open Sources", chromedp.Click(tid("nav-sources")))
			if tc.hold > 0 {
				do(t, ctx, "the page is opening", chromedp.WaitVisible(tid("page-loading")))
			}
			waitFor(t, "the page's script to be asked for", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return tries >= tc.wantTries
			})
			if tc.wantPage {
				do(t, ctx, "the Sources page", chromedp.WaitVisible(tid("create-source")), chromedp.WaitNotPresent(tid("page-loading")))
			}
			time.Sleep(time.Second) // long enough for a reload loop to show
			mu.Lock()
			got := tries
			mu.Unlock()
			if got != tc.wantTries {
				t.Errorf("the page's script was asked for %d times, want %d", got, tc.wantTries)
			}
			if url := read(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(url, "/console/sources") {
				t.Errorf("at %s, want /console/sources", url)
			}
		})
	}
}
