package touchpoint_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// fakePlatform stands for WeChat's API and counts the codes asked for.
type fakePlatform struct {
	mu    sync.Mutex
	made  []string // scenes
	creds []touchpoint.WeChatCredentials
}

func (p *fakePlatform) CreateQRCode(_ context.Context, acct touchpoint.WeChatCredentials, scene string, permanent bool, expiresIn time.Duration) (touchpoint.WeChatQRCode, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.made = append(p.made, scene)
	p.creds = append(p.creds, acct)
	c := touchpoint.WeChatQRCode{Ticket: "ticket-" + hearth.NewID(), URL: "http://weixin.qq.com/q/" + scene, ImageURL: "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=x"}
	if !permanent {
		at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Add(expiresIn)
		c.ExpiresAt = &at
	}
	return c, nil
}

type storeSources struct{ sources *collect.Sources }

func (s storeSources) CreateWeChatSource(ctx context.Context, name string) (string, error) {
	src, err := s.sources.Create(ctx, name, collect.KindWeChat)
	return src.ID, err
}

func (s storeSources) RenameSource(ctx context.Context, id, name string) error {
	_, err := s.sources.Rename(ctx, id, name)
	return err
}

type wechatEnv struct {
	db       *store.DB
	touch    *touchpoint.Service
	accounts *touchpoint.WeChatAccounts
	platform *fakePlatform
}

func newWeChatEnv(t *testing.T) wechatEnv {
	t.Helper()
	clock := storetest.NewClock(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))
	db := storetest.SQLite(t, clock)
	master, err := touchpoint.ParseMasterKey(strings.Repeat("m", 43) + "=")
	if err != nil {
		t.Fatal(err)
	}
	tps := touchpoint.NewService(db, master, clock, touchpoint.Options{PublicURL: "https://go.example/"})
	if err := tps.LoadKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := &fakePlatform{}
	return wechatEnv{db: db, touch: tps, platform: p,
		accounts: touchpoint.NewWeChatAccounts(db, tps, p, storeSources{collect.NewSources(db, clock)}, touchpoint.WeChatOptions{CacheFor: time.Hour})}
}

func ptr(s string) *string { return &s }

const aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

func TestWeChatAccountValidation(t *testing.T) {
	e := newWeChatEnv(t)
	ctx := context.Background()
	_, err := e.accounts.CreateAccount(ctx, touchpoint.WeChatAccountInput{Name: ptr(" "), Slug: ptr("-Brand"), AppID: ptr("wx 1"),
		Token: ptr("a!"), EncodingAESKey: ptr("short"), APIBaseURL: ptr("ftp://x")})
	if hearth.KindOf(err) != hearth.Invalid {
		t.Fatalf("CreateAccount = %v, want Invalid", err)
	}
	for _, field := range []string{"name", "slug", "app_id", "app_secret", "token", "encoding_aes_key", "api_base_url"} {
		if !strings.Contains(strings.ToLower(hearth.MessageOf(err)), field) {
			t.Errorf("%q does not name %s", hearth.MessageOf(err), field)
		}
	}
}

// Secrets are sealed for their account and use, and the callback sees them opened; changes show at once.
func TestWeChatAccountSecrets(t *testing.T) {
	e := newWeChatEnv(t)
	ctx := context.Background()
	a, err := e.accounts.CreateAccount(ctx, touchpoint.WeChatAccountInput{Name: ptr("Brand"), AppID: ptr("wx0123456789ABCDEF"),
		AppSecret: ptr("0123456789abcdef0123456789abcdef"), Token: ptr("callbacktoken"), EncodingAESKey: ptr(aesKey)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Slug != "wx0123456789abcdef" || !a.SafeMode || a.CallbackURL != "https://go.example/wechat/wx0123456789abcdef" || a.SourceID == "" {
		t.Errorf("account %+v", a)
	}
	stored, err := e.db.WeChatAccount(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"0123456789abcdef0123456789abcdef", "callbacktoken", aesKey} {
		for _, sealed := range [][]byte{stored.AppSecret, stored.Token, stored.EncodingAESKey} {
			if bytes.Contains(sealed, []byte(plain)) {
				t.Errorf("a secret is stored in the clear")
			}
		}
	}
	ep, err := e.accounts.Endpoint(ctx, a.Slug)
	if err != nil || ep.Token != "callbacktoken" || ep.EncodingAESKey != aesKey || ep.SourceID != a.SourceID || ep.AppID != "wx0123456789ABCDEF" {
		t.Errorf("Endpoint = %+v, %v", ep, err)
	}
	if _, err := e.accounts.Endpoint(ctx, "nobody"); hearth.KindOf(err) != hearth.NotFound {
		t.Errorf("Endpoint of no account: %v", err)
	}

	// Safe mode off and a new slug: the callback sees it at once, though its cache lasts an hour.
	a, err = e.accounts.UpdateAccount(ctx, a.ID, touchpoint.WeChatAccountInput{Slug: ptr("brand"), EncodingAESKey: ptr("")})
	if err != nil || a.SafeMode || a.Slug != "brand" {
		t.Fatalf("UpdateAccount = %+v, %v", a, err)
	}
	if ep, err := e.accounts.Endpoint(ctx, "brand"); err != nil || ep.Token != "callbacktoken" || ep.EncodingAESKey != "" {
		t.Errorf("Endpoint after the update = %+v, %v", ep, err)
	}
	if _, err := e.accounts.Endpoint(ctx, "wx0123456789abcdef"); hearth.KindOf(err) != hearth.NotFound {
		t.Errorf("the old slug: %v", err)
	}

	// A sealed secret moved to another account does not open there.
	b, err := e.accounts.CreateAccount(ctx, touchpoint.WeChatAccountInput{Name: ptr("Outlet"), AppID: ptr("wxfedcba9876543210"),
		AppSecret: ptr("s3cret"), Token: ptr("othertoken")})
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := e.db.WeChatAccount(ctx, b.ID)
	sb.Token = stored.Token
	if err := e.db.UpdateWeChatAccount(ctx, sb); err != nil {
		t.Fatal(err)
	}
	e.accounts.UpdateAccount(ctx, b.ID, touchpoint.WeChatAccountInput{}) // clears the cache
	if _, err := e.accounts.Endpoint(ctx, b.Slug); err == nil {
		t.Error("a token sealed for another account opened")
	}
}

// A permanent code is made once per touchpoint and account, and made again only when its token no longer
// verifies.
func TestWeChatPermanentQR(t *testing.T) {
	e := newWeChatEnv(t)
	ctx := context.Background()
	a, err := e.accounts.CreateAccount(ctx, touchpoint.WeChatAccountInput{Name: ptr("Brand"), AppID: ptr("wx0123456789abcdef"),
		AppSecret: ptr("appsecret"), Token: ptr("callbacktoken"), APIBaseURL: ptr("http://127.0.0.1:1/")})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := e.touch.CreateTouchpoint(ctx, touchpoint.Touchpoint{Name: "Poster", Channel: touchpoint.ChannelWeChatQR, DestinationURL: "https://shop.example/"})
	if err != nil {
		t.Fatal(err)
	}
	req := touchpoint.WeChatQRRequest{AccountID: a.ID, Permanent: true}
	first, created, err := e.accounts.CreateQR(ctx, tp.ID, req)
	if err != nil || !created || first.ExpiresAt != nil {
		t.Fatalf("CreateQR = %+v, %v, %v", first, created, err)
	}
	if c := e.platform.creds[0]; c.AppSecret != "appsecret" || c.APIBaseURL != "http://127.0.0.1:1" || c.AppID != "wx0123456789abcdef" {
		t.Errorf("called WeChat with %+v", c)
	}
	res, err := e.touch.Resolve(ctx, first.Scene, time.Now())
	if err != nil || res.Refused != "" || res.Touchpoint.ID != tp.ID {
		t.Errorf("the scene resolves to %+v, %v", res, err)
	}
	again, created, err := e.accounts.CreateQR(ctx, tp.ID, req)
	if err != nil || created || again.Ticket != first.Ticket {
		t.Errorf("asked again: %+v, %v, %v", again, created, err)
	}
	// After a rotation the old key still verifies: the code is kept.
	oldKey := e.touch.Keyring().SignerID()
	if _, err := e.touch.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	if again, created, _ = e.accounts.CreateQR(ctx, tp.ID, req); created || again.Ticket != first.Ticket {
		t.Errorf("after a rotation: %+v, %v", again, created)
	}
	// Once it is retired, the code's scans are refused: a new code is made.
	if err := e.touch.RetireKey(ctx, oldKey); err != nil {
		t.Fatal(err)
	}
	renewed, created, err := e.accounts.CreateQR(ctx, tp.ID, req)
	if err != nil || !created || renewed.Ticket == first.Ticket || renewed.Scene == first.Scene {
		t.Errorf("after the key was retired: %+v, %v, %v", renewed, created, err)
	}
	if len(e.platform.made) != 2 {
		t.Errorf("%d codes made at WeChat, want 2", len(e.platform.made))
	}

	// Temporary codes: made each time, within WeChat's limits.
	for _, tc := range []struct {
		in   time.Duration
		want hearth.Kind
	}{{0, 0}, {time.Minute, 0}, {30 * 24 * time.Hour, 0}, {59 * time.Second, hearth.Invalid}, {31 * 24 * time.Hour, hearth.Invalid}, {90500 * time.Millisecond, hearth.Invalid}} {
		c, _, err := e.accounts.CreateQR(ctx, tp.ID, touchpoint.WeChatQRRequest{AccountID: a.ID, ExpiresIn: tc.in})
		if tc.want != 0 {
			if hearth.KindOf(err) != tc.want {
				t.Errorf("expires in %s: %v, want %v", tc.in, err, tc.want)
			}
			continue
		}
		if err != nil || c.ExpiresAt == nil || c.Permanent {
			t.Errorf("expires in %s: %+v, %v", tc.in, c, err)
		}
	}
	if _, _, err := e.accounts.CreateQR(ctx, tp.ID, touchpoint.WeChatQRRequest{AccountID: "nope", Permanent: true}); hearth.KindOf(err) != hearth.Invalid {
		t.Errorf("no such account: %v", err)
	}
	if _, _, err := e.accounts.CreateQR(ctx, "nope", req); hearth.KindOf(err) != hearth.NotFound {
		t.Errorf("no such touchpoint: %v", err)
	}
	codes, err := e.accounts.QRCodes(ctx, tp.ID)
	if err != nil || len(codes) != 5 || codes[0].Permanent || codes[len(codes)-1].Ticket != first.Ticket {
		t.Errorf("QRCodes = %d codes, %v", len(codes), err)
	}
}
