package collect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
	"github.com/hearth-cdp/hearth/internal/wechat"
	"github.com/hearth-cdp/hearth/internal/wechat/wechattest"
)

var wechatStart = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// wechatAccounts is the callback's view of the accounts, by slug.
type wechatAccounts struct {
	mu   sync.Mutex
	byID map[string]collect.WeChatAccount
	err  error
}

func (a *wechatAccounts) WeChatAccount(_ context.Context, slug string) (collect.WeChatAccount, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return collect.WeChatAccount{}, a.err
	}
	acct, ok := a.byID[slug]
	if !ok {
		return collect.WeChatAccount{}, hearth.Errorf(hearth.NotFound, "test", "no account")
	}
	return acct, nil
}

// wechatResolver knows a few tokens; anything else is malformed.
type wechatResolver struct {
	tokens map[string]collect.ResolvedTouch
	err    error
}

func (r wechatResolver) ResolveTouch(_ context.Context, token string, _ time.Time) (collect.ResolvedTouch, error) {
	if r.err != nil {
		return collect.ResolvedTouch{}, r.err
	}
	if res, ok := r.tokens[token]; ok {
		return res, nil
	}
	return collect.ResolvedTouch{Refused: "malformed"}, nil
}

// flakyLog fails its next appends, as a store that is down does.
type flakyLog struct {
	collect.Log
	mu   sync.Mutex
	fail int
}

func (l *flakyLog) Append(ctx context.Context, b *collect.Batch) (collect.AppendResult, error) {
	l.mu.Lock()
	failing := l.fail > 0
	if failing {
		l.fail--
	}
	l.mu.Unlock()
	if failing {
		return collect.AppendResult{}, &hearth.Error{Kind: hearth.Unavailable, Op: "test.append", Msg: "The database is down."}
	}
	return l.Log.Append(ctx, b)
}

type wechatEnv struct {
	t        *testing.T
	db       *store.DB
	weixin   *wechattest.Server
	weClock  *wechattest.Clock // WeChat's clock, which may drift from Hearth's
	log      *flakyLog
	plain    wechattest.Account // an account in plain-text mode
	safe     wechattest.Account // an account in safe mode
	plainURL string
	safeURL  string
	base     string
	source   string
}

func newWeChatEnv(t *testing.T, resolver collect.TouchResolver) *wechatEnv {
	t.Helper()
	hearthClock, weClock := wechattest.NewClock(wechatStart), wechattest.NewClock(wechatStart)
	db := storetest.SQLite(t, hearthClock)
	w := store.NewEventWriter(db, store.EventWriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	src, err := collect.NewSources(db, hearthClock).Create(ctx, "WeChat: Brand", collect.KindWeChat)
	if err != nil {
		t.Fatal(err)
	}
	e := &wechatEnv{t: t, db: db, weClock: weClock, log: &flakyLog{Log: w}, plain: wechattest.NewAccount(), safe: wechattest.NewAccount(), source: src.ID}
	e.weixin = wechattest.NewServer(wechattest.Options{Accounts: []wechattest.Account{e.plain, e.safe}, Clock: weClock})
	t.Cleanup(e.weixin.Close)
	plainCB := e.plain.Callback()
	plainCB.EncodingAESKey = "" // Hearth knows this one without a key
	accounts := &wechatAccounts{byID: map[string]collect.WeChatAccount{
		"brand":  {ID: "a1", SourceID: src.ID, Callback: plainCB},
		"outlet": {ID: "a2", SourceID: src.ID, Callback: e.safe.Callback()},
	}}
	h := collect.NewWeChatHandler(accounts, resolver, e.log, hearthClock, slog.New(slog.DiscardHandler), collect.WeChatOptions{})
	mux := http.NewServeMux()
	for p, handler := range h.Routes() {
		mux.Handle(p, handler)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	e.base, e.plainURL, e.safeURL = ts.URL, ts.URL+"/wechat/brand", ts.URL+"/wechat/outlet"
	return e
}

// events returns the events stored so far.
func (e *wechatEnv) events() []collect.Event {
	e.t.Helper()
	evs, err := e.db.ReadEvents(context.Background(), 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// deliver has WeChat post msg and returns the events it added.
func (e *wechatEnv) deliver(url string, acct wechattest.Account, msg wechat.Message, encrypted bool) ([]collect.Event, error) {
	e.t.Helper()
	before := len(e.events())
	reply, err := e.weixin.Deliver(context.Background(), url, acct, msg, encrypted)
	if err == nil && string(reply) != "success" {
		e.t.Errorf("reply %q, want success", reply)
	}
	return e.events()[before:], err
}

type wechatPayload struct {
	MessageID   string `json:"messageId"`
	AnonymousID string `json:"anonymousId"`
	Event       string
	Properties  map[string]any
	Context     struct {
		ExternalIDs []collect.ExternalID `json:"externalIds"`
	}
	Timestamp time.Time
}

func payloadOf(t *testing.T, ev collect.Event) wechatPayload {
	t.Helper()
	var p wechatPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatalf("payload %s: %v", ev.Payload, err)
	}
	return p
}

func names(evs []collect.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}

func TestWeChatCallback(t *testing.T) {
	poster := collect.ResolvedTouch{TouchpointID: "tp1", TouchpointName: "Window poster", CampaignID: "c1", Channel: "wechat_qr", Known: true, Destination: "https://shop.example/"}
	paused := collect.ResolvedTouch{TouchpointID: "tp2", TouchpointName: "Old poster", Channel: "wechat_qr", Known: true, Refused: "paused"}
	e := newWeChatEnv(t, wechatResolver{tokens: map[string]collect.ResolvedTouch{"tokPoster": poster, "tokPaused": paused}})
	ctx := context.Background()
	alice, bob := wechattest.NewOpenID(), wechattest.NewOpenID()

	if err := e.weixin.VerifyURL(ctx, e.plainURL, e.plain); err != nil {
		t.Errorf("URL check: %v", err)
	}
	if err := e.weixin.VerifyURL(ctx, e.safeURL, e.plain); err == nil {
		t.Error("the URL check passed with another account's token")
	}

	// A new follower by the poster's code: a touch and a follow, both naming the openid.
	sub := e.weixin.SubscribeQR(e.plain, alice, "tokPoster", "ticket1")
	evs, err := e.deliver(e.plainURL, e.plain, sub, false)
	if err != nil || strings.Join(names(evs), ",") != "Touch,WeChat Followed" {
		t.Fatalf("subscribe by QR: %v, events %v", err, names(evs))
	}
	for _, ev := range evs {
		p := payloadOf(t, ev)
		if ev.SourceID != e.source || ev.AnonymousID != alice || p.AnonymousID != alice || len(p.Context.ExternalIDs) != 1 ||
			p.Context.ExternalIDs[0] != (collect.ExternalID{Type: "wechat_openid", ID: alice}) || !p.Timestamp.Equal(wechatStart) {
			t.Errorf("%s: %s", ev.Name, ev.Payload)
		}
	}
	touch := payloadOf(t, evs[0]).Properties
	if touch["token"] != "tokPoster" || touch["via"] != "wechat" || touch["touchpoint_id"] != "tp1" || touch["campaign_id"] != "c1" || touch["new_follower"] != true {
		t.Errorf("touch properties %v", touch)
	}
	if p := payloadOf(t, evs[1]).Properties; p["touchpoint_id"] != "tp1" || p["scene"] != "tokPoster" {
		t.Errorf("follow properties %v", p)
	}

	// WeChat's retries of the same message, newly signed, are stored once.
	for range 2 {
		if evs, err := e.deliver(e.plainURL, e.plain, sub, false); err != nil || len(evs) != 0 {
			t.Errorf("retry: %v, stored again: %v", err, names(evs))
		}
	}

	// A follower scans again: a touch, not a new follow.
	e.weClock.Advance(time.Minute)
	evs, _ = e.deliver(e.plainURL, e.plain, e.weixin.ScanQR(e.plain, alice, "tokPoster", "ticket1"), false)
	if strings.Join(names(evs), ",") != "Touch" || payloadOf(t, evs[0]).Properties["new_follower"] != false {
		t.Errorf("SCAN: %v", names(evs))
	}

	// A paused touchpoint's code: the scan and the follow are kept, but no touch.
	evs, _ = e.deliver(e.plainURL, e.plain, e.weixin.SubscribeQR(e.plain, bob, "tokPaused", "ticket2"), false)
	if strings.Join(names(evs), ",") != "WeChat Scanned,WeChat Followed" {
		t.Fatalf("refused scene: %v", names(evs))
	}
	if p := payloadOf(t, evs[0]).Properties; p["refused"] != "paused" || p["touchpoint_id"] != "tp2" || p["new_follower"] != true {
		t.Errorf("refused scan properties %v", p)
	}
	// A code the account made outside Hearth.
	evs, _ = e.deliver(e.plainURL, e.plain, e.weixin.ScanQR(e.plain, bob, "summer_promo", "ticket3"), false)
	if strings.Join(names(evs), ",") != "WeChat Scanned" || payloadOf(t, evs[0]).Properties["refused"] != "malformed" {
		t.Errorf("foreign scene: %v", names(evs))
	}

	// The rest of what followers do; never what they write or where they are.
	const said = "我的手机号是13800000000, call me"
	text := e.weixin.Text(e.plain, bob, said)
	loc := wechat.Message{ToUserName: e.plain.OriginalID, FromUserName: bob, CreateTime: wechatStart.Unix(), MsgType: wechat.MsgTypeEvent,
		Event: wechat.EventLocation, Latitude: 31.2304, Longitude: 121.4737, Precision: 30}
	for _, tc := range []struct {
		msg   wechat.Message
		name  string
		props map[string]any
	}{
		{e.weixin.Subscribe(e.plain, "o-plain-follow"), "WeChat Followed", map[string]any{}},
		{e.weixin.Click(e.plain, bob, "MENU_COUPON"), "WeChat Menu Clicked", map[string]any{"key": "MENU_COUPON"}},
		{e.weixin.View(e.plain, bob, "https://shop.example/menu"), "WeChat Menu Link Opened", map[string]any{"url": "https://shop.example/menu"}},
		{text, "WeChat Message Received", map[string]any{"msg_type": "text", "length": utf8.RuneCountInString(said)}},
		{loc, "WeChat Event Received", map[string]any{"event": "LOCATION"}},
		{e.weixin.Unsubscribe(e.plain, bob), "WeChat Unfollowed", map[string]any{}},
	} {
		evs, err := e.deliver(e.plainURL, e.plain, tc.msg, false)
		if err != nil || len(evs) != 1 || evs[0].Name != tc.name {
			t.Errorf("%s: %v, events %v", tc.name, err, names(evs))
			continue
		}
		if p := payloadOf(t, evs[0]); !jsonEqual(p.Properties, tc.props) {
			t.Errorf("%s: properties %v, want %v", tc.name, p.Properties, tc.props)
		}
		for _, secret := range []string{"13800000000", "31.2304", "121.47"} {
			if bytes.Contains(evs[0].Payload, []byte(secret)) {
				t.Errorf("%s stores %q: %s", tc.name, secret, evs[0].Payload)
			}
		}
	}

	// Safe mode: encrypted messages are read; a plain one, which nothing but the query signs, is refused.
	evs, err = e.deliver(e.safeURL, e.safe, e.weixin.SubscribeQR(e.safe, alice, "tokPoster", "ticket4"), true)
	if err != nil || strings.Join(names(evs), ",") != "Touch,WeChat Followed" {
		t.Errorf("safe mode: %v, %v", err, names(evs))
	}
	if evs, err = e.deliver(e.safeURL, e.safe, e.weixin.Click(e.safe, alice, "K"), false); !errors.Is(err, wechattest.ErrNoAnswer) || len(evs) != 0 {
		t.Errorf("a plain message to a safe-mode account: %v, stored %v", err, names(evs))
	}

	// A forged signature, a stale timestamp, an unknown account: refused, nothing stored.
	forger := e.plain
	forger.Token = "guessedtoken"
	if evs, err := e.deliver(e.plainURL, forger, e.weixin.Click(e.plain, alice, "K"), false); !errors.Is(err, wechattest.ErrNoAnswer) || len(evs) != 0 {
		t.Errorf("forged signature: %v, stored %v", err, names(evs))
	}
	e.weClock.Advance(-10 * time.Minute)
	if evs, err := e.deliver(e.plainURL, e.plain, e.weixin.Click(e.plain, alice, "K"), false); !errors.Is(err, wechattest.ErrNoAnswer) || len(evs) != 0 {
		t.Errorf("stale timestamp: %v, stored %v", err, names(evs))
	}
	e.weClock.Advance(10 * time.Minute)
	if _, err := e.deliver(e.base+"/wechat/nobody", e.plain, e.weixin.Click(e.plain, alice, "K"), false); !errors.Is(err, wechattest.ErrNoAnswer) {
		t.Errorf("unknown account: %v", err)
	}

	// The store is down: 500, so that WeChat retries, and the retry is stored once.
	e.log.mu.Lock()
	e.log.fail = 1
	e.log.mu.Unlock()
	before := len(e.events())
	reply, posts, err := e.weixin.DeliverWithRetries(ctx, e.plainURL, e.plain, e.weixin.Click(e.plain, alice, "AFTER_OUTAGE"), false)
	if err != nil || posts != 2 || string(reply) != "success" || len(e.events()) != before+1 {
		t.Errorf("store down once: %v after %d posts, %d events stored", err, posts, len(e.events())-before)
	}
}

// The resolver's store failing is not a refusal: WeChat is asked to retry.
func TestWeChatCallbackResolverDown(t *testing.T) {
	e := newWeChatEnv(t, wechatResolver{err: errors.New("database down")})
	if evs, err := e.deliver(e.plainURL, e.plain, e.weixin.SubscribeQR(e.plain, wechattest.NewOpenID(), "tok", "t"), false); !errors.Is(err, wechattest.ErrNoAnswer) || len(evs) != 0 {
		t.Errorf("resolver down: %v, stored %v", err, names(evs))
	}
	// A message that needs no resolving is still recorded.
	if evs, err := e.deliver(e.plainURL, e.plain, e.weixin.Subscribe(e.plain, wechattest.NewOpenID()), false); err != nil || len(evs) != 1 {
		t.Errorf("plain follow while the resolver is down: %v, %v", err, names(evs))
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// memoryLog keeps appended batches.
type memoryLog struct {
	mu      sync.Mutex
	batches []*collect.Batch
}

func (l *memoryLog) Append(_ context.Context, b *collect.Batch) (collect.AppendResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, b)
	return collect.AppendResult{Accepted: len(b.Events)}, nil
}

// Whatever a signed plain-text callback holds, the handler answers without failing, and what it stores is
// valid JSON naming the sender, the same on every delivery, and never holds the text of a message.
func FuzzWeChatCallback(f *testing.F) {
	weixin := wechattest.NewServer(wechattest.Options{})
	defer weixin.Close()
	acct := wechattest.NewAccount()
	for _, m := range []wechat.Message{
		weixin.SubscribeQR(acct, "oAlice", "tokPoster", "t"), weixin.ScanQR(acct, "oAlice", "tokPoster", "t"),
		weixin.Subscribe(acct, "oBob"), weixin.Unsubscribe(acct, "oBob"), weixin.Click(acct, "oBob", "K"),
		weixin.View(acct, "oBob", "https://shop.example/"), weixin.Text(acct, "oBob", "hello there, my phone is 138"),
		{ToUserName: "gh_1", FromUserName: "o\u00e9\xff", CreateTime: 1 << 40, MsgType: "event", Event: "subscribe", EventKey: "qrscene_\u2028"},
	} {
		f.Add(m.XML())
	}
	const token = "fuzztoken"
	now := time.Now().UTC()
	resolver := wechatResolver{tokens: map[string]collect.ResolvedTouch{"tokPoster": {TouchpointID: "tp1", TouchpointName: "P", Channel: "wechat_qr", Known: true}}}
	accounts := &wechatAccounts{byID: map[string]collect.WeChatAccount{"brand": {ID: "a1", SourceID: "s1", Callback: wechat.Callback{Token: token, AppID: acct.AppID}}}}
	post := func(body []byte) (*httptest.ResponseRecorder, []collect.Event) {
		log := &memoryLog{}
		mux := http.NewServeMux()
		for p, handler := range collect.NewWeChatHandler(accounts, resolver, log, hearth.SystemClock{}, slog.New(slog.DiscardHandler), collect.WeChatOptions{}).Routes() {
			mux.Handle(p, handler)
		}
		ts := strconv.FormatInt(now.Unix(), 10)
		q := url.Values{"signature": {wechat.Signature(token, ts, "1")}, "timestamp": {ts}, "nonce": {"1"}}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/wechat/brand?"+q.Encode(), bytes.NewReader(body)))
		var evs []collect.Event
		for _, b := range log.batches {
			evs = append(evs, b.Events...)
		}
		return rec, evs
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec, evs := post(body)
		msg, perr := wechat.ParseMessage(body)
		switch {
		case perr != nil && rec.Code == http.StatusOK:
			t.Fatalf("a body ParseMessage refuses (%v) was answered 200", perr)
		case rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge:
			t.Fatalf("answered %d %s", rec.Code, rec.Body)
		case rec.Code != http.StatusOK:
			return
		case rec.Body.String() != "success" || len(evs) == 0:
			t.Fatalf("answered %q with %d events", rec.Body, len(evs))
		}
		_, again := post(body)
		for i, ev := range evs {
			var p struct {
				Type        string
				MessageID   string `json:"messageId"`
				AnonymousID string `json:"anonymousId"`
				Context     struct {
					ExternalIDs []collect.ExternalID `json:"externalIds"`
				}
			}
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatalf("payload %q is not JSON: %v", ev.Payload, err)
			}
			if p.Type != "track" || p.MessageID != ev.MessageID || p.AnonymousID != ev.AnonymousID || len(p.Context.ExternalIDs) != 1 ||
				p.Context.ExternalIDs[0].Type != "wechat_openid" || ev.MessageID != again[i].MessageID || ev.Timestamp.IsZero() {
				t.Fatalf("event %s: %s", ev.MessageID, ev.Payload)
			}
			if ev.AnonymousID != msg.FromUserName {
				t.Fatalf("anonymousId %q, want the openid %q", ev.AnonymousID, msg.FromUserName)
			}
			if c := msg.Content; len(c) >= 8 && !strings.Contains(msg.FromUserName+msg.ToUserName+msg.EventKey+msg.MsgType+msg.Event, c) {
				quoted, _ := json.Marshal(c)
				if bytes.Contains(ev.Payload, []byte(c)) || bytes.Contains(ev.Payload, quoted[1:len(quoted)-1]) {
					t.Fatalf("the message's content is stored: %s", ev.Payload)
				}
			}
		}
	})
}
