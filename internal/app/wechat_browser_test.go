package app

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
	"github.com/hearth-cdp/hearth/internal/wechat/wechattest"
)

// A marketer connects a WeChat official account through the dialog under Settings: secrets typed once,
// then the callback URL and the token to paste into WeChat's console, with the steps. WeChat's check of that
// URL with that token passes. On a touchpoint's page the marketer makes a permanent WeChat QR code (warned of
// the 100,000 limit) and a temporary one for 7 days, and sees both with their expiry; asking for a permanent
// one again gives the same code, and each code's link opens its image. In Chinese the settings entry reads
// 微信公众号.
func TestBrowserWeChat(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	bg := context.Background()
	weixin := wechattest.NewServer(wechattest.Options{})
	t.Cleanup(weixin.Close)
	brand := wechattest.NewAccount()
	weixin.AddAccount(brand)
	tp, err := s.app.touch.CreateTouchpoint(bg, touchpoint.Touchpoint{Name: "Mall entrance standee", Channel: touchpoint.ChannelWeChatQR,
		DestinationURL: "https://shop.example/mall"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)

	signIn(t, ctx, s.base, "/touchpoints/"+tp.ID, "admin@example.com", "a long admin password", tid("touchpoint-title"))
	do(t, ctx, "a WeChat QR touchpoint without an account points to connecting one",
		chromedp.WaitVisible(tid("wechat-qr-no-account")),
		chromedp.Click(chromedp.CSS(`[data-testid="wechat-qr-no-account"] a`)),
		chromedp.WaitVisible(tid("wechat-empty")),
	)

	do(t, ctx, "connect an account",
		chromedp.Click(tid("connect-wechat")),
		chromedp.WaitVisible(tid("wechat-name")),
		chromedp.SendKeys(tid("wechat-name"), "Brand service account"),
		chromedp.SendKeys(tid("wechat-app-id"), brand.AppID),
		chromedp.SendKeys(tid("wechat-slug"), "brand"),
		chromedp.SendKeys(tid("wechat-app-secret"), brand.AppSecret),
		chromedp.SendKeys(tid("wechat-token"), brand.Token),
		chromedp.SendKeys(tid("wechat-aes-key"), brand.EncodingAESKey),
		chromedp.Click(tid("wechat-save")),
		chromedp.WaitVisible(tid("wechat-setup")),
	)
	callback := read(t, ctx, "callback URL", chromedp.Value(tid("wechat-callback-url")))
	if !strings.HasPrefix(callback, s.base+"/") || !strings.HasSuffix(callback, "/wechat/brand") {
		t.Errorf("callback URL shown %q, want %s/…/wechat/brand", callback, s.base)
	}
	if token := read(t, ctx, "token", chromedp.Value(tid("wechat-setup-token"))); token != brand.Token {
		t.Errorf("token to paste %q, want the one typed", token)
	}
	if n := count(t, ctx, `[data-testid="wechat-unreachable"]`); n != 1 {
		t.Error("a callback URL on 127.0.0.1 is not flagged as out of WeChat's reach")
	}
	if steps := read(t, ctx, "steps", chromedp.Text(tid("wechat-setup"))); !strings.Contains(steps, "服务器配置") || !strings.Contains(steps, "安全模式") {
		t.Errorf("the steps do not say where to paste it: %q", steps)
	}
	if err := weixin.VerifyURL(bg, callback, brand); err != nil {
		t.Errorf("WeChat's check of the callback URL shown: %v", err)
	}
	do(t, ctx, "done: the account is listed",
		chromedp.Click(tid("wechat-done")),
		chromedp.WaitVisible(tid("wechat-table")),
	)
	row := read(t, ctx, "account row", chromedp.Attributes(tid("wechat-row")))
	if text := read(t, ctx, "account row", chromedp.Text(tid("wechat-row"))); strings.Contains(text, brand.AppSecret) || strings.Contains(text, brand.Token) {
		t.Errorf("the list shows a secret: %q", text)
	}
	// WeChat's API is the stand-in's: an admin's setting, not one of the console's.
	base := weixin.URL()
	if _, err := s.app.wechat.UpdateAccount(bg, row["data-account-id"], touchpoint.WeChatAccountInput{APIBaseURL: &base}); err != nil {
		t.Fatal(err)
	}

	do(t, ctx, "choose a permanent WeChat QR code for the touchpoint",
		chromedp.Navigate(s.base+"/console/touchpoints/"+tp.ID),
		chromedp.WaitVisible(tid("wechat-qr-empty")),
		chromedp.Click(tid("wechat-qr-open")),
		chromedp.WaitVisible(tid("wechat-qr-account")),
		chromedp.Click(tid("wechat-qr-permanent")),
		chromedp.WaitVisible(tid("wechat-qr-limit")),
	)
	if limit := read(t, ctx, "limit", chromedp.Text(tid("wechat-qr-limit"))); !strings.Contains(limit, "100,000") {
		t.Errorf("the permanent choice warns %q, want the 100,000 limit", limit)
	}
	do(t, ctx, "create it",
		chromedp.Click(tid("wechat-qr-submit")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="wechat-qr-row"][data-permanent="true"]`)),
	)
	do(t, ctx, "a temporary one for 7 days",
		chromedp.Click(tid("wechat-qr-open")),
		chromedp.WaitVisible(tid("wechat-qr-days")),
		chromedp.SetValue(tid("wechat-qr-days"), "7"),
		chromedp.Click(tid("wechat-qr-submit")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="wechat-qr-row"][data-permanent="false"]`)),
	)
	if expiry := read(t, ctx, "expiry", chromedp.Text(chromedp.CSS(`[data-testid="wechat-qr-row"][data-permanent="false"] [data-testid="wechat-qr-expiry"]`))); expiry != "Expires in 7 days" {
		t.Errorf("the temporary code says %q", expiry)
	}
	// The image is WeChat's: the link opens it there. (The console's Content-Security-Policy keeps other
	// sites' images off its pages, so the thumbnail falls back to a link of its own.)
	href := read(t, ctx, "image link", chromedp.Attributes(tid("wechat-qr-open-image")))["href"]
	if !strings.HasPrefix(href, weixin.ImageBaseURL()+"?ticket=") {
		t.Errorf("the code's image link %q, want WeChat's showqrcode", href)
	} else if res, err := http.Get(href); err != nil {
		t.Error(err)
	} else {
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/png" {
			t.Errorf("the code's image link answers %s %s", res.Status, res.Header.Get("Content-Type"))
		}
	}
	do(t, ctx, "a permanent one again is the same",
		chromedp.Click(tid("wechat-qr-open")),
		chromedp.WaitVisible(tid("wechat-qr-permanent")),
		chromedp.Click(tid("wechat-qr-permanent")),
		chromedp.Click(tid("wechat-qr-submit")),
		chromedp.WaitNotVisible(tid("wechat-qr-dialog")),
	)
	if n := count(t, ctx, `[data-testid="wechat-qr-row"]`); n != 2 {
		t.Errorf("%d WeChat codes listed after asking for the permanent one again, want 2", n)
	}
	if n := weixin.PermanentCodes(brand.AppID); n != 1 {
		t.Errorf("WeChat made %d permanent codes, want 1", n)
	}

	do(t, ctx, "in Chinese",
		chromedp.Click(tid("user-menu")),
		chromedp.WaitVisible(tid("lang-zh-CN")),
		chromedp.Click(tid("lang-zh-CN")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"]`)), // once its messages are loaded
	)
	if nav := read(t, ctx, "nav", chromedp.Text(tid("nav-wechat"))); nav != "微信公众号" {
		t.Errorf("the WeChat accounts entry in Chinese is %q", nav)
	}
}
