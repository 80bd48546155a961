package wechat

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hearth-cdp/hearth"
)

// APIError is an error WeChat answered with: {"errcode":N,"errmsg":"…"}. It reaches callers wrapped in a
// *hearth.Error whose kind says what to do about it; errors.As finds it for the number.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wechat errcode %d: %s", e.Code, e.Message)
}

// WeChat's error codes that Hearth meets or acts on. The full list is in WeChat's global return code page.
const (
	codeBusy               = -1
	codeInvalidCredential  = 40001 // the access token is invalid or not the latest (or, on /token, a bad secret)
	codeInvalidGrantType   = 40002
	codeInvalidAppID       = 40013
	codeInvalidAccessToken = 40014
	codeInvalidActionName  = 40052
	codeInvalidActionInfo  = 40053
	codeInvalidArgs        = 40097
	codeInvalidAppSecret   = 40125
	codeIPNotWhitelisted   = 40164
	codeAccessTokenMissing = 41001
	codeAppIDMissing       = 41002
	codeAppSecretMissing   = 41004
	codeAccessTokenExpired = 42001
	codeRequirePOST        = 43002
	codeEmptyPostData      = 44002
	codeDailyQuota         = 45009
	codeMinuteQuota        = 45011
	codeQRCodeLimit        = 45029
	codeResponseLimit      = 45047 // customer-service replies per user
	codeDataFormat         = 47001
	codeAPIUnauthorized    = 48001
	codeUserLimited        = 50001
	codeAPIForbidden       = 50002
)

// tokenRejected reports whether the error says the access token itself is no good, so that a fresh one and
// one retry may succeed.
func (e *APIError) tokenRejected() bool {
	switch e.Code {
	case codeInvalidCredential, codeInvalidAccessToken, codeAccessTokenExpired:
		return true
	}
	return false
}

// classify wraps an *APIError in a hearth.Error of the kind that says what a caller should do about it,
// with a message a marketer can act on.
func classify(op string, e *APIError) error {
	he := &hearth.Error{Op: op, Err: e}
	switch e.Code {
	case codeBusy:
		he.Kind, he.Msg = hearth.Unavailable, "WeChat is busy; try again in a moment."
	case codeDailyQuota, codeMinuteQuota, codeResponseLimit:
		he.Kind, he.Msg = hearth.RateLimited, "The WeChat account has used up its API quota for now; try again later."
	case codeInvalidAppID, codeInvalidAppSecret:
		he.Kind, he.Msg = hearth.Unauthenticated, "WeChat rejected the account's AppID or AppSecret."
	case codeInvalidCredential, codeInvalidAccessToken, codeAccessTokenExpired:
		he.Kind, he.Msg = hearth.Unauthenticated, "WeChat rejected the account's credentials."
	case codeIPNotWhitelisted:
		he.Kind, he.Msg = hearth.Forbidden, "WeChat refuses calls from this server's IP address: add it to the account's IP whitelist."
	case codeAPIUnauthorized, codeUserLimited, codeAPIForbidden:
		he.Kind, he.Msg = hearth.Forbidden, "This WeChat account is not allowed to use this API (it may need to be a verified service account)."
	case codeQRCodeLimit:
		he.Kind, he.Code, he.Msg = hearth.Forbidden, "qrcode_limit", "The WeChat account has reached its limit of permanent QR codes."
	case codeInvalidGrantType, codeInvalidActionName, codeInvalidActionInfo, codeInvalidArgs,
		codeAccessTokenMissing, codeAppIDMissing, codeAppSecretMissing, codeRequirePOST, codeEmptyPostData, codeDataFormat:
		he.Kind, he.Msg = hearth.Invalid, fmt.Sprintf("WeChat rejected the request (errcode %d).", e.Code)
	default:
		he.Kind, he.Msg = hearth.Internal, fmt.Sprintf("WeChat answered with an unexpected error (errcode %d).", e.Code)
	}
	return he
}

// unavailable is the error for a WeChat that cannot be reached or answers nonsense.
func unavailable(op, msg string, err error) error {
	return &hearth.Error{Kind: hearth.Unavailable, Op: op, Msg: msg, Err: err}
}

// invalid is the error for input that is refused before anything is sent, or a callback that is refused.
func invalid(op, msg string, err error) error {
	return &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: msg, Err: err}
}

// redactURLError drops the query from the URL that net/http puts in its errors: on WeChat's API the query
// carries the app secret or the access token, and errors end up in logs.
// http.Client.Do returns a *url.Error itself, never wrapped.
func redactURLError(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	redacted := *ue
	redacted.URL = stripQuery(ue.URL)
	return &redacted
}

func stripQuery(rawURL string) string {
	if i := strings.IndexAny(rawURL, "?#"); i >= 0 {
		return rawURL[:i]
	}
	return rawURL
}
