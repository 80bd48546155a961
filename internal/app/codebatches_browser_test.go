package app

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// A marketer issues 50 numbered codes for business cards through the dialog on the touchpoint page: the
// batch shows its progress while the app's worker draws it, then a Download link to the ZIP, and the
// touchpoint counts 50 numbered codes. After a reload the batch is still there; once its ZIP has expired it
// is drawn again with a click. An analyst sees it without the buttons that issue more or draw again.
func TestBrowserCodeBatches(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	bg := context.Background()
	tp, err := s.app.touch.CreateTouchpoint(bg, touchpoint.Touchpoint{Name: "Sales rep cards", Channel: touchpoint.ChannelCard,
		DestinationURL: "https://shop.example/cards"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.auth.CreateUser(bg, auth.NewUser{Email: "analyst@example.com", Name: "Ana Lyst",
		Role: hearth.RoleAnalyst, Password: "a long analyst password"}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)

	signIn(t, ctx, s.base, "/touchpoints/"+tp.ID, "admin@example.com", "a long admin password", tid("touchpoint-title"))
	do(t, ctx, "no numbered codes yet", chromedp.WaitVisible(tid("batches-empty")))

	do(t, ctx, "open the dialog and say how many",
		chromedp.Click(tid("batch-open")),
		chromedp.WaitVisible(tid("batch-count")),
		chromedp.SendKeys(tid("batch-count"), "50"),
	)
	if hint := read(t, ctx, "serial range", chromedp.Text(tid("batch-range"))); hint != "They get the numbers 1 to 50." {
		t.Errorf("the dialog says %q about the numbers of 50 codes", hint)
	}
	do(t, ctx, "draw them as SVG, small, with high error correction",
		chromedp.Click(tid("batch-format-svg")),
		chromedp.Click(tid("batch-size-256")),
		chromedp.Click(tid("batch-level-Q")),
		chromedp.Click(tid("batch-submit")),
		chromedp.WaitNotVisible(tid("batch-dialog")),
		chromedp.WaitVisible(tid("batch-row")),
	)
	if label := read(t, ctx, "batch", chromedp.Text(tid("batch-row"))); !strings.Contains(label, "Nos. 1–50") || !strings.Contains(label, "SVG") {
		t.Errorf("the new batch reads %q, want Nos. 1–50 and SVG", label)
	}
	// The answer to the dialog is the batch waiting for the worker; the page asks about it once a second.
	do(t, ctx, "the batch is drawn, then offered to download",
		chromedp.WaitVisible(tid("batch-download")),
		chromedp.WaitNotPresent(tid("batch-progress")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="batch-row"][data-status="done"]`)),
	)
	if status := read(t, ctx, "status", chromedp.Text(tid("batch-status"))); status != "Ready" {
		t.Errorf("a drawn batch says %q, want Ready", status)
	}
	href := read(t, ctx, "download link", chromedp.Attributes(tid("batch-download")))["href"]
	if !regexp.MustCompile(`^/api/v1/code-batches/[^/]+/download$`).MatchString(href) {
		t.Errorf("download link %q, want /api/v1/code-batches/{id}/download", href)
	}
	got := read(t, ctx, "the download", chromedp.Evaluate[string](`fetch(document.querySelector('[data-testid="batch-download"]').href)
		.then(r => r.status + " " + r.headers.get("Content-Type") + " " + r.headers.get("Content-Disposition"))`, chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(got, "200 application/zip attachment;") {
		t.Errorf("following the download link: %q, want 200 application/zip attachment", got)
	}
	if n := read(t, ctx, "numbered codes", chromedp.Text(tid("touchpoint-serials"))); n != "50" {
		t.Errorf("after a batch of 50 the touchpoint has %q numbered codes", n)
	}

	do(t, ctx, "after a reload the batch is listed, done",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="batch-row"][data-status="done"]`)),
		chromedp.WaitVisible(tid("batch-download")),
	)

	// A month on, the retention job has deleted the ZIP; the batch is drawn again from its page.
	if n, err := s.app.db.ExpireCodeBatches(bg, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("expire the ZIP: %d, %v", n, err)
	}
	do(t, ctx, "the ZIP is gone",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="batch-row"][data-status="expired"]`)),
	)
	if status := read(t, ctx, "status", chromedp.Text(tid("batch-status"))); status != "ZIP deleted" {
		t.Errorf("an expired batch says %q, want ZIP deleted", status)
	}
	if n := count(t, ctx, `[data-testid="batch-download"]`); n != 0 {
		t.Error("an expired batch offers a download")
	}
	do(t, ctx, "draw it again",
		chromedp.Click(tid("batch-redraw")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="batch-row"][data-status="done"]`)),
		chromedp.WaitVisible(tid("batch-download")),
	)
	got = read(t, ctx, "the download drawn again", chromedp.Evaluate[string](`fetch(document.querySelector('[data-testid="batch-download"]').href)
		.then(r => r.status + " " + r.headers.get("Content-Type"))`, chromedp.EvalAwaitPromise))
	if got != "200 application/zip" {
		t.Errorf("following the download link drawn again: %q", got)
	}

	do(t, ctx, "sign out", chromedp.Click(tid("user-menu")), chromedp.WaitVisible(tid("sign-out")), chromedp.Click(tid("sign-out")),
		chromedp.WaitVisible(tid("login-form")))
	signIn(t, ctx, s.base, "/touchpoints/"+tp.ID, "analyst@example.com", "a long analyst password", tid("batch-row"))
	if n := count(t, ctx, `[data-testid="batch-open"]`); n != 0 {
		t.Error("an analyst sees the button that issues numbered codes")
	}
	if n := count(t, ctx, `[data-testid="batch-download"]`); n != 1 {
		t.Error("an analyst cannot download the codes")
	}
	if _, err := s.app.db.ExpireCodeBatches(bg, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "expired again", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-testid="batch-row"][data-status="expired"]`)))
	if n := count(t, ctx, `[data-testid="batch-redraw"]`); n != 0 {
		t.Error("an analyst sees the button that draws codes again")
	}
}
