package wechat_test

import (
	"context"
	"errors"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/wechat"
	"github.com/hearth-cdp/hearth/internal/wechat/wechattest"
)

var start = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

type fixture struct {
	clock  *wechattest.Clock
	server *wechattest.Server
	acct   wechattest.Account
	client *wechat.Client
}

func newFixture(t *testing.T, opts wechattest.Options) *fixture {
	t.Helper()
	f := &fixture{clock: wechattest.NewClock(start), acct: wechattest.NewAccount()}
	opts.Clock = f.clock
	opts.Accounts = append(opts.Accounts, f.acct)
	f.server = wechattest.NewServer(opts)
	t.Cleanup(f.server.Close)
	f.client = wechat.NewClient(f.server.ClientOptions(f.acct))
	return f
}

func (f *fixture) fetches() int { return f.server.TokenFetches(f.acct.AppID) }

func apiCode(err error) int {
	if e, ok := errors.AsType[*wechat.APIError](err); ok {
		return e.Code
	}
	return 0
}

func TestAccessTokenCachedAndRefreshed(t *testing.T) {
	f := newFixture(t, wechattest.Options{})
	ctx := t.Context()
	first, err := f.client.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := f.client.AccessToken(ctx); again != first || f.fetches() != 1 {
		t.Fatalf("second call fetched again: %d fetches", f.fetches())
	}
	// 7,200 s of life, refreshed when five minutes remain.
	f.clock.Advance(6899 * time.Second)
	if again, _ := f.client.AccessToken(ctx); again != first || f.fetches() != 1 {
		t.Fatalf("refreshed %s before the margin", 7200*time.Second-6899*time.Second)
	}
	f.clock.Advance(2 * time.Second)
	second, err := f.client.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || f.fetches() != 2 {
		t.Fatalf("not refreshed inside the margin: %d fetches", f.fetches())
	}
	// A jump far past expiry, as after a sleeping laptop.
	f.clock.Advance(10 * time.Hour)
	if third, err := f.client.AccessToken(ctx); err != nil || third == second || f.fetches() != 3 {
		t.Fatalf("after expiry: %v, %d fetches", err, f.fetches())
	}
	if _, err := f.client.CreateQRCode(ctx, wechat.QRCodeRequest{Scene: "s", ExpiresIn: time.Hour}); err != nil {
		t.Fatalf("the refreshed token does not work: %v", err)
	}
}

func TestAccessTokenSharedByConcurrentCallers(t *testing.T) {
	f := newFixture(t, wechattest.Options{})
	var wg sync.WaitGroup
	tokens := make([]string, 20)
	for i := range tokens {
		wg.Go(func() {
			tok, err := f.client.AccessToken(t.Context())
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok
		})
	}
	wg.Wait()
	if f.fetches() != 1 {
		t.Errorf("%d fetches for 20 concurrent callers", f.fetches())
	}
	for _, tok := range tokens {
		if tok != tokens[0] {
			t.Fatal("callers got different tokens")
		}
	}
}

func TestAccessTokenKeptWhenRefreshFails(t *testing.T) {
	f := newFixture(t, wechattest.Options{})
	first, err := f.client.AccessToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(7000 * time.Second) // inside the refresh margin, not yet expired
	f.server.FailNext("/cgi-bin/stable_token", -1)
	if tok, err := f.client.AccessToken(t.Context()); err != nil || tok != first {
		t.Fatalf("a failed refresh with time left: %q, %v; want the old token", tok, err)
	}
	f.clock.Advance(300 * time.Second) // expired now
	f.server.FailNext("/cgi-bin/stable_token", -1)
	if _, err := f.client.AccessToken(t.Context()); hearth.KindOf(err) != hearth.Unavailable || apiCode(err) != -1 {
		t.Fatalf("a failed fetch with no valid token: %v, want unavailable -1", err)
	}
}

func TestBadCredentials(t *testing.T) {
	f := newFixture(t, wechattest.Options{})
	tests := []struct {
		name          string
		appID, secret string
		code          int
	}{
		{"wrong secret", f.acct.AppID, "0123456789abcdef0123456789abcdef", 40125},
		{"unknown app id", "wx0000000000000000", f.acct.AppSecret, 40013},
		{"no secret", f.acct.AppID, "", 41004},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := f.server.ClientOptions(f.acct)
			opts.AppID, opts.AppSecret = tt.appID, tt.secret
			_, err := wechat.NewClient(opts).CreateQRCode(t.Context(), wechat.QRCodeRequest{Scene: "s", Permanent: true})
			if apiCode(err) != tt.code {
				t.Fatalf("err = %v, want errcode %d", err, tt.code)
			}
			if want := map[bool]hearth.Kind{true: hearth.Invalid, false: hearth.Unauthenticated}[tt.code == 41004]; hearth.KindOf(err) != want {
				t.Errorf("kind = %v, want %v", hearth.KindOf(err), want)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestRetryAfterRejectedToken(t *testing.T) {
	tests := []struct {
		name   string
		reject func(*wechattest.Server, string)
	}{
		{"expired, 42001", (*wechattest.Server).ExpireTokens},
		{"invalid, 40001", (*wechattest.Server).RevokeTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, wechattest.Options{})
			req := wechat.QRCodeRequest{Scene: "poster", ExpiresIn: time.Hour}
			if _, err := f.client.CreateQRCode(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			tt.reject(f.server, f.acct.AppID)
			if _, err := f.client.CreateQRCode(t.Context(), req); err != nil {
				t.Fatalf("no retry with a new token: %v", err)
			}
			if f.fetches() != 2 {
				t.Errorf("%d token fetches, want 2", f.fetches())
			}
		})
	}
}

func TestRetryOnlyOnce(t *testing.T) {
	f := newFixture(t, wechattest.Options{})
	f.server.FailNext("/cgi-bin/qrcode/create", 42001)
	f.server.FailNext("/cgi-bin/qrcode/create", 42001)
	_, err := f.client.CreateQRCode(t.Context(), wechat.QRCodeRequest{Scene: "s", Permanent: true})
	if apiCode(err) != 42001 || hearth.KindOf(err) != hearth.Unauthenticated {
		t.Fatalf("err = %v, want 42001 unauthenticated after one retry", err)
	}
	if f.fetches() != 2 {
		t.Errorf("%d token fetches, want 2", f.fetches())
	}
}

func TestCreateTemporaryQRCode(t *testing.T) {
	f := newFixture(t, wechattest.Options{})
	code, err := f.client.CreateQRCode(t.Context(), wechat.QRCodeRequest{Scene: "poster-42", ExpiresIn: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !code.ExpiresAt.Equal(start.Add(7*24*time.Hour)) || !strings.HasPrefix(code.URL, "http://weixin.qq.com/q/") {
		t.Errorf("code = %+v", code)
	}
	if ticket, ok := f.server.LookupTicket(code.Ticket); !ok || ticket.Scene != "poster-42" || ticket.Permanent {
		t.Errorf("the stand-in knows the ticket as %+v, %v", ticket, ok)
	}
	// The ticket holds +, / or =, so this also checks that the image URL escapes it.
	if text := decodeQR(t, f.client.QRCodeImageURL(code.Ticket)); text != code.URL {
		t.Errorf("the image encodes %q, want the code's URL %q", text, code.URL)
	}
	if status, _ := get(t, f.client.QRCodeImageURL(code.Ticket+"x")); status != http.StatusNotFound {
		t.Errorf("image of an unknown ticket: %d", status)
	}
	f.clock.Advance(7*24*time.Hour + time.Second)
	if status, _ := get(t, f.client.QRCodeImageURL(code.Ticket)); status != http.StatusNotFound {
		t.Errorf("image of an expired ticket: %d", status)
	}
}

func get(t *testing.T, url string) (status int, contentType string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

// decodeQR fetches a QR code image and reads it. The image is a pure code, as WeChat's is, so the decoder reads
// its modules straight off the grid: the detector's guessing at finder patterns misread about one random
// ticket in 300.
func decodeQR(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("image: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	bitmap, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	result, err := gozxingqr.NewQRCodeReader().Decode(bitmap, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return result.GetText()
}

func TestPermanentQRCodeLimit(t *testing.T) {
	f := newFixture(t, wechattest.Options{PermanentQRCodeLimit: 2})
	for _, scene := range []string{"a", "b"} {
		code, err := f.client.CreateQRCode(t.Context(), wechat.QRCodeRequest{Scene: scene, Permanent: true})
		if err != nil {
			t.Fatal(err)
		}
		if !code.ExpiresAt.IsZero() {
			t.Errorf("a permanent code expires at %v", code.ExpiresAt)
		}
	}
	_, err := f.client.CreateQRCode(t.Context(), wechat.QRCodeRequest{Scene: "c", Permanent: true})
	if apiCode(err) != 45029 || hearth.KindOf(err) != hearth.Forbidden || hearth.CodeOf(err) != "qrcode_limit" {
		t.Fatalf("err = %v, want 45029 forbidden", err)
	}
	// Temporary codes have no such limit.
	if _, err := f.client.CreateQRCode(t.Context(), wechat.QRCodeRequest{Scene: "c", ExpiresIn: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if n := f.server.PermanentCodes(f.acct.AppID); n != 2 {
		t.Errorf("%d permanent codes", n)
	}
}

func TestQRCodeRequestValidated(t *testing.T) {
	f := newFixture(t, wechattest.Options{})
	tests := []struct {
		name string
		req  wechat.QRCodeRequest
	}{
		{"empty scene", wechat.QRCodeRequest{Permanent: true}},
		{"65-byte scene", wechat.QRCodeRequest{Scene: strings.Repeat("a", 65), Permanent: true}},
		{"22 Chinese characters are 66 bytes", wechat.QRCodeRequest{Scene: strings.Repeat("码", 22), Permanent: true}},
		{"control character", wechat.QRCodeRequest{Scene: "a\nb", Permanent: true}},
		{"invalid UTF-8", wechat.QRCodeRequest{Scene: "a\xffb", Permanent: true}},
		{"59 seconds", wechat.QRCodeRequest{Scene: "a", ExpiresIn: 59 * time.Second}},
		{"30 days and a second", wechat.QRCodeRequest{Scene: "a", ExpiresIn: 30*24*time.Hour + time.Second}},
		{"no expiry", wechat.QRCodeRequest{Scene: "a"}},
		{"part of a second", wechat.QRCodeRequest{Scene: "a", ExpiresIn: 90500 * time.Millisecond}},
		{"permanent with an expiry", wechat.QRCodeRequest{Scene: "a", Permanent: true, ExpiresIn: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.client.CreateQRCode(t.Context(), tt.req); hearth.KindOf(err) != hearth.Invalid {
				t.Errorf("err = %v, want invalid", err)
			}
		})
	}
	if f.fetches() != 0 {
		t.Errorf("an invalid request reached WeChat")
	}
	for _, req := range []wechat.QRCodeRequest{
		{Scene: strings.Repeat("a", 64), Permanent: true},
		{Scene: strings.Repeat("码", 21) + "a", ExpiresIn: 60 * time.Second},
		{Scene: "<&>\"'", ExpiresIn: 30 * 24 * time.Hour},
	} {
		code, err := f.client.CreateQRCode(t.Context(), req)
		if err != nil {
			t.Errorf("%+v: %v", req, err)
			continue
		}
		if ticket, _ := f.server.LookupTicket(code.Ticket); ticket.Scene != req.Scene {
			t.Errorf("WeChat got the scene %q, want %q", ticket.Scene, req.Scene)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name    string
		errcode int
		status  int
		kind    hearth.Kind
	}{
		{"busy", -1, 0, hearth.Unavailable},
		{"daily quota", 45009, 0, hearth.RateLimited},
		{"minute quota", 45011, 0, hearth.RateLimited},
		{"IP not whitelisted", 40164, 0, hearth.Forbidden},
		{"API unauthorised", 48001, 0, hearth.Forbidden},
		{"invalid args", 40097, 0, hearth.Invalid},
		{"unknown code", 99999, 0, hearth.Internal},
		{"bad gateway", 0, http.StatusBadGateway, hearth.Unavailable},
		{"too many requests", 0, http.StatusTooManyRequests, hearth.RateLimited},
		{"not found", 0, http.StatusNotFound, hearth.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, wechattest.Options{})
			if tt.status != 0 {
				f.server.FailNextHTTP("/cgi-bin/qrcode/create", tt.status)
			} else {
				f.server.FailNext("/cgi-bin/qrcode/create", tt.errcode)
			}
			_, err := f.client.CreateQRCode(t.Context(), wechat.QRCodeRequest{Scene: "s", Permanent: true})
			if hearth.KindOf(err) != tt.kind {
				t.Errorf("kind = %v, want %v: %v", hearth.KindOf(err), tt.kind, err)
			}
			if tt.errcode != 0 && apiCode(err) != tt.errcode {
				t.Errorf("errcode = %d, want %d", apiCode(err), tt.errcode)
			}
			if hearth.MessageOf(err) == "" {
				t.Error("no message for the user")
			}
		})
	}
}

// A WeChat that cannot be reached, or answers nonsense, is unavailable, and the error shows neither the
// secret nor the token, which travel in the query.
func TestUnreachableAndNonsense(t *testing.T) {
	const secret = "s3cr3t-0123456789abcdef01234567"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"connection refused", nil},
		{"HTML", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>502 Bad Gateway</html>")) }},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"access_token":"` + strings.Repeat("a", wechat.MaxResponseSize) + `","expires_in":7200}`))
		}},
		{"no token", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"expires_in":7200}`)) }},
		{"wrong shape", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"access_token":7,"expires_in":"x"}`)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := closed
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				defer srv.Close()
				base = srv.URL
			}
			c := wechat.NewClient(wechat.ClientOptions{AppID: "wx0123456789abcdef", AppSecret: secret, BaseURL: base})
			_, err := c.AccessToken(t.Context())
			if hearth.KindOf(err) != hearth.Unavailable {
				t.Errorf("kind = %v, want unavailable: %v", hearth.KindOf(err), err)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// A caller that gives up stops waiting, while the shared fetch carries on for the others.
func TestAccessTokenCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte(`{"access_token":"T","expires_in":7200}`))
	}))
	defer srv.Close()
	defer close(release)
	c := wechat.NewClient(wechat.ClientOptions{AppID: "wx", AppSecret: "s", BaseURL: srv.URL})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.AccessToken(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
}

// Several Hearth nodes of one account share its token: a node's fetch does not retire the token another holds,
// so neither fetches again before the token's last five minutes.
func TestNodesShareAccessToken(t *testing.T) {
	f := newFixture(t, wechattest.Options{})
	other := wechat.NewClient(f.server.ClientOptions(f.acct)) // a second node
	req := wechat.QRCodeRequest{Scene: "poster", ExpiresIn: time.Hour}
	if _, err := f.client.CreateQRCode(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := other.CreateQRCode(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Minute) // long past the five minutes an old /cgi-bin/token token survives a new one
	for _, c := range []*wechat.Client{f.client, other} {
		if _, err := c.CreateQRCode(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := f.client.AccessToken(t.Context())
	b, _ := other.AccessToken(t.Context())
	if a != b || f.fetches() != 2 {
		t.Errorf("the nodes hold different tokens (%v) after %d fetches, want one token and 2 fetches", a != b, f.fetches())
	}
}
