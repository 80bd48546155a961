package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/wechat"
	"github.com/hearth-cdp/hearth/internal/wechat/wechattest"
)

type wechatAccountResp struct {
	ID, Name, Slug string
	AppID          string `json:"app_id"`
	SourceID       string `json:"source_id"`
	SafeMode       bool   `json:"safe_mode"`
	CallbackURL    string `json:"callback_url"`
}

type wechatQRResp struct {
	ID, Ticket, URL string
	ImageURL        string     `json:"image_url"`
	Permanent       bool       `json:"permanent"`
	ExpiresAt       *time.Time `json:"expires_at"`
	AccountID       string     `json:"account_id"`
}

// wechatEvents reads the events of some sources in the log, in log order.
func wechatEvents(t *testing.T, a *App, sourceIDs ...string) []collect.Event {
	t.Helper()
	evs, err := a.db.ReadEvents(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []collect.Event
	for _, e := range evs {
		if slices.Contains(sourceIDs, e.SourceID) {
			out = append(out, e)
		}
	}
	return out
}

func wechatEventNames(evs []collect.Event) string {
	var names []string
	for _, e := range evs {
		names = append(names, e.Name)
	}
	return strings.Join(names, ",")
}

// The whole way of a WeChat scan: an account connected through the admin API, a touchpoint's parametric QR
// codes made on (a stand-in for) WeChat, and WeChat delivering the scans, plain and encrypted, to the callback,
// which records touches that the touchpoint's counts show.
func TestWeChat(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := startApp(t, e2eConfig(t, engine))
			ctx := context.Background()
			admin, _, err := s.app.auth.CreateAPIKey(ctx, "admin", hearth.RoleAdmin)
			if err != nil {
				t.Fatal(err)
			}
			marketer, _, err := s.app.auth.CreateAPIKey(ctx, "marketer", hearth.RoleMarketer)
			if err != nil {
				t.Fatal(err)
			}
			weClock := wechattest.NewClock(time.Now())
			weixin := wechattest.NewServer(wechattest.Options{Clock: weClock})
			t.Cleanup(weixin.Close)
			brand, outlet := wechattest.NewAccount(), wechattest.NewAccount()
			weixin.AddAccount(brand)
			weixin.AddAccount(outlet)

			// Connecting: an admin points the accounts at the stand-in; secrets go in and never come out.
			var plain, safe wechatAccountResp
			if st := s.call(t, admin, "POST", "/api/v1/wechat-accounts", map[string]any{"name": "Brand", "slug": "brand", "app_id": brand.AppID,
				"app_secret": brand.AppSecret, "token": brand.Token, "api_base_url": weixin.URL()}, &plain); st != http.StatusCreated {
				t.Fatalf("create plain-text account: %d", st)
			}
			if st := s.call(t, admin, "POST", "/api/v1/wechat-accounts", map[string]any{"name": "Outlet", "app_id": outlet.AppID,
				"app_secret": outlet.AppSecret, "token": outlet.Token, "encoding_aes_key": outlet.EncodingAESKey, "api_base_url": weixin.URL()}, &safe); st != http.StatusCreated {
				t.Fatalf("create safe-mode account: %d", st)
			}
			if plain.SafeMode || !safe.SafeMode || safe.Slug != strings.ToLower(outlet.AppID) || !strings.HasSuffix(plain.CallbackURL, "/wechat/brand") {
				t.Errorf("accounts %+v %+v", plain, safe)
			}
			var raw json.RawMessage
			s.call(t, marketer, "GET", "/api/v1/wechat-accounts/"+safe.ID, nil, &raw)
			for _, secret := range []string{outlet.AppSecret, outlet.Token, outlet.EncodingAESKey} {
				if strings.Contains(string(raw), secret) {
					t.Errorf("the account's answer shows a secret: %s", raw)
				}
			}
			var src struct{ Kind, Name string }
			if s.call(t, marketer, "GET", "/api/v1/sources/"+plain.SourceID, nil, &src); src.Kind != "wechat" || src.Name != "WeChat: Brand" {
				t.Errorf("the account's source: %+v", src)
			}
			for name, tc := range map[string]struct {
				key  string
				body map[string]any
				want int
			}{
				"no token":                       {marketer, map[string]any{"name": "X", "app_id": "wx0000000000000001", "app_secret": "s"}, http.StatusBadRequest},
				"a taken slug":                   {marketer, map[string]any{"name": "X", "slug": "brand", "app_id": "wx0000000000000001", "app_secret": "s", "token": "tok"}, http.StatusConflict},
				"a connected AppID":              {marketer, map[string]any{"name": "X", "app_id": brand.AppID, "app_secret": "s", "token": "tok"}, http.StatusConflict},
				"a marketer setting the API URL": {marketer, map[string]any{"name": "X", "app_id": "wx0000000000000001", "app_secret": "s", "token": "tok", "api_base_url": "https://evil.example"}, http.StatusForbidden},
			} {
				if st := s.call(t, tc.key, "POST", "/api/v1/wechat-accounts", tc.body, nil); st != tc.want {
					t.Errorf("%s: %d, want %d", name, st, tc.want)
				}
			}
			var list struct{ Items []wechatAccountResp }
			if s.call(t, marketer, "GET", "/api/v1/wechat-accounts", nil, &list); len(list.Items) != 2 {
				t.Errorf("accounts: %+v", list.Items)
			}

			// WeChat's check of the URLs saved in its console.
			plainURL, safeURL := s.base+"/wechat/brand", s.base+"/wechat/"+safe.Slug
			if err := weixin.VerifyURL(ctx, plainURL, brand); err != nil {
				t.Errorf("URL check: %v", err)
			}
			if err := weixin.VerifyURL(ctx, safeURL, outlet); err != nil {
				t.Errorf("URL check, safe mode: %v", err)
			}
			if err := weixin.VerifyURL(ctx, safeURL, brand); err == nil {
				t.Error("the URL check passed with another account's token")
			}

			// A touchpoint's codes: a temporary one, and a permanent one made once however often it is asked for.
			var tp struct {
				ID, Token string
				Stats     struct{ Touches int64 }
			}
			s.call(t, marketer, "POST", "/api/v1/touchpoints", map[string]any{"name": "Store window", "channel": "wechat_qr", "destination_url": "https://shop.example/"}, &tp)
			var temp, perm, again, safeCode wechatQRResp
			if st := s.call(t, marketer, "POST", "/api/v1/touchpoints/"+tp.ID+"/wechat-qr", map[string]any{"account_id": plain.ID, "expires_in_days": 7}, &temp); st != http.StatusCreated {
				t.Fatalf("temporary code: %d", st)
			}
			if ticket, ok := weixin.LookupTicket(temp.Ticket); !ok || ticket.Scene != tp.Token || ticket.Permanent || temp.ExpiresAt == nil ||
				temp.ExpiresAt.Sub(time.Now()) > 7*24*time.Hour || temp.ExpiresAt.Sub(time.Now()) < 7*24*time.Hour-time.Minute || temp.Permanent {
				t.Errorf("temporary code %+v, at WeChat %+v", temp, ticket)
			}
			if st := s.call(t, marketer, "POST", "/api/v1/touchpoints/"+tp.ID+"/wechat-qr", map[string]any{"account_id": plain.ID, "permanent": true}, &perm); st != http.StatusCreated {
				t.Fatalf("permanent code: %d", st)
			}
			if st := s.call(t, marketer, "POST", "/api/v1/touchpoints/"+tp.ID+"/wechat-qr", map[string]any{"account_id": plain.ID, "permanent": true}, &again); st != http.StatusOK || again.Ticket != perm.Ticket {
				t.Errorf("permanent code asked for again: %d, %+v, want the first", st, again)
			}
			if n := weixin.PermanentCodes(brand.AppID); n != 1 || !perm.Permanent || perm.ExpiresAt != nil {
				t.Errorf("%d permanent codes made at WeChat; code %+v", n, perm)
			}
			if st := s.call(t, marketer, "POST", "/api/v1/touchpoints/"+tp.ID+"/wechat-qr", map[string]any{"account_id": safe.ID, "expires_in_days": 1}, &safeCode); st != http.StatusCreated {
				t.Fatalf("code on the safe-mode account: %d", st)
			}
			for _, bad := range []map[string]any{{"account_id": plain.ID, "expires_in_days": 31}, {"account_id": plain.ID, "expires_in_seconds": 59},
				{"account_id": plain.ID, "permanent": true, "expires_in_days": 1}, {"account_id": "nope"}} {
				if st := s.call(t, marketer, "POST", "/api/v1/touchpoints/"+tp.ID+"/wechat-qr", bad, nil); st != http.StatusBadRequest {
					t.Errorf("%v: %d, want 400", bad, st)
				}
			}
			var codes struct{ Items []wechatQRResp }
			if s.call(t, marketer, "GET", "/api/v1/touchpoints/"+tp.ID+"/wechat-qr", nil, &codes); len(codes.Items) != 3 || codes.Items[0].ID != safeCode.ID {
				t.Errorf("codes of the touchpoint: %+v", codes.Items)
			}
			// A wrong AppSecret: WeChat's refusal is the marketer's to fix, not a sign-in problem.
			s.call(t, marketer, "PATCH", "/api/v1/wechat-accounts/"+plain.ID, map[string]any{"app_secret": "wrong"}, nil)
			if st := s.call(t, marketer, "POST", "/api/v1/touchpoints/"+tp.ID+"/wechat-qr", map[string]any{"account_id": plain.ID}, nil); st != http.StatusBadRequest {
				t.Errorf("a code with a wrong AppSecret: %d, want 400", st)
			}
			s.call(t, marketer, "PATCH", "/api/v1/wechat-accounts/"+plain.ID, map[string]any{"app_secret": brand.AppSecret}, nil)
			if resp, err := http.Get(perm.ImageURL); err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
				t.Errorf("image of the code: %v %v", err, resp)
			} else {
				resp.Body.Close()
			}

			deliver := func(url string, acct wechattest.Account, msg wechat.Message, encrypted bool) (string, error) {
				t.Helper()
				before := len(wechatEvents(t, s.app, plain.SourceID, safe.SourceID))
				reply, err := weixin.Deliver(ctx, url, acct, msg, encrypted) // fails unless answered within WeChat's 5 s
				if err == nil && string(reply) != "success" {
					t.Errorf("reply %q", reply)
				}
				return wechatEventNames(wechatEvents(t, s.app, plain.SourceID, safe.SourceID)[before:]), err
			}

			// A new follower scans the permanent code; WeChat's retries are stored once.
			alice, bob := wechattest.NewOpenID(), wechattest.NewOpenID()
			sub, err := weixin.Scan(brand, alice, perm.Ticket)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := deliver(plainURL, brand, sub, false); err != nil || got != "Touch,WeChat Followed" {
				t.Fatalf("subscribe by QR: %v, events %s", err, got)
			}
			for range 2 {
				if got, err := deliver(plainURL, brand, sub, false); err != nil || got != "" {
					t.Errorf("retry: %v, stored again: %s", err, got)
				}
			}
			evs := wechatEvents(t, s.app, plain.SourceID)
			var touch struct {
				AnonymousID string `json:"anonymousId"`
				Properties  map[string]any
				Context     struct {
					ExternalIDs []collect.ExternalID `json:"externalIds"`
				}
			}
			json.Unmarshal(evs[0].Payload, &touch)
			if touch.AnonymousID != alice || touch.Properties["token"] != tp.Token || touch.Properties["touchpoint_id"] != tp.ID || touch.Properties["via"] != "wechat" ||
				len(touch.Context.ExternalIDs) != 1 || touch.Context.ExternalIDs[0] != (collect.ExternalID{Type: "wechat_openid", ID: alice}) {
				t.Errorf("touch %s", evs[0].Payload)
			}
			// She scans the temporary code later, as a follower: a touch again, no follow.
			weClock.Advance(time.Minute)
			scan, err := weixin.Scan(brand, alice, temp.Ticket)
			if err != nil || scan.Event != wechat.EventScan {
				t.Fatalf("scan: %v %+v", err, scan)
			}
			if got, err := deliver(plainURL, brand, scan, false); err != nil || got != "Touch" {
				t.Errorf("SCAN: %v, %s", err, got)
			}
			// Safe mode: encrypted, read; a plain post to that account is refused.
			subSafe, err := weixin.Scan(outlet, bob, safeCode.Ticket)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := deliver(safeURL, outlet, subSafe, true); err != nil || got != "Touch,WeChat Followed" {
				t.Errorf("subscribe by QR, safe mode: %v, %s", err, got)
			}
			if got, err := deliver(safeURL, outlet, weixin.Click(outlet, bob, "MENU"), false); !errors.Is(err, wechattest.ErrNoAnswer) || got != "" {
				t.Errorf("plain post to a safe-mode account: %v, stored %s", err, got)
			}
			if got, err := deliver(plainURL, brand, weixin.Unsubscribe(brand, alice), false); err != nil || got != "WeChat Unfollowed" {
				t.Errorf("unsubscribe: %v, %s", err, got)
			}
			// Forged and replayed: refused, nothing stored.
			forger := brand
			forger.Token = "guessed"
			if got, err := deliver(plainURL, forger, weixin.Subscribe(brand, bob), false); !errors.Is(err, wechattest.ErrNoAnswer) || got != "" {
				t.Errorf("forged signature: %v, stored %s", err, got)
			}
			weClock.Advance(-10 * time.Minute)
			if got, err := deliver(plainURL, brand, weixin.Subscribe(brand, bob), false); !errors.Is(err, wechattest.ErrNoAnswer) || got != "" {
				t.Errorf("stale timestamp: %v, stored %s", err, got)
			}
			weClock.Advance(10 * time.Minute)

			// The touches count, and the changes to an account show in its callback at once.
			deadline := time.Now().Add(10 * time.Second)
			for tp.Stats.Touches != 3 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				s.call(t, marketer, "GET", "/api/v1/touchpoints/"+tp.ID, nil, &tp)
			}
			if tp.Stats.Touches != 3 {
				t.Errorf("touches %d, want 3", tp.Stats.Touches)
			}
			var renamed wechatAccountResp
			if st := s.call(t, marketer, "PATCH", "/api/v1/wechat-accounts/"+plain.ID, map[string]any{"name": "Brand China", "token": "newtoken123"}, &renamed); st != http.StatusOK || renamed.Name != "Brand China" {
				t.Fatalf("update: %d %+v", st, renamed)
			}
			if st := s.call(t, marketer, "PATCH", "/api/v1/wechat-accounts/"+plain.ID, map[string]any{"api_base_url": ""}, nil); st != http.StatusForbidden {
				t.Errorf("a marketer changing the API URL: %d", st)
			}
			if err := weixin.VerifyURL(ctx, plainURL, brand); err == nil {
				t.Error("the old token still verifies after it was changed")
			}
			brand.Token = "newtoken123"
			if err := weixin.VerifyURL(ctx, plainURL, brand); err != nil {
				t.Errorf("the new token: %v", err)
			}
			if s.call(t, marketer, "GET", "/api/v1/sources/"+plain.SourceID, nil, &src); src.Name != "WeChat: Brand China" {
				t.Errorf("the source was not renamed: %+v", src)
			}

			// While its source is disabled an account's callbacks are answered, and nothing is recorded.
			s.call(t, marketer, "POST", "/api/v1/sources/"+plain.SourceID+"/disable", nil, nil)
			if got, err := deliver(plainURL, brand, weixin.Click(brand, alice, "MENU_OFFERS"), false); err != nil || got != "" {
				t.Errorf("a callback while the source is disabled: %v, stored %s", err, got)
			}
			s.call(t, marketer, "POST", "/api/v1/sources/"+plain.SourceID+"/enable", nil, nil)
			if got, err := deliver(plainURL, brand, weixin.Click(brand, alice, "MENU_OFFERS_2"), false); err != nil || got != "WeChat Menu Clicked" {
				t.Errorf("a callback once enabled again: %v, stored %s", err, got)
			}
		})
	}
}
