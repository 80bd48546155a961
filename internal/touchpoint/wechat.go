package touchpoint

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth"
)

// WeChat official accounts. A connected account has a callback URL, /wechat/{slug}, where WeChat reports
// follows, scans and messages (package collect records them), and makes parametric QR codes for touchpoints:
// codes whose scene is the touchpoint's token, so that a scan, by a new follower or an old one, is a touch.

// WeChatAccount is an official account connected to Hearth, as the admin API shows it: never its secrets.
type WeChatAccount struct {
	ID       string
	Name     string
	Slug     string // the {account} of the callback URL: lowercase letters, digits and dashes
	AppID    string
	SourceID string // the source of kind wechat that the account's events are recorded under
	// APIBaseURL is where WeChat's API is called; empty for WeChat's own. Tests point it at a stand-in.
	APIBaseURL  string
	SafeMode    bool   // the account has an EncodingAESKey: callbacks are encrypted, plain ones refused
	CallbackURL string // what to paste into WeChat's console as the server URL
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// StoredWeChatAccount is an account as the store keeps it, its secrets sealed with the master key.
type StoredWeChatAccount struct {
	ID             string
	Name           string
	Slug           string
	AppID          string
	AppSecret      []byte // sealed
	Token          []byte // sealed: the callback token of the account's server configuration
	EncodingAESKey []byte // sealed; nil for an account in plain-text mode
	SourceID       string
	APIBaseURL     string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// WeChatAccountInput is what a marketer fills in to connect an account, or to change one: on update, nil
// fields keep their value. Secrets are write-only. An empty EncodingAESKey on update turns safe mode off.
type WeChatAccountInput struct {
	Name           *string
	Slug           *string // default on create: the AppID in lower case
	AppID          *string
	AppSecret      *string
	Token          *string
	EncodingAESKey *string
	APIBaseURL     *string
}

// WeChatQRCode is a parametric QR code made on WeChat for a touchpoint.
type WeChatQRCode struct {
	ID           string
	AccountID    string
	TouchpointID string
	Scene        string // the touchpoint's token, as the code reports it
	Ticket       string // exchanged at WeChat for the code's image
	URL          string // what the code encodes
	ImageURL     string // the image of the code, at WeChat
	Permanent    bool
	ExpiresAt    *time.Time // nil for a permanent code
	CreatedAt    time.Time
}

// WeChatQRRequest asks for a parametric QR code of a touchpoint on an account.
type WeChatQRRequest struct {
	AccountID string
	Permanent bool
	ExpiresIn time.Duration // temporary codes: 1 minute to 30 days, in whole seconds; default 30 days
}

// The limits WeChat sets on temporary parametric QR codes.
const (
	MinWeChatQRLifetime = time.Minute
	MaxWeChatQRLifetime = 30 * 24 * time.Hour
)

// WeChatEndpoint is what the callback of an account needs: the source its events go to and the opened
// secrets that check WeChat's signatures and decrypt its messages.
type WeChatEndpoint struct {
	AccountID      string
	SourceID       string
	AppID          string
	Token          string
	EncodingAESKey string // empty in plain-text mode
}

// WeChatCredentials are what calling WeChat's API for an account takes.
type WeChatCredentials struct {
	AccountID  string
	AppID      string
	AppSecret  string
	APIBaseURL string // empty for WeChat's own
}

// WeChatPlatform is WeChat's API, as far as Hearth calls it. The app provides it with package wechat, keeping
// one client (and its cached access token) per account.
type WeChatPlatform interface {
	// CreateQRCode makes a parametric QR code with a string scene and returns its Ticket, URL, ImageURL and,
	// for a temporary one, ExpiresAt.
	CreateQRCode(ctx context.Context, acct WeChatCredentials, scene string, permanent bool, expiresIn time.Duration) (WeChatQRCode, error)
}

// WeChatSources makes and names the source an account's events are recorded under.
type WeChatSources interface {
	CreateWeChatSource(ctx context.Context, name string) (id string, err error)
	RenameSource(ctx context.Context, id, name string) error
}

// WeChatStore is what WeChat accounts need from storage.
type WeChatStore interface {
	CreateWeChatAccount(ctx context.Context, a StoredWeChatAccount) error
	WeChatAccount(ctx context.Context, id string) (StoredWeChatAccount, error)
	WeChatAccountBySlug(ctx context.Context, slug string) (StoredWeChatAccount, error)
	ListWeChatAccounts(ctx context.Context) ([]StoredWeChatAccount, error)
	UpdateWeChatAccount(ctx context.Context, a StoredWeChatAccount) error

	// CreateWeChatQRCode stores a code; a second permanent code of an account and scene is a Conflict.
	CreateWeChatQRCode(ctx context.Context, c WeChatQRCode) error
	// PermanentWeChatQRCodes lists the permanent codes of a touchpoint on an account, newest first.
	PermanentWeChatQRCodes(ctx context.Context, accountID, touchpointID string) ([]WeChatQRCode, error)
	// WeChatQRCodes lists a touchpoint's codes, newest first.
	WeChatQRCodes(ctx context.Context, touchpointID string) ([]WeChatQRCode, error)
}

// WeChatOptions configure WeChat accounts.
type WeChatOptions struct {
	// CacheFor is how long a callback reuses an account's secrets before reading them again; changes made on
	// another node take at most this long to show. Default 1 s.
	CacheFor time.Duration
}

// WeChatAccounts connects official accounts and makes parametric QR codes for touchpoints on them.
type WeChatAccounts struct {
	store    WeChatStore
	touch    *Service
	platform WeChatPlatform
	sources  WeChatSources
	opts     WeChatOptions

	mu        sync.Mutex
	endpoints map[string]endpointEntry // by slug
}

type endpointEntry struct {
	endpoint WeChatEndpoint
	err      error // NotFound: no such account
	loadedAt time.Time
}

// The purposes that bind an account's sealed secrets to their use and their account.
func secretPurpose(what, accountID string) string { return "hearth/wechat/" + what + "/" + accountID }

// NewWeChatAccounts builds the service on the touchpoint service, whose master key seals the secrets and
// whose tokens are the codes' scenes.
func NewWeChatAccounts(store WeChatStore, touch *Service, platform WeChatPlatform, sources WeChatSources, opts WeChatOptions) *WeChatAccounts {
	if opts.CacheFor == 0 {
		opts.CacheFor = time.Second
	}
	return &WeChatAccounts{store: store, touch: touch, platform: platform, sources: sources, opts: opts, endpoints: map[string]endpointEntry{}}
}

// The shapes WeChat's console gives these values.
const (
	maxSlugLen        = 40
	minCallbackToken  = 3
	maxCallbackToken  = 32
	encodingAESKeyLen = 43
)

// wechatAccountProblems checks an account's fields and the secrets given, and returns every problem.
func wechatAccountProblems(a StoredWeChatAccount, secret, token, aesKey *string) []error {
	const op = "touchpoint.wechat_account"
	errs := []error{validateText(op, "name", a.Name, true, 100)}
	if !validSlug(a.Slug) {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "slug must be 1 to %d lowercase letters, digits and dashes, not starting or ending with a dash", maxSlugLen))
	}
	if !alnum(a.AppID, 1, 64) {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "app_id must be the account's AppID, like wx1234567890abcdef"))
	}
	if secret != nil && !printable(*secret, 1, 128) {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "app_secret must be the account's AppSecret, from the developer settings"))
	}
	if token != nil && !alnum(*token, minCallbackToken, maxCallbackToken) {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "token must be %d to %d letters and digits, as set in the account's server configuration", minCallbackToken, maxCallbackToken))
	}
	if aesKey != nil && *aesKey != "" && !validEncodingAESKey(*aesKey) {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "encoding_aes_key must be the %d characters of the account's EncodingAESKey", encodingAESKeyLen))
	}
	if a.APIBaseURL != "" {
		if u, err := url.Parse(a.APIBaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || len(a.APIBaseURL) > 500 {
			errs = append(errs, hearth.Errorf(hearth.Invalid, op, "api_base_url must be an http or https address without a query, or empty for WeChat's"))
		}
	}
	return errs
}

func validSlug(s string) bool {
	if s == "" || len(s) > maxSlugLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func alnum(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func printable(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validEncodingAESKey checks the shape WeChat's console gives an EncodingAESKey: 43 characters of base64.
func validEncodingAESKey(s string) bool {
	if len(s) != encodingAESKeyLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// sourceName is the name of an account's source, among the other sources.
func sourceName(accountName string) string { return "WeChat: " + strings.TrimSpace(accountName) }

// CreateAccount connects an official account: it checks the fields, makes the account's source and stores
// the account with its secrets sealed. Name, AppID, AppSecret and Token are required; an EncodingAESKey
// puts the account in safe mode.
func (w *WeChatAccounts) CreateAccount(ctx context.Context, in WeChatAccountInput) (WeChatAccount, error) {
	const op = "touchpoint.create_wechat_account"
	now := w.touch.clock.Now()
	a := StoredWeChatAccount{ID: hearth.NewID(), CreatedAt: now, UpdatedAt: now}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&a.Name, in.Name)
	set(&a.AppID, in.AppID)
	set(&a.APIBaseURL, in.APIBaseURL)
	a.APIBaseURL = strings.TrimRight(a.APIBaseURL, "/")
	set(&a.Slug, in.Slug)
	if a.Slug == "" {
		a.Slug = strings.ToLower(a.AppID)
	}
	secret, token, aesKey := trimmed(in.AppSecret), trimmed(in.Token), trimmed(in.EncodingAESKey)
	if secret != nil && *secret == "" {
		secret = nil
	}
	if token != nil && *token == "" {
		token = nil
	}
	problems := wechatAccountProblems(a, secret, token, aesKey)
	if secret == nil {
		problems = append(problems, hearth.Errorf(hearth.Invalid, op, "app_secret is required"))
	}
	if token == nil {
		problems = append(problems, hearth.Errorf(hearth.Invalid, op, "token is required"))
	}
	if err := joinInvalid(op, problems); err != nil {
		return WeChatAccount{}, err
	}
	if err := w.checkUnique(ctx, op, a); err != nil {
		return WeChatAccount{}, err
	}
	w.seal(&a, secret, token, aesKey)
	srcID, err := w.sources.CreateWeChatSource(ctx, sourceName(a.Name))
	if hearth.KindOf(err) == hearth.Conflict {
		return WeChatAccount{}, &hearth.Error{Kind: hearth.Conflict, Op: op, Msg: fmt.Sprintf("A source named %q already exists: give the account another name.", sourceName(a.Name)), Err: err}
	}
	if err != nil {
		return WeChatAccount{}, err
	}
	a.SourceID = srcID
	if err := w.store.CreateWeChatAccount(ctx, a); err != nil {
		// Only a race with another request for the same slug or AppID gets here; the source stays behind.
		return WeChatAccount{}, conflictAccount(op, err)
	}
	w.forgetEndpoints()
	return w.view(a), nil
}

func trimmed(s *string) *string {
	if s == nil {
		return nil
	}
	t := strings.TrimSpace(*s)
	return &t
}

// checkUnique reports a slug or AppID that another account has, each in its own words.
func (w *WeChatAccounts) checkUnique(ctx context.Context, op string, a StoredWeChatAccount) error {
	all, err := w.store.ListWeChatAccounts(ctx)
	if err != nil {
		return err
	}
	for _, o := range all {
		switch {
		case o.ID == a.ID:
		case o.Slug == a.Slug:
			return hearth.Errorf(hearth.Conflict, op, "Another WeChat account has the slug %q.", a.Slug)
		case o.AppID == a.AppID:
			return hearth.Errorf(hearth.Conflict, op, "This AppID is connected already, as %q.", o.Name)
		}
	}
	return nil
}

func conflictAccount(op string, err error) error {
	if hearth.KindOf(err) == hearth.Conflict {
		return &hearth.Error{Kind: hearth.Conflict, Op: op, Msg: "Another WeChat account has this slug or AppID.", Err: err}
	}
	return err
}

// seal seals the secrets that are given into the account.
func (w *WeChatAccounts) seal(a *StoredWeChatAccount, secret, token, aesKey *string) {
	m := w.touch.master
	if secret != nil {
		a.AppSecret = m.Seal([]byte(*secret), secretPurpose("app-secret", a.ID))
	}
	if token != nil {
		a.Token = m.Seal([]byte(*token), secretPurpose("token", a.ID))
	}
	if aesKey != nil {
		a.EncodingAESKey = nil
		if *aesKey != "" {
			a.EncodingAESKey = m.Seal([]byte(*aesKey), secretPurpose("encoding-aes-key", a.ID))
		}
	}
}

// open opens one of an account's sealed secrets.
func (w *WeChatAccounts) open(a StoredWeChatAccount, what string, sealed []byte) (string, error) {
	if sealed == nil {
		return "", nil
	}
	b, err := w.touch.master.Open(sealed, secretPurpose(what, a.ID))
	if err != nil {
		return "", fmt.Errorf("touchpoint: wechat account %s %s: %w", a.ID, what, err)
	}
	return string(b), nil
}

func (w *WeChatAccounts) view(a StoredWeChatAccount) WeChatAccount {
	return WeChatAccount{ID: a.ID, Name: a.Name, Slug: a.Slug, AppID: a.AppID, SourceID: a.SourceID, APIBaseURL: a.APIBaseURL,
		SafeMode: a.EncodingAESKey != nil, CallbackURL: w.CallbackURL(a.Slug), CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

// CallbackURL is the URL of an account's callback, to paste into WeChat's console as the server URL.
func (w *WeChatAccounts) CallbackURL(slug string) string {
	return w.touch.opts.PublicURL + "/wechat/" + slug
}

// Account returns an account.
func (w *WeChatAccounts) Account(ctx context.Context, id string) (WeChatAccount, error) {
	a, err := w.store.WeChatAccount(ctx, id)
	if err != nil {
		return WeChatAccount{}, err
	}
	return w.view(a), nil
}

// Accounts lists the accounts, newest first.
func (w *WeChatAccounts) Accounts(ctx context.Context) ([]WeChatAccount, error) {
	list, err := w.store.ListWeChatAccounts(ctx)
	out := make([]WeChatAccount, len(list))
	for i, a := range list {
		out[i] = w.view(a)
	}
	return out, err
}

// UpdateAccount changes an account: the fields of in that are set. A new name renames its source too.
func (w *WeChatAccounts) UpdateAccount(ctx context.Context, id string, in WeChatAccountInput) (WeChatAccount, error) {
	const op = "touchpoint.update_wechat_account"
	a, err := w.store.WeChatAccount(ctx, id)
	if err != nil {
		return WeChatAccount{}, err
	}
	oldName := a.Name
	for _, f := range []struct {
		dst *string
		v   *string
	}{{&a.Name, in.Name}, {&a.Slug, in.Slug}, {&a.AppID, in.AppID}, {&a.APIBaseURL, in.APIBaseURL}} {
		if f.v != nil {
			*f.dst = strings.TrimSpace(*f.v)
		}
	}
	a.APIBaseURL = strings.TrimRight(a.APIBaseURL, "/")
	secret, token, aesKey := trimmed(in.AppSecret), trimmed(in.Token), trimmed(in.EncodingAESKey)
	if err := joinInvalid(op, wechatAccountProblems(a, secret, token, aesKey)); err != nil {
		return WeChatAccount{}, err
	}
	if err := w.checkUnique(ctx, op, a); err != nil {
		return WeChatAccount{}, err
	}
	w.seal(&a, secret, token, aesKey)
	if a.Name != oldName {
		err := w.sources.RenameSource(ctx, a.SourceID, sourceName(a.Name))
		if hearth.KindOf(err) == hearth.Conflict {
			return WeChatAccount{}, &hearth.Error{Kind: hearth.Conflict, Op: op, Msg: fmt.Sprintf("A source named %q already exists: give the account another name.", sourceName(a.Name)), Err: err}
		}
		if err != nil {
			return WeChatAccount{}, err
		}
	}
	a.UpdatedAt = w.touch.clock.Now()
	if err := w.store.UpdateWeChatAccount(ctx, a); err != nil {
		return WeChatAccount{}, conflictAccount(op, err)
	}
	w.forgetEndpoints()
	return w.view(a), nil
}

// Endpoint returns what the callback of the account with this slug needs; NotFound when there is none.
// It is read again at most every CacheFor.
func (w *WeChatAccounts) Endpoint(ctx context.Context, slug string) (WeChatEndpoint, error) {
	if !validSlug(slug) { // no account has it, and the store need not be asked (PostgreSQL refuses a NUL)
		return WeChatEndpoint{}, hearth.Errorf(hearth.NotFound, "touchpoint.wechat_endpoint", "No WeChat account has this callback URL.")
	}
	now := w.touch.clock.Now()
	w.mu.Lock()
	e, ok := w.endpoints[slug]
	w.mu.Unlock()
	if ok && now.Sub(e.loadedAt) < w.opts.CacheFor {
		return e.endpoint, e.err
	}
	e = endpointEntry{loadedAt: now}
	a, err := w.store.WeChatAccountBySlug(ctx, slug)
	switch {
	case hearth.KindOf(err) == hearth.NotFound:
		e.err = hearth.Errorf(hearth.NotFound, "touchpoint.wechat_endpoint", "No WeChat account has this callback URL.")
	case err != nil:
		return WeChatEndpoint{}, err
	default:
		e.endpoint = WeChatEndpoint{AccountID: a.ID, SourceID: a.SourceID, AppID: a.AppID}
		if e.endpoint.Token, err = w.open(a, "token", a.Token); err != nil {
			return WeChatEndpoint{}, err
		}
		if e.endpoint.EncodingAESKey, err = w.open(a, "encoding-aes-key", a.EncodingAESKey); err != nil {
			return WeChatEndpoint{}, err
		}
	}
	w.mu.Lock()
	if len(w.endpoints) > 10_000 { // unknown slugs must not grow it without bound
		clear(w.endpoints)
	}
	w.endpoints[slug] = e
	w.mu.Unlock()
	return e.endpoint, e.err
}

func (w *WeChatAccounts) forgetEndpoints() {
	w.mu.Lock()
	clear(w.endpoints)
	w.mu.Unlock()
}

// CreateQR makes a parametric QR code of a touchpoint on an account, whose scene is the touchpoint's token.
// A permanent code is made once: asking again returns the one made before (created false), as long as its
// token still verifies. A temporary code is made anew each time.
func (w *WeChatAccounts) CreateQR(ctx context.Context, touchpointID string, req WeChatQRRequest) (code WeChatQRCode, created bool, err error) {
	const op = "touchpoint.wechat_qr"
	if req.Permanent {
		if req.ExpiresIn != 0 {
			return WeChatQRCode{}, false, hearth.Errorf(hearth.Invalid, op, "A permanent QR code has no expiry.")
		}
	} else {
		if req.ExpiresIn == 0 {
			req.ExpiresIn = MaxWeChatQRLifetime
		}
		if req.ExpiresIn < MinWeChatQRLifetime || req.ExpiresIn > MaxWeChatQRLifetime || req.ExpiresIn%time.Second != 0 {
			return WeChatQRCode{}, false, hearth.Errorf(hearth.Invalid, op, "A temporary QR code must expire after 1 minute to 30 days, in whole seconds.")
		}
	}
	if req.AccountID == "" {
		return WeChatQRCode{}, false, hearth.Errorf(hearth.Invalid, op, "account_id is required.")
	}
	t, err := w.touch.Touchpoint(ctx, touchpointID)
	if err != nil {
		return WeChatQRCode{}, false, err
	}
	a, err := w.store.WeChatAccount(ctx, req.AccountID)
	if hearth.KindOf(err) == hearth.NotFound {
		return WeChatQRCode{}, false, hearth.Errorf(hearth.Invalid, op, "account_id names no WeChat account.")
	}
	if err != nil {
		return WeChatQRCode{}, false, err
	}
	if req.Permanent {
		if code, ok, err := w.reusable(ctx, a.ID, t.ID); err != nil || ok {
			return code, false, err
		}
	}
	scene, err := w.touch.Token(t, 0, time.Time{})
	if err != nil {
		return WeChatQRCode{}, false, err
	}
	secret, err := w.open(a, "app-secret", a.AppSecret)
	if err != nil {
		return WeChatQRCode{}, false, err
	}
	made, err := w.platform.CreateQRCode(ctx, WeChatCredentials{AccountID: a.ID, AppID: a.AppID, AppSecret: secret, APIBaseURL: a.APIBaseURL},
		scene, req.Permanent, req.ExpiresIn)
	if hearth.KindOf(err) == hearth.Unauthenticated {
		// WeChat refusing the account's AppSecret says nothing of the caller's own credentials.
		return WeChatQRCode{}, false, &hearth.Error{Kind: hearth.Invalid, Op: op, Code: "wechat_credentials", Msg: hearth.MessageOf(err), Err: err}
	}
	if err != nil {
		return WeChatQRCode{}, false, err
	}
	code = WeChatQRCode{ID: hearth.NewID(), AccountID: a.ID, TouchpointID: t.ID, Scene: scene, Ticket: made.Ticket, URL: made.URL,
		ImageURL: made.ImageURL, Permanent: req.Permanent, CreatedAt: w.touch.clock.Now()}
	if !req.Permanent {
		code.ExpiresAt = made.ExpiresAt
	}
	err = w.store.CreateWeChatQRCode(ctx, code)
	if req.Permanent && hearth.KindOf(err) == hearth.Conflict {
		// Another request made the same code at the same time: hand out the one that was kept.
		if kept, ok, err := w.reusable(ctx, a.ID, t.ID); err != nil || ok {
			return kept, false, err
		}
	}
	if err != nil {
		return WeChatQRCode{}, false, err
	}
	return code, true, nil
}

// reusable finds a permanent code of the touchpoint on the account whose scene still verifies: one made
// before the signing key was rotated still works until that key is retired.
func (w *WeChatAccounts) reusable(ctx context.Context, accountID, touchpointID string) (WeChatQRCode, bool, error) {
	codes, err := w.store.PermanentWeChatQRCodes(ctx, accountID, touchpointID)
	if err != nil {
		return WeChatQRCode{}, false, err
	}
	for _, c := range codes {
		if tok, err := w.touch.keys.Verify(c.Scene); err == nil && tok.Serial == 0 && tok.Expires.IsZero() {
			return c, true, nil
		}
	}
	return WeChatQRCode{}, false, nil
}

// QRCodes lists the parametric QR codes made for a touchpoint, newest first.
func (w *WeChatAccounts) QRCodes(ctx context.Context, touchpointID string) ([]WeChatQRCode, error) {
	if _, err := w.touch.Touchpoint(ctx, touchpointID); err != nil {
		return nil, err
	}
	return w.store.WeChatQRCodes(ctx, touchpointID)
}
