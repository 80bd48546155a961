package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// A marketer is told when what the console shows is not complete yet. The home screen says the data is up to
// date; then a burst of 40,000 events arrives, and on the next screen a notice says the people are being
// updated, how many events are to go and how far it has come, until they are all read; then it says so (in
// Chinese, switched to meanwhile) and offers to show the screen again, which shows the people without the notice.
func TestBrowserProcessing(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	src, err := s.app.sources.Create(context.Background(), "Website", collect.KindWebsite)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	signIn(t, ctx, s.base, "/", "admin@example.com", "a long admin password", tid("system-processing"))
	do(t, ctx, "the home screen says all is up to date",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="system-processing"]').textContent.includes('Up to date')`))
	if n := count(t, ctx, `[data-testid="processing-banner"]`); n != 0 {
		t.Fatalf("a notice on a store that is up to date")
	}

	catchingUp := tid("processing-banner") + `[data-state="catching_up"]`
	caughtUp := tid("processing-banner") + `[data-state="up_to_date"]`
	sendBacklog(t, s.base, src.WriteKey, "burst", 40_000)
	do(t, ctx, "the next screen tells that the people are being updated",
		chromedp.Click(tid("nav-people")),
		chromedp.WaitVisible(chromedp.CSS(catchingUp)),
	)
	text := read(t, ctx, "the notice", chromedp.Text(chromedp.CSS(catchingUp)))
	for _, want := range []string{"Updating people", "events to go", "may not be complete"} {
		if !strings.Contains(text, want) {
			t.Errorf("the notice %q lacks %q", text, want)
		}
	}
	percent := read(t, ctx, "its progress", chromedp.Attributes(chromedp.CSS(catchingUp+` [role="progressbar"]`)))["aria-valuenow"]
	if percent == "" || percent == "100" {
		t.Errorf("the notice's progress is %q, want a share under 100", percent)
	}
	do(t, ctx, "in Chinese",
		chromedp.Click(tid("user-menu")),
		chromedp.WaitVisible(tid("lang-zh-CN")),
		chromedp.Click(tid("lang-zh-CN")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"]`)),
	)
	// Under the race detector the processor reads a few thousand events a second: wait for it.
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(waitCtx, chromedp.WaitVisible(chromedp.CSS(caughtUp))); err != nil {
		screenshot(t, ctx)
		t.Fatalf("the notice never said everything is up to date: %v", err)
	}
	if text := read(t, ctx, "the notice at the end", chromedp.Text(chromedp.CSS(caughtUp))); !strings.Contains(text, "所有数据都已是最新") ||
		!strings.Contains(text, "查看最新数据") {
		t.Errorf("the notice at the end says %q, want that everything is up to date, in Chinese", text)
	}
	do(t, ctx, "showing the screen again shows the people, without a notice",
		chromedp.Click(tid("processing-refresh")),
		chromedp.WaitVisible(tid("people-table")),
		chromedp.WaitNotPresent(tid("processing-banner")),
		chromedp.Click(tid("nav-home")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="system-processing"]').textContent.includes('已是最新')`),
	)

	// An event the processor set aside (as it does with one it fails on again and again) is told on the home
	// screen, with the reason where to look.
	head := caughtUpHead(t, s)
	if err := s.app.db.SetEventAside(context.Background(), profile.Consumer, head, head+1, "profile: store events 1 to 1: a fault"); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "the home screen tells of the event set aside",
		chromedp.Click(tid("nav-people")),
		chromedp.WaitVisible(tid("people-table")),
		chromedp.Click(tid("nav-home")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="system-set-aside"]')?.textContent.includes('已搁置事件：1')`),
	)
	if hint := read(t, ctx, "its hint", chromedp.Attributes(tid("system-set-aside")))["title"]; !strings.Contains(hint, "/api/v1/system/set-aside") {
		t.Errorf("the set-aside badge's hint %q does not say where to look", hint)
	}
}
