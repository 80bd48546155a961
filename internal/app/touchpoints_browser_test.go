package app

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
)

// signIn signs in from the sign-in page that opening path leads to, and waits for ready on the page.
func signIn(t *testing.T, ctx context.Context, base, path, email, password string, ready chromedp.CSS) {
	t.Helper()
	do(t, ctx, "sign in as "+email,
		chromedp.Navigate(base+"/console"+path),
		chromedp.WaitVisible(tid("login-form")),
		chromedp.SendKeys(tid("login-email"), email),
		chromedp.SendKeys(tid("login-password"), password),
		chromedp.Click(tid("login-submit")),
		chromedp.WaitVisible(ready),
	)
}

// count is how many elements match a CSS selector now.
func count(t *testing.T, ctx context.Context, selector string) int {
	t.Helper()
	return read(t, ctx, selector, chromedp.Evaluate[int](`document.querySelectorAll(`+"`"+selector+"`"+`).length`))
}

// A marketer's way through issuing a code: create a campaign, open its page, create a touchpoint in it from
// there through the dialog, and on its page find the touch link, nobody reached yet, and a QR code that redraws
// with other options; the campaign link leads back to the campaign, which lists it; pause the touchpoint;
// rotate the signing key; read it all in Chinese. An analyst sees the same screens without any of the buttons
// that change something.
func TestBrowserTouchpoints(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	base := s.base
	if _, err := s.app.auth.CreateUser(context.Background(), auth.NewUser{Email: "analyst@example.com", Name: "Ana Lyst",
		Role: hearth.RoleAnalyst, Password: "a long analyst password"}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)

	signIn(t, ctx, base, "/campaigns", "admin@example.com", "a long admin password", tid("campaigns-empty"))
	campaignRow := chromedp.CSS(`[data-testid="campaign-row"][data-campaign-name="Spring launch"]`)
	do(t, ctx, "create a campaign",
		chromedp.Click(tid("create-campaign")),
		chromedp.WaitVisible(tid("campaign-name")),
		chromedp.SendKeys(tid("campaign-name"), "Spring launch"),
		chromedp.SendKeys(tid("campaign-goal"), "2,000 new members"),
		chromedp.Click(tid("campaign-save")),
		chromedp.WaitVisible(campaignRow),
	)
	campaignID := read(t, ctx, "campaign id", chromedp.Attributes(campaignRow))["data-campaign-id"]
	if status := read(t, ctx, "campaign status", chromedp.Text(tid("campaign-status"))); status != "Active" {
		t.Errorf("a new campaign without dates is %q, want Active", status)
	}

	do(t, ctx, "open the campaign: no touchpoints yet, and a way to make one",
		chromedp.Click(tid("campaign-link")),
		chromedp.WaitVisible(tid("campaign-title")),
		chromedp.WaitVisible(tid("campaign-touchpoints-empty")),
	)
	if title := read(t, ctx, "campaign title", chromedp.Text(tid("campaign-title"))); title != "Spring launch" {
		t.Errorf("the campaign page is titled %q", title)
	}
	if url := read(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(url, "/console/campaigns/"+campaignID) {
		t.Errorf("the campaign's name opened %s, want its page", url)
	}
	do(t, ctx, "create a touchpoint from the campaign's page",
		chromedp.Click(tid("campaign-new-touchpoint")),
		chromedp.WaitVisible(tid("touchpoint-name")),
	)
	if picked := read(t, ctx, "campaign in the dialog", chromedp.Value(tid("touchpoint-campaign"))); picked != campaignID {
		t.Errorf("the dialog opened from the campaign has campaign %q, want %q", picked, campaignID)
	}
	do(t, ctx, "fill in and save the touchpoint",
		chromedp.SendKeys(tid("touchpoint-name"), "Jing'an window poster"),
		chromedp.Click(chromedp.CSS(`[data-testid="channel-option"][data-channel="store"]`)),
		chromedp.SendKeys(tid("touchpoint-destination"), "https://shop.example/spring"),
		chromedp.SendKeys(tid("touchpoint-location"), "Shanghai, Jing'an store"),
		chromedp.SendKeys(tid("touchpoint-owner"), "Store 12"),
		chromedp.Click(tid("touchpoint-save")),
		chromedp.WaitVisible(tid("touchpoint-title")),
	)
	if title := read(t, ctx, "title", chromedp.Text(tid("touchpoint-title"))); title != "Jing'an window poster" {
		t.Errorf("touchpoint page title %q", title)
	}
	if campaign := read(t, ctx, "campaign link", chromedp.Text(tid("touchpoint-campaign-link"))); campaign != "Spring launch" {
		t.Errorf("touchpoint page names campaign %q, want Spring launch", campaign)
	}
	do(t, ctx, "nobody reached yet", chromedp.WaitVisible(tid("people-reached-empty")))
	touchpointURL := read(t, ctx, "location", chromedp.Location())
	do(t, ctx, "the campaign link opens the campaign, which lists the touchpoint",
		chromedp.Click(tid("touchpoint-campaign-link")),
		chromedp.WaitVisible(tid("campaign-title")),
		chromedp.WaitVisible(tid("campaign-touchpoint-link")),
	)
	if listed := read(t, ctx, "campaign's touchpoints", chromedp.Text(tid("campaign-touchpoints"))); !strings.Contains(listed, "Jing'an window poster") {
		t.Errorf("the campaign's touchpoints card says %q", listed)
	}
	do(t, ctx, "back to the touchpoint from the campaign",
		chromedp.Click(tid("campaign-touchpoint-link")),
		chromedp.WaitVisible(tid("touch-link")),
	)
	if url := read(t, ctx, "location", chromedp.Location()); url != touchpointURL {
		t.Errorf("the campaign's touchpoint link opened %s, want %s", url, touchpointURL)
	}

	link := read(t, ctx, "touch link", chromedp.Value(tid("touch-link")))
	if !regexp.MustCompile(`^https?://[^/]+/t/[A-Za-z0-9._~-]{8,}$`).MatchString(link) {
		t.Errorf("touch link shown = %q, want …/t/{token}", link)
	}
	qrLoaded := func(width int) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`(() => { const img = document.querySelector('[data-testid="qr-preview"]');
			return img.complete && img.naturalWidth === ` + strconv.Itoa(width) + ` })()`)
	}
	do(t, ctx, "the QR preview loads", qrLoaded(512))
	do(t, ctx, "a larger QR code", chromedp.Click(tid("qr-size-1024")), qrLoaded(1024))
	src := read(t, ctx, "QR preview address", chromedp.Attributes(tid("qr-preview")))["src"]
	png := read(t, ctx, "PNG download", chromedp.Attributes(tid("qr-download-png")))["href"]
	if !strings.Contains(src, "size=1024") || !strings.Contains(png, "/qr.png?") || !strings.Contains(png, "size=1024") || !strings.Contains(png, "download=1") {
		t.Errorf("after choosing 1024 px: preview %q, PNG download %q", src, png)
	}
	do(t, ctx, "a QR code without a margin", chromedp.Click(tid("qr-margin--1")), qrLoaded(1024))
	if src := read(t, ctx, "QR preview address", chromedp.Attributes(tid("qr-preview")))["src"]; !strings.Contains(src, "margin=0") {
		t.Errorf("without a margin, the preview is %q, want margin=0", src)
	}

	do(t, ctx, "pause the touchpoint",
		chromedp.Click(tid("touchpoint-pause")),
		chromedp.WaitVisible(tid("confirm-ok")),
		chromedp.Click(tid("confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="touchpoint-status"][data-status="paused"]`)),
		chromedp.WaitVisible(tid("touchpoint-resume")),
	)
	if status := read(t, ctx, "status", chromedp.Text(tid("touchpoint-status"))); status != "Paused" {
		t.Errorf("after pausing, the status says %q", status)
	}
	do(t, ctx, "the list shows it paused",
		chromedp.Click(tid("nav-touchpoints")),
		chromedp.WaitVisible(tid("touchpoints-table")),
	)
	if status := read(t, ctx, "status in the list", chromedp.Text(tid("touchpoint-row-status"))); status != "Paused" {
		t.Errorf("touchpoints list: status %q, want Paused", status)
	}

	do(t, ctx, "rotate the signing key",
		chromedp.Click(tid("nav-signing-keys")),
		chromedp.WaitVisible(tid("signing-keys-table")),
		chromedp.Click(tid("rotate-signing-key")),
		chromedp.WaitVisible(tid("confirm-ok")),
		chromedp.Click(tid("confirm-ok")),
		chromedp.WaitVisible(tid("signing-key-retire")), // the old key may be retired now
	)
	if n := count(t, ctx, `[data-testid="signing-key-row"]`); n != 2 {
		t.Errorf("after a rotation, %d keys listed, want 2", n)
	}
	if n := count(t, ctx, `[data-testid="signing-key-row"][data-signing="true"]`); n != 1 {
		t.Errorf("%d keys sign, want 1", n)
	}

	do(t, ctx, "switch to Chinese",
		chromedp.Click(tid("nav-campaigns")),
		chromedp.WaitVisible(tid("campaigns-table")),
		chromedp.Click(tid("user-menu")),
		chromedp.WaitVisible(tid("lang-zh-CN")),
		chromedp.Click(tid("lang-zh-CN")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"]`)), // once its messages are loaded
	)
	if h := read(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1"))); h != "活动" {
		t.Errorf("the campaigns page in Chinese is headed %q, want 活动", h)
	}
	if nav := read(t, ctx, "nav", chromedp.Text(tid("nav-touchpoints"))); nav != "触点" {
		t.Errorf("the touchpoints nav entry in Chinese is %q, want 触点", nav)
	}

	do(t, ctx, "sign out",
		chromedp.Click(tid("sign-out")),
		chromedp.WaitVisible(tid("login-form")),
	)
	signIn(t, ctx, base, "/touchpoints", "analyst@example.com", "a long analyst password", tid("touchpoints-table"))
	do(t, ctx, "an analyst opens the touchpoint",
		chromedp.Click(tid("touchpoint-link")),
		chromedp.WaitVisible(tid("touchpoint-title")),
		chromedp.WaitVisible(tid("qr-preview")),
		chromedp.WaitVisible(tid("touch-link")),
	)
	do(t, ctx, "an analyst sees who it reached", chromedp.WaitVisible(tid("people-reached-empty")))
	for _, id := range []string{"touchpoint-edit", "touchpoint-pause", "touchpoint-resume", "expiring-link", "revoke-open", "nav-signing-keys", "people-reached-segment"} {
		if n := count(t, ctx, `[data-testid="`+id+`"]`); n != 0 {
			t.Errorf("an analyst sees %s on the touchpoint page", id)
		}
	}
	do(t, ctx, "an analyst opens the campaigns",
		chromedp.Click(tid("nav-campaigns")),
		chromedp.WaitVisible(tid("campaigns-table")),
	)
	for _, id := range []string{"create-campaign", "campaign-edit", "campaign-pause"} {
		if n := count(t, ctx, `[data-testid="`+id+`"]`); n != 0 {
			t.Errorf("an analyst sees %s on the campaigns page", id)
		}
	}
	do(t, ctx, "an analyst opens the campaign",
		chromedp.Click(tid("campaign-link")),
		chromedp.WaitVisible(tid("campaign-title")),
		chromedp.WaitVisible(tid("campaign-touchpoint-link")),
		chromedp.WaitVisible(tid("people-reached-empty")),
	)
	for _, id := range []string{"campaign-edit", "campaign-pause", "campaign-resume", "people-reached-segment"} {
		if n := count(t, ctx, `[data-testid="`+id+`"]`); n != 0 {
			t.Errorf("an analyst sees %s on the campaign's page", id)
		}
	}
	do(t, ctx, "an analyst opens the touchpoints", chromedp.Click(tid("nav-touchpoints")), chromedp.WaitVisible(tid("touchpoints-table")))
	if n := count(t, ctx, `[data-testid="create-touchpoint"]`); n != 0 {
		t.Error("an analyst sees the button to create a touchpoint")
	}
}
