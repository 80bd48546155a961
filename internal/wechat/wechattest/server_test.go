package wechattest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth/internal/wechat/wechattest"
)

type answer struct {
	ErrCode       int    `json:"errcode"`
	ErrMsg        string `json:"errmsg"`
	AccessToken   string `json:"access_token"`
	ExpiresIn     int    `json:"expires_in"`
	Ticket        string `json:"ticket"`
	ExpireSeconds int    `json:"expire_seconds"`
	URL           string `json:"url"`
}

func call(t *testing.T, method, target, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s: HTTP %d %s", method, target, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func fetchToken(t *testing.T, s *wechattest.Server, acct wechattest.Account) string {
	t.Helper()
	a := call(t, "GET", s.URL()+"/cgi-bin/token?"+url.Values{"grant_type": {"client_credential"}, "appid": {acct.AppID}, "secret": {acct.AppSecret}}.Encode(), "")
	if a.ErrCode != 0 || a.AccessToken == "" || a.ExpiresIn != 7200 {
		t.Fatalf("token answer = %+v", a)
	}
	return a.AccessToken
}

func TestTokenEndpoint(t *testing.T) {
	acct := wechattest.NewAccount()
	s := wechattest.NewServer(wechattest.Options{Accounts: []wechattest.Account{acct}})
	defer s.Close()
	tests := []struct {
		name  string
		query url.Values
		code  int
	}{
		{"wrong grant type", url.Values{"grant_type": {"password"}, "appid": {acct.AppID}, "secret": {acct.AppSecret}}, 40002},
		{"no app id", url.Values{"grant_type": {"client_credential"}, "secret": {acct.AppSecret}}, 41002},
		{"no secret", url.Values{"grant_type": {"client_credential"}, "appid": {acct.AppID}}, 41004},
		{"unknown app id", url.Values{"grant_type": {"client_credential"}, "appid": {"wx0"}, "secret": {acct.AppSecret}}, 40013},
		{"wrong secret", url.Values{"grant_type": {"client_credential"}, "appid": {acct.AppID}, "secret": {"x"}}, 40125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "GET", s.URL()+"/cgi-bin/token?"+tt.query.Encode(), "")
			if a.ErrCode != tt.code || !strings.Contains(a.ErrMsg, " rid: ") || a.AccessToken != "" {
				t.Errorf("answer = %+v, want errcode %d", a, tt.code)
			}
		})
	}
	if n := s.TokenFetches(acct.AppID); n != 3 {
		t.Errorf("TokenFetches = %d, want the 3 requests that named the app", n)
	}
}

// A new token retires the previous one after five minutes, as WeChat promises; an old one then answers
// 40001, and one past its own 7,200 s answers 42001.
func TestTokenLifetimes(t *testing.T) {
	acct := wechattest.NewAccount()
	clock := wechattest.NewClock(start)
	s := wechattest.NewServer(wechattest.Options{Clock: clock, Accounts: []wechattest.Account{acct}})
	defer s.Close()
	create := func(token string) int { return createWith(t, s, token) }
	old := fetchToken(t, s, acct)
	clock.Advance(time.Hour)
	current := fetchToken(t, s, acct)
	clock.Advance(4 * time.Minute)
	if code := create(old); code != 0 {
		t.Errorf("the old token within five minutes: %d", code)
	}
	clock.Advance(time.Minute)
	if code := create(old); code != 40001 {
		t.Errorf("the old token after five minutes: %d, want 40001", code)
	}
	if code := create(current); code != 0 {
		t.Errorf("the current token: %d", code)
	}
	clock.Advance(2 * time.Hour)
	if code := create(current); code != 42001 {
		t.Errorf("the current token after two hours: %d, want 42001", code)
	}
	if code := create("made-up"); code != 40001 {
		t.Errorf("a made-up token: %d, want 40001", code)
	}
	if code := create(""); code != 41001 {
		t.Errorf("no token: %d, want 41001", code)
	}
}

func TestQRCodeCreateEndpoint(t *testing.T) {
	acct := wechattest.NewAccount()
	clock := wechattest.NewClock(start)
	s := wechattest.NewServer(wechattest.Options{Clock: clock, Accounts: []wechattest.Account{acct}})
	defer s.Close()
	target := s.URL() + "/cgi-bin/qrcode/create?access_token=" + url.QueryEscape(fetchToken(t, s, acct))
	tests := []struct {
		name, body string
		code       int
		scene      string
		expires    int // expire_seconds in the answer, 0 for a permanent code
	}{
		{"temporary by string", `{"expire_seconds":604800,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"a"}}}`, 0, "a", 604800},
		{"temporary by number", `{"expire_seconds":60,"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":4294967295}}}`, 0, "4294967295", 60},
		{"temporary without expiry gets 30 s", `{"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"a"}}}`, 0, "a", 30},
		{"permanent by string", `{"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"` + strings.Repeat("b", 64) + `"}}}`, 0, strings.Repeat("b", 64), 0},
		{"permanent by number", `{"action_name":"QR_LIMIT_SCENE","action_info":{"scene":{"scene_id":100000}}}`, 0, "100000", 0},
		{"unknown action", `{"action_name":"QR_FOREVER","action_info":{"scene":{"scene_str":"a"}}}`, 40052, "", 0},
		{"no scene", `{"action_name":"QR_LIMIT_STR_SCENE","action_info":{}}`, 40053, "", 0},
		{"empty scene_str", `{"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":""}}}`, 40053, "", 0},
		{"65-byte scene_str", `{"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"` + strings.Repeat("b", 65) + `"}}}`, 40053, "", 0},
		{"scene_id 0", `{"expire_seconds":60,"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":0}}}`, 40053, "", 0},
		{"permanent scene_id over 100,000", `{"action_name":"QR_LIMIT_SCENE","action_info":{"scene":{"scene_id":100001}}}`, 40053, "", 0},
		{"expiry over 30 days", `{"expire_seconds":2592001,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"a"}}}`, 40097, "", 0},
		{"negative expiry", `{"expire_seconds":-1,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"a"}}}`, 40097, "", 0},
		{"not JSON", `expire_seconds=60`, 47001, "", 0},
		{"empty", ``, 44002, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "POST", target, tt.body)
			if a.ErrCode != tt.code {
				t.Fatalf("answer = %+v, want errcode %d", a, tt.code)
			}
			if tt.code != 0 {
				return
			}
			ticket, ok := s.LookupTicket(a.Ticket)
			if !ok || ticket.Scene != tt.scene || ticket.URL != a.URL || a.ExpireSeconds != tt.expires || ticket.Permanent != (tt.expires == 0) {
				t.Errorf("answer %+v, ticket %+v", a, ticket)
			}
			if !strings.ContainsAny(a.Ticket, "+/=") {
				t.Errorf("ticket %q needs no escaping, unlike WeChat's", a.Ticket)
			}
		})
	}
	if a := call(t, "GET", target, ""); a.ErrCode != 43002 {
		t.Errorf("GET: %+v, want 43002", a)
	}
}

// createWith makes a permanent QR code with token and returns the errcode of the answer: a token's test.
func createWith(t *testing.T, s *wechattest.Server, token string) int {
	t.Helper()
	return call(t, "POST", s.URL()+"/cgi-bin/qrcode/create?access_token="+url.QueryEscape(token),
		`{"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"x"}}}`).ErrCode
}

func fetchStableToken(t *testing.T, s *wechattest.Server, acct wechattest.Account, force bool) (string, int) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": acct.AppID, "secret": acct.AppSecret, "force_refresh": force})
	a := call(t, "POST", s.URL()+"/cgi-bin/stable_token", string(body))
	if a.ErrCode != 0 || a.AccessToken == "" || a.ExpiresIn < 300 || a.ExpiresIn > 7200 {
		t.Fatalf("stable token answer = %+v", a)
	}
	return a.AccessToken, a.ExpiresIn
}

// The stable token is the same for every caller while it has more than five minutes left; in its last five
// minutes a call gets the next one and the old works to its end. A forced refresh issues a new one at once
// and, forced again, ends the one before. It is apart from /cgi-bin/token's tokens: neither retires the other.
func TestStableTokenEndpoint(t *testing.T) {
	acct := wechattest.NewAccount()
	clock := wechattest.NewClock(start)
	s := wechattest.NewServer(wechattest.Options{Clock: clock, Accounts: []wechattest.Account{acct}})
	defer s.Close()
	create := func(token string) int { return createWith(t, s, token) }
	first, life := fetchStableToken(t, s, acct, false)
	if life != 7200 {
		t.Errorf("a new stable token lives %d s, want 7200", life)
	}
	plain := fetchToken(t, s, acct)
	clock.Advance(time.Hour)
	if again, left := fetchStableToken(t, s, acct, false); again != first || left != 3600 {
		t.Errorf("an hour later: %q with %d s left, want the same token with 3600", again, left)
	}
	clock.Advance(57 * time.Minute) // 3 minutes left
	next, _ := fetchStableToken(t, s, acct, false)
	if next == first {
		t.Fatal("in its last five minutes the stable token was not renewed")
	}
	for _, tok := range []string{first, next, plain} {
		if code := create(tok); code != 0 {
			t.Errorf("a token in use: %d", code)
		}
	}
	clock.Advance(3 * time.Minute)
	if code := create(first); code != 40001 {
		t.Errorf("the old stable token after its end: %d, want 40001", code)
	}
	forced, _ := fetchStableToken(t, s, acct, true)
	if forced == next || create(next) != 0 || create(forced) != 0 {
		t.Errorf("a forced refresh: new %v, the old still works %v", forced != next, create(next) == 0)
	}
	clock.Advance(30 * time.Second)
	fetchStableToken(t, s, acct, true)
	if code := create(next); code != 40001 {
		t.Errorf("the token two forced refreshes ago: %d, want 40001", code)
	}
	if n := s.TokenFetches(acct.AppID); n != 6 {
		t.Errorf("TokenFetches = %d, want 6", n)
	}
	for _, tt := range []struct {
		name, body string
		code       int
	}{
		{"not JSON", `grant_type=client_credential`, 47001},
		{"wrong grant type", `{"grant_type":"password","appid":"` + acct.AppID + `","secret":"` + acct.AppSecret + `"}`, 40002},
		{"no app id", `{"grant_type":"client_credential","secret":"` + acct.AppSecret + `"}`, 41002},
		{"no secret", `{"grant_type":"client_credential","appid":"` + acct.AppID + `"}`, 41004},
		{"wrong secret", `{"grant_type":"client_credential","appid":"` + acct.AppID + `","secret":"x"}`, 40125},
	} {
		if a := call(t, "POST", s.URL()+"/cgi-bin/stable_token", tt.body); a.ErrCode != tt.code || a.AccessToken != "" {
			t.Errorf("%s: answer = %+v, want errcode %d", tt.name, a, tt.code)
		}
	}
	if a := call(t, "GET", s.URL()+"/cgi-bin/stable_token", ""); a.ErrCode != 43002 {
		t.Errorf("GET: errcode %d, want 43002", a.ErrCode)
	}
}
