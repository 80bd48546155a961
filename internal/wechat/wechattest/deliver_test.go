package wechattest_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/wechat"
	"github.com/hearth-cdp/hearth/internal/wechat/wechattest"
)

var start = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// callback is a tiny handler made of the package's primitives, as the collect package's will be: it checks
// the signature and the replay window, decrypts, deduplicates, and answers text with text.
type callback struct {
	cb    wechat.Callback
	clock hearth.Clock
	delay time.Duration // to make WeChat give up

	mu       sync.Mutex
	skew     time.Duration // how far the handler's clock is ahead of WeChat's
	received []wechat.Message
	seen     map[string]bool
}

func (h *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(h.delay)
	q := r.URL.Query()
	if r.Method == http.MethodGet {
		echo, err := h.cb.VerifyEcho(q)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, echo)
		return
	}
	h.mu.Lock()
	now := h.clock.Now().Add(h.skew)
	h.mu.Unlock()
	if err := wechat.CheckTimestamp(q.Get("timestamp"), now, wechat.DefaultReplayWindow); err != nil {
		http.Error(w, "stale", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, wechat.MaxMessageSize+1))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	msg, encrypted, err := h.cb.Open(q, body)
	if err != nil {
		http.Error(w, hearth.MessageOf(err), http.StatusBadRequest)
		return
	}
	if q.Get("openid") != msg.FromUserName {
		http.Error(w, "openid differs", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.received = append(h.received, msg)
	dup := h.seen[msg.DedupeKey()]
	h.seen[msg.DedupeKey()] = true
	h.mu.Unlock()
	var reply []byte
	if msg.MsgType == wechat.MsgTypeText && !dup {
		reply = msg.TextReply("you said: "+msg.Content, h.clock.Now())
	}
	out, err := h.cb.Reply(reply, encrypted, h.clock.Now())
	if err != nil {
		http.Error(w, "reply", http.StatusInternalServerError)
		return
	}
	w.Write(out)
}

func (h *callback) messages() []wechat.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]wechat.Message(nil), h.received...)
}

type deliverFixture struct {
	clock   *wechattest.Clock
	wechat  *wechattest.Server
	acct    wechattest.Account
	handler *callback
	url     string
}

func newDeliverFixture(t *testing.T, plainText bool, deadline time.Duration) *deliverFixture {
	t.Helper()
	f := &deliverFixture{clock: wechattest.NewClock(start), acct: wechattest.NewAccount()}
	f.wechat = wechattest.NewServer(wechattest.Options{Clock: f.clock, Accounts: []wechattest.Account{f.acct}, CallbackDeadline: deadline})
	t.Cleanup(f.wechat.Close)
	cb := f.acct.Callback()
	if plainText {
		cb.EncodingAESKey = ""
	}
	f.handler = &callback{cb: cb, clock: f.clock, seen: map[string]bool{}}
	srv := httptest.NewServer(f.handler)
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/wechat/main"
	return f
}

func TestDeliver(t *testing.T) {
	for _, mode := range []struct {
		name      string
		encrypted bool
	}{{"plain text", false}, {"safe mode", true}} {
		t.Run(mode.name, func(t *testing.T) {
			f := newDeliverFixture(t, !mode.encrypted, 0)
			user := wechattest.NewOpenID()
			msgs := []wechat.Message{
				f.wechat.SubscribeQR(f.acct, user, "poster-42", "gQH47joAAAAA+/=="),
				f.wechat.ScanQR(f.acct, user, "poster-42", "gQH47joAAAAA+/=="),
				f.wechat.Click(f.acct, user, "MENU_OFFERS"),
				f.wechat.View(f.acct, user, "https://example.com/offers?a=1&b=2"),
				f.wechat.Text(f.acct, user, "hello ]]> <world> & \"you\""),
				f.wechat.Unsubscribe(f.acct, user),
			}
			for _, m := range msgs {
				reply, err := f.wechat.Deliver(t.Context(), f.url, f.acct, m, mode.encrypted)
				if err != nil {
					t.Fatalf("%s: %v", m.Event+m.MsgType, err)
				}
				if m.MsgType == wechat.MsgTypeText {
					r, err := wechat.ParseMessage(reply)
					if err != nil || r.Content != "you said: "+m.Content {
						t.Errorf("text reply = %q, %v", reply, err)
					}
				} else if string(reply) != "success" {
					t.Errorf("%s reply = %q, want success", m.Event, reply)
				}
			}
			if diff := cmp.Diff(msgs, f.handler.messages()); diff != "" {
				t.Errorf("the handler got (-sent +got):\n%s", diff)
			}
			if scene, ok := f.handler.messages()[0].Scene(); !ok || scene != "poster-42" {
				t.Errorf("subscribe scene = %q, %v", scene, ok)
			}
		})
	}
}

func TestDeliverNeedsTheRightKeys(t *testing.T) {
	f := newDeliverFixture(t, false, 0)
	user := wechattest.NewOpenID()
	impostor := f.acct
	impostor.Token = "not-the-token"
	if _, err := f.wechat.Deliver(t.Context(), f.url, impostor, f.wechat.Subscribe(f.acct, user), true); !errors.Is(err, wechattest.ErrNoAnswer) {
		t.Errorf("wrong token: %v, want the handler to refuse", err)
	}
	impostor = f.acct
	impostor.EncodingAESKey = wechattest.NewAccount().EncodingAESKey
	if _, err := f.wechat.Deliver(t.Context(), f.url, impostor, f.wechat.Subscribe(f.acct, user), true); !errors.Is(err, wechattest.ErrNoAnswer) {
		t.Errorf("wrong key: %v, want the handler to refuse", err)
	}
	if _, err := f.wechat.Deliver(t.Context(), f.url, f.acct, f.wechat.Subscribe(f.acct, user), false); !errors.Is(err, wechattest.ErrNoAnswer) {
		t.Errorf("plain text to a safe-mode account: %v, want the handler to refuse", err)
	}
	f.handler.mu.Lock()
	f.handler.skew = 10 * time.Minute // as if the post were replayed ten minutes on
	f.handler.mu.Unlock()
	if _, err := f.wechat.Deliver(t.Context(), f.url, f.acct, f.wechat.Subscribe(f.acct, user), true); !errors.Is(err, wechattest.ErrNoAnswer) {
		t.Errorf("stale timestamp: %v, want the handler to refuse", err)
	}
	if len(f.handler.messages()) != 0 {
		t.Errorf("the handler took %d forged messages", len(f.handler.messages()))
	}
}

func TestDeliverRetriesWhenTooSlow(t *testing.T) {
	f := newDeliverFixture(t, false, 30*time.Millisecond)
	f.handler.delay = 60 * time.Millisecond
	msg := f.wechat.Subscribe(f.acct, wechattest.NewOpenID())
	_, posts, err := f.wechat.DeliverWithRetries(t.Context(), f.url, f.acct, msg, true)
	if !errors.Is(err, wechattest.ErrNoAnswer) || posts != 1+wechattest.Retries {
		t.Fatalf("DeliverWithRetries = %d posts, %v", posts, err)
	}
	// The handler finished each post after WeChat gave up: four copies of one message, one key.
	deadline := time.Now().Add(2 * time.Second)
	for len(f.handler.messages()) < posts && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := f.handler.messages()
	if len(got) != posts {
		t.Fatalf("the handler got %d posts, want %d", len(got), posts)
	}
	for _, m := range got {
		if m.DedupeKey() != msg.DedupeKey() {
			t.Errorf("a retry has another dedupe key")
		}
	}
	f.handler.delay = 0
	if _, posts, err := f.wechat.DeliverWithRetries(t.Context(), f.url, f.acct, msg, true); err != nil || posts != 1 {
		t.Errorf("a prompt handler: %d posts, %v", posts, err)
	}
}

func TestDeliverRefusesBadReplies(t *testing.T) {
	acct := wechattest.NewAccount()
	clock := wechattest.NewClock(start)
	ws := wechattest.NewServer(wechattest.Options{Clock: clock, Accounts: []wechattest.Account{acct}})
	defer ws.Close()
	user := wechattest.NewOpenID()
	msg := ws.Text(acct, user, "hi")
	other := msg
	other.FromUserName = wechattest.NewOpenID()
	tests := []struct {
		name      string
		encrypted bool
		reply     func(r *http.Request) []byte
	}{
		{"not XML", false, func(*http.Request) []byte { return []byte("ok") }},
		{"to another user", false, func(*http.Request) []byte { return other.TextReply("x", start) }},
		{"text without content", false, func(*http.Request) []byte { return msg.TextReply("", start) }},
		{"an event is no reply", false, func(*http.Request) []byte { return ws.Click(acct, user, "x").XML() }},
		{"plain reply in safe mode", true, func(*http.Request) []byte { return msg.TextReply("x", start) }},
		{"encrypted with a bad signature", true, func(*http.Request) []byte {
			sealed, _ := wechat.EncryptReply("other-token", acct.EncodingAESKey, acct.AppID, msg.TextReply("x", start), "1", "2")
			return sealed
		}},
		{"encrypted for another app", true, func(*http.Request) []byte {
			sealed, _ := wechat.EncryptReply(acct.Token, acct.EncodingAESKey, "wx0000000000000000", msg.TextReply("x", start), "1", "2")
			return sealed
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(tt.reply(r)) }))
			defer srv.Close()
			if _, err := ws.Deliver(t.Context(), srv.URL, acct, msg, tt.encrypted); !errors.Is(err, wechattest.ErrBadReply) {
				t.Errorf("err = %v, want ErrBadReply", err)
			}
		})
	}
}

func TestVerifyURL(t *testing.T) {
	f := newDeliverFixture(t, false, 0)
	if err := f.wechat.VerifyURL(t.Context(), f.url, f.acct); err != nil {
		t.Fatal(err)
	}
	impostor := f.acct
	impostor.Token = "other"
	if err := f.wechat.VerifyURL(t.Context(), f.url, impostor); !errors.Is(err, wechattest.ErrNoAnswer) {
		t.Errorf("wrong token: %v, want the handler to refuse", err)
	}
	newline := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Query().Get("echostr")+"\n")
	}))
	defer newline.Close()
	if err := f.wechat.VerifyURL(t.Context(), newline.URL, f.acct); !errors.Is(err, wechattest.ErrBadReply) {
		t.Errorf("echo with a newline: %v, want ErrBadReply", err)
	}
}

// Scanning codes the stand-in issued: a subscribe with the scene first, then SCAN, as WeChat sends them.
func TestScan(t *testing.T) {
	f := newDeliverFixture(t, false, 0)
	client := wechat.NewClient(f.wechat.ClientOptions(f.acct))
	code, err := client.CreateQRCode(t.Context(), wechat.QRCodeRequest{Scene: "store-7", ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	user := wechattest.NewOpenID()
	first, err := f.wechat.Scan(f.acct, user, code.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.wechat.Scan(f.acct, user, code.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if first.Event != wechat.EventSubscribe || second.Event != wechat.EventScan || first.Ticket != code.Ticket {
		t.Errorf("events = %s, %s", first.Event, second.Event)
	}
	for _, m := range []wechat.Message{first, second} {
		if scene, ok := m.Scene(); !ok || scene != "store-7" {
			t.Errorf("%s scene = %q, %v", m.Event, scene, ok)
		}
		if _, err := f.wechat.Deliver(t.Context(), f.url, f.acct, m, true); err != nil {
			t.Fatal(err)
		}
	}
	if first.DedupeKey() == second.DedupeKey() {
		t.Error("subscribe and SCAN in the same second share a dedupe key")
	}
	f.wechat.Unsubscribe(f.acct, user)
	if again, _ := f.wechat.Scan(f.acct, user, code.Ticket); again.Event != wechat.EventSubscribe {
		t.Errorf("after unsubscribing, a scan is %s", again.Event)
	}
	if _, err := f.wechat.Scan(f.acct, user, "unknown"); err == nil {
		t.Error("an unknown ticket scans")
	}
	if _, err := f.wechat.Scan(wechattest.NewAccount(), user, code.Ticket); err == nil {
		t.Error("another account's ticket scans")
	}
	f.clock.Advance(time.Hour)
	if _, err := f.wechat.Scan(f.acct, user, code.Ticket); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired ticket: %v", err)
	}
}
