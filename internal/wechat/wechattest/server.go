// Package wechattest is a stand-in for WeChat's official-account platform, for tests: an httptest server
// that answers the API as WeChat documents it (access tokens, parametric QR codes and their images), and
// that acts as WeChat's side of a callback, delivering signed and, in safe mode, encrypted messages.
package wechattest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/wechat"
)

// WeChat's numbers.
const (
	TokenLifetime        = 7200 * time.Second
	TokenGrace           = 5 * time.Minute // an old token keeps working this long after a new one is issued
	PermanentQRCodeLimit = 100_000
	CallbackDeadline     = 5 * time.Second
	maxTemporaryLifetime = 2_592_000 // seconds
	defaultQRLifetime    = 30        // seconds, when a temporary code's request names none
	maxRequestBody       = 1 << 20
)

// Account is an official account the stand-in knows: its developer credentials and server configuration.
type Account struct {
	AppID          string
	AppSecret      string
	Token          string // the callback token
	EncodingAESKey string // for safe mode
	OriginalID     string // gh_…, the ToUserName of messages to the account
}

// NewAccount returns an account with random credentials of WeChat's shapes.
func NewAccount() Account {
	return Account{
		AppID:          "wx" + randomHex(8),
		AppSecret:      randomHex(16),
		Token:          randomAlnum(32),
		EncodingAESKey: randomAlnum(wechat.EncodingAESKeyLen),
		OriginalID:     "gh_" + randomHex(6),
	}
}

// Callback returns what the account's callback handler needs to check and read WeChat's messages.
func (a Account) Callback() wechat.Callback {
	return wechat.Callback{Token: a.Token, EncodingAESKey: a.EncodingAESKey, AppID: a.AppID}
}

// Options configure a Server.
type Options struct {
	Accounts             []Account
	Clock                hearth.Clock  // default hearth.SystemClock; tokens, tickets and messages are timed on it
	PermanentQRCodeLimit int           // permanent codes per account; default 100,000
	CallbackDeadline     time.Duration // how long Deliver waits for an answer; default WeChat's 5 s
	CallbackClient       *http.Client  // what Deliver and VerifyURL post with; default http.DefaultClient
}

// Server is the stand-in. Its methods are safe for concurrent use.
type Server struct {
	srv              *httptest.Server
	clock            hearth.Clock
	permanentLimit   int
	callbackDeadline time.Duration
	callbackClient   *http.Client

	mu        sync.Mutex
	accounts  map[string]*accountState // by app id
	tokens    map[string]*issuedToken
	tickets   map[string]*Ticket
	failures  map[string][]failure // by path: answers to give instead of the real one, in order
	followers map[string]bool      // app id + "/" + openid
	nextMsgID int64
}

type accountState struct {
	Account
	tokenFetches   int
	currentToken   string
	stableToken    string // the current token of /cgi-bin/stable_token: a token of its own, apart from currentToken
	stableBefore   string // the one before it, valid a while longer
	permanentCodes int
}

type issuedToken struct {
	appID      string
	expiresAt  time.Time
	superseded bool // replaced by a newer token: once it lapses, WeChat calls it invalid, not expired
}

// Ticket is a QR code the stand-in issued.
type Ticket struct {
	AppID     string
	Scene     string
	URL       string
	Permanent bool
	ExpiresAt time.Time // zero for a permanent code
}

type failure struct {
	errcode int
	status  int
}

// NewServer starts a stand-in; Close it when done.
func NewServer(opts Options) *Server {
	s := &Server{
		clock:            opts.Clock,
		permanentLimit:   opts.PermanentQRCodeLimit,
		callbackDeadline: opts.CallbackDeadline,
		callbackClient:   opts.CallbackClient,
		accounts:         map[string]*accountState{},
		tokens:           map[string]*issuedToken{},
		tickets:          map[string]*Ticket{},
		failures:         map[string][]failure{},
		followers:        map[string]bool{},
		nextMsgID:        24_000_000_000_000_000, // WeChat's msgids are 64-bit numbers of this size
	}
	if s.clock == nil {
		s.clock = hearth.SystemClock{}
	}
	if s.permanentLimit <= 0 {
		s.permanentLimit = PermanentQRCodeLimit
	}
	if s.callbackClient == nil {
		s.callbackClient = http.DefaultClient
	}
	if s.callbackDeadline <= 0 {
		s.callbackDeadline = CallbackDeadline
	}
	for _, a := range opts.Accounts {
		s.AddAccount(a)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/token", s.handleToken)
	mux.HandleFunc("/cgi-bin/stable_token", s.handleStableToken)
	mux.HandleFunc("/cgi-bin/qrcode/create", s.handleQRCodeCreate)
	mux.HandleFunc("/cgi-bin/showqrcode", s.handleShowQRCode)
	s.srv = httptest.NewServer(s.injectFailures(mux))
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the base URL of the API, for ClientOptions.BaseURL.
func (s *Server) URL() string { return s.srv.URL }

// ImageBaseURL is where tickets are exchanged for images, for ClientOptions.ImageBaseURL.
func (s *Server) ImageBaseURL() string { return s.srv.URL + "/cgi-bin/showqrcode" }

// ClientOptions returns the options of a wechat.Client for acct that talks to this stand-in on its clock.
func (s *Server) ClientOptions(acct Account) wechat.ClientOptions {
	return wechat.ClientOptions{
		AppID: acct.AppID, AppSecret: acct.AppSecret, BaseURL: s.URL(), ImageBaseURL: s.ImageBaseURL(),
		HTTPClient: s.srv.Client(), Clock: s.clock,
	}
}

// AddAccount makes the stand-in know one more account.
func (s *Server) AddAccount(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[a.AppID] = &accountState{Account: a}
}

// TokenFetches counts the requests for an access token (/cgi-bin/token or /cgi-bin/stable_token) that named
// appID, successful or not.
func (s *Server) TokenFetches(appID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[appID]; a != nil {
		return a.tokenFetches
	}
	return 0
}

// PermanentCodes counts the permanent QR codes issued to appID.
func (s *Server) PermanentCodes(appID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[appID]; a != nil {
		return a.permanentCodes
	}
	return 0
}

// LookupTicket returns what the stand-in knows of a ticket it issued.
func (s *Server) LookupTicket(ticket string) (Ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[ticket]
	if !ok {
		return Ticket{}, false
	}
	return *t, true
}

// ExpireTokens makes every token of appID expired now, as if the client's clock ran slow: the next call
// with one answers 42001.
func (s *Server) ExpireTokens(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for _, t := range s.tokens {
		if t.appID == appID {
			t.expiresAt = now
		}
	}
}

// RevokeTokens makes every token of appID invalid now, as when someone resets the AppSecret or another
// process fetched tokens long enough ago: the next call with one answers 40001.
func (s *Server) RevokeTokens(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for _, t := range s.tokens {
		if t.appID == appID {
			t.expiresAt, t.superseded = now, true
		}
	}
}

// FailNext makes the next request to path (such as "/cgi-bin/token") answer errcode, as WeChat does with
// HTTP 200: -1 for busy, 45009 for the daily quota, and so on. Calls queue up.
func (s *Server) FailNext(path string, errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[path] = append(s.failures[path], failure{errcode: errcode})
}

// FailNextHTTP makes the next request to path answer with an HTTP status and no body, as a failing proxy
// in front of WeChat would.
func (s *Server) FailNextHTTP(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[path] = append(s.failures[path], failure{status: status})
}

func (s *Server) injectFailures(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		queue := s.failures[r.URL.Path]
		var f *failure
		if len(queue) > 0 {
			f = &queue[0]
			s.failures[r.URL.Path] = queue[1:]
		}
		s.mu.Unlock()
		switch {
		case f == nil:
			next.ServeHTTP(w, r)
		case f.status != 0:
			w.WriteHeader(f.status)
		default:
			writeError(w, f.errcode)
		}
	})
}

// The errmsg WeChat sends with each code the stand-in answers.
var errmsgs = map[int]string{
	-1:    "system error",
	40001: "invalid credential, access_token is invalid or not latest",
	40002: "invalid grant_type",
	40013: "invalid appid",
	40052: "invalid action name",
	40053: "invalid action info",
	40097: "invalid args",
	40125: "invalid appsecret",
	40164: "invalid ip, not in whitelist",
	41001: "access_token missing",
	41002: "appid missing",
	41004: "appsecret missing",
	42001: "access_token expired",
	43002: "require POST method",
	44002: "empty post data",
	45009: "reach max api daily quota limit",
	45011: "api minute-quota reach limit  mustslower  retry next minute",
	45029: "qrcode count out of limit",
	47001: "data format error",
	48001: "api unauthorized",
}

func writeError(w http.ResponseWriter, errcode int) {
	msg, ok := errmsgs[errcode]
	if !ok {
		msg = "error"
	}
	// WeChat ends every errmsg with a request id.
	writeJSON(w, map[string]any{"errcode": errcode, "errmsg": fmt.Sprintf("%s rid: %s-%s-%s", msg, randomHex(4), randomHex(4), randomHex(4))})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	json.NewEncoder(w).Encode(v)
}

// GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=…
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, errcode := s.credentials(q.Get("grant_type"), q.Get("appid"), q.Get("secret"))
	if errcode != 0 {
		writeError(w, errcode)
		return
	}
	now := s.clock.Now()
	if old := s.tokens[acct.currentToken]; old != nil && !old.superseded {
		old.superseded = true
		old.expiresAt = minTime(old.expiresAt, now.Add(TokenGrace))
	}
	token := randomToken()
	s.tokens[token] = &issuedToken{appID: acct.AppID, expiresAt: now.Add(TokenLifetime)}
	acct.currentToken = token
	writeJSON(w, map[string]any{"access_token": token, "expires_in": int(TokenLifetime / time.Second)})
}

// credentials checks a token request's grant type, app id and secret, counting the request for the account
// it names, and returns the account or the errcode to answer. The caller holds s.mu.
func (s *Server) credentials(grantType, appID, secret string) (*accountState, int) {
	acct := s.accounts[appID]
	if acct != nil {
		acct.tokenFetches++
	}
	switch {
	case grantType != "client_credential":
		return nil, 40002
	case appID == "":
		return nil, 41002
	case secret == "":
		return nil, 41004
	case acct == nil:
		return nil, 40013
	case secret != acct.AppSecret:
		return nil, 40125
	}
	return acct, 0
}

// POST /cgi-bin/stable_token {"grant_type":"client_credential","appid":…,"secret":…,"force_refresh":false}
//
// The stable token, apart from /cgi-bin/token's: in the normal mode every call while it has more than five
// minutes left answers the same token (so that several servers of one account share it), and a call in its
// last five minutes issues the next, the old one still valid until its end. force_refresh issues a new one
// at once and retires the old after five minutes (and the one before it at once).
func (s *Server) handleStableToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, 43002)
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, 47001)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, errcode := s.credentials(req.GrantType, req.AppID, req.Secret)
	if errcode != 0 {
		writeError(w, errcode)
		return
	}
	now := s.clock.Now()
	if cur := s.tokens[acct.stableToken]; cur != nil && !req.ForceRefresh && cur.expiresAt.Sub(now) > TokenGrace {
		writeJSON(w, map[string]any{"access_token": acct.stableToken, "expires_in": int(cur.expiresAt.Sub(now) / time.Second)})
		return
	}
	// At most two tokens work at once: two forced refreshes (30 s apart, WeChat says) end a leaked one.
	if older := s.tokens[acct.stableBefore]; older != nil {
		older.superseded, older.expiresAt = true, minTime(older.expiresAt, now)
	}
	if old := s.tokens[acct.stableToken]; old != nil {
		old.superseded = true
		old.expiresAt = minTime(old.expiresAt, now.Add(TokenGrace))
	}
	token := randomToken()
	s.tokens[token] = &issuedToken{appID: acct.AppID, expiresAt: now.Add(TokenLifetime)}
	acct.stableBefore, acct.stableToken = acct.stableToken, token
	writeJSON(w, map[string]any{"access_token": token, "expires_in": int(TokenLifetime / time.Second)})
}

// authorize checks the access_token of an API call and returns its account, or the errcode to answer.
// The caller holds s.mu.
func (s *Server) authorize(r *http.Request) (*accountState, int) {
	token := r.URL.Query().Get("access_token")
	if token == "" {
		return nil, 41001
	}
	t := s.tokens[token]
	switch {
	case t == nil:
		return nil, 40001
	case !s.clock.Now().Before(t.expiresAt) && t.superseded:
		return nil, 40001
	case !s.clock.Now().Before(t.expiresAt):
		return nil, 42001
	}
	return s.accounts[t.appID], 0
}

// POST /cgi-bin/qrcode/create?access_token=…
func (s *Server) handleQRCodeCreate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost {
		writeError(w, 43002)
		return
	}
	acct, errcode := s.authorize(r)
	if errcode != 0 {
		writeError(w, errcode)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil || len(data) == 0 {
		writeError(w, 44002)
		return
	}
	var req struct {
		ExpireSeconds *int64 `json:"expire_seconds"`
		ActionName    string `json:"action_name"`
		ActionInfo    *struct {
			Scene *struct {
				SceneID  *int64  `json:"scene_id"`
				SceneStr *string `json:"scene_str"`
			} `json:"scene"`
		} `json:"action_info"`
	}
	if json.Unmarshal(data, &req) != nil {
		writeError(w, 47001)
		return
	}
	var permanent, byString bool
	switch req.ActionName {
	case "QR_SCENE":
	case "QR_STR_SCENE":
		byString = true
	case "QR_LIMIT_SCENE":
		permanent = true
	case "QR_LIMIT_STR_SCENE":
		permanent, byString = true, true
	default:
		writeError(w, 40052)
		return
	}
	if req.ActionInfo == nil || req.ActionInfo.Scene == nil {
		writeError(w, 40053)
		return
	}
	// The scene rules WeChat documents: scene_str of 1 to 64 characters; scene_id a non-zero 32-bit
	// number for a temporary code and 1 to 100,000 for a permanent one.
	var scene string
	sc := req.ActionInfo.Scene
	switch {
	case byString && (sc.SceneStr == nil || *sc.SceneStr == "" || len(*sc.SceneStr) > wechat.MaxSceneLen || !utf8.ValidString(*sc.SceneStr)):
		writeError(w, 40053)
		return
	case byString:
		scene = *sc.SceneStr
	case sc.SceneID == nil || *sc.SceneID == 0 || *sc.SceneID < 0 || *sc.SceneID > 1<<32-1 || permanent && *sc.SceneID > 100_000:
		writeError(w, 40053)
		return
	default:
		scene = fmt.Sprint(*sc.SceneID)
	}
	now := s.clock.Now()
	t := &Ticket{AppID: acct.AppID, Scene: scene, URL: "http://weixin.qq.com/q/" + randomURLSafe(16), Permanent: permanent}
	answer := map[string]any{"url": t.URL}
	if permanent {
		// WeChat does not say whether asking again for a scene uses up another code; assume it does, so that
		// code which re-creates codes instead of keeping their tickets shows up in tests.
		if acct.permanentCodes >= s.permanentLimit {
			writeError(w, 45029)
			return
		}
		acct.permanentCodes++
	} else {
		seconds := int64(defaultQRLifetime)
		if req.ExpireSeconds != nil {
			seconds = *req.ExpireSeconds
		}
		if seconds <= 0 || seconds > maxTemporaryLifetime {
			writeError(w, 40097)
			return
		}
		t.ExpiresAt = now.Add(time.Duration(seconds) * time.Second)
		answer["expire_seconds"] = seconds
	}
	ticket := newTicket()
	s.tickets[ticket] = t
	answer["ticket"] = ticket
	writeJSON(w, answer)
}

// GET /cgi-bin/showqrcode?ticket=… (on mp.weixin.qq.com at WeChat): the image, or 404 for a ticket that
// is unknown or expired.
func (s *Server) handleShowQRCode(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	t, ok := s.tickets[r.URL.Query().Get("ticket")]
	expired := ok && !t.Permanent && !s.clock.Now().Before(t.ExpiresAt)
	s.mu.Unlock()
	if !ok || expired {
		http.NotFound(w, r)
		return
	}
	img, err := qrImage(t.URL)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(img)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func randomURLSafe(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomAlnum(n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

// randomToken looks like WeChat's access tokens: about 140 characters of letters, digits, _ and -.
func randomToken() string { return randomURLSafe(105) }

// newTicket looks like WeChat's tickets: standard base64, so it holds +, / or = and must be escaped in a URL.
func newTicket() string {
	for {
		t := base64.StdEncoding.EncodeToString(randomBytes(70))
		if strings.ContainsAny(t, "+/") {
			return t
		}
	}
}
