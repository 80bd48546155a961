// Package wechat speaks to WeChat's official-account platform: the API (access tokens, parametric QR codes)
// and the pieces a callback handler needs (signatures, message XML, safe-mode encryption). It holds no
// Hearth domain logic. Package wechattest is a stand-in for WeChat that speaks the same wire protocol.
package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/hearth-cdp/hearth"
)

const (
	// DefaultBaseURL is WeChat's API.
	DefaultBaseURL = "https://api.weixin.qq.com"
	// DefaultImageBaseURL is where a QR code's ticket is exchanged for its image.
	DefaultImageBaseURL = "https://mp.weixin.qq.com/cgi-bin/showqrcode"

	// MaxResponseSize bounds what is read of an API answer; WeChat's are a few hundred bytes.
	MaxResponseSize = 1 << 20

	defaultTimeout = 10 * time.Second
	// A token fetch is shared by every waiting caller, so it runs without any one caller's deadline; this
	// bounds it when the HTTP client has no timeout of its own.
	tokenFetchTimeout = 30 * time.Second
	// Refresh a token when this much of its life remains (a tenth of it, for a short-lived one): WeChat keeps
	// the old token valid for five minutes after a new one is issued, so a refresh never breaks calls in flight.
	refreshMargin = 5 * time.Minute
)

// ClientOptions configure a Client. AppID and AppSecret are the official account's developer credentials.
type ClientOptions struct {
	AppID        string
	AppSecret    string
	BaseURL      string       // default DefaultBaseURL; tests point it at wechattest
	ImageBaseURL string       // default DefaultImageBaseURL
	HTTPClient   *http.Client // default: a 10 s timeout and no redirects
	Clock        hearth.Clock // default hearth.SystemClock; token expiry is measured on it
}

// Client calls WeChat's official-account API for one account. It is safe for concurrent use.
//
// The access token is WeChat's stable token (/cgi-bin/stable_token), cached in this process: WeChat answers
// every caller of an account the same one until its last five minutes, so several Hearth nodes sharing an
// account share it too, rather than each fetch of /cgi-bin/token retiring the token the others hold. A call
// whose token WeChat rejects all the same (someone forced a refresh) fetches again and tries once more.
type Client struct {
	appID, appSecret      string
	baseURL, imageBaseURL string
	http                  *http.Client
	clock                 hearth.Clock

	fetches singleflight.Group

	mu        sync.Mutex
	token     string
	refreshAt time.Time // when the token should be replaced
	expiresAt time.Time // when WeChat stops accepting it
}

// NewClient returns a client for one official account.
func NewClient(opts ClientOptions) *Client {
	c := &Client{
		appID:        opts.AppID,
		appSecret:    opts.AppSecret,
		baseURL:      strings.TrimRight(opts.BaseURL, "/"),
		imageBaseURL: opts.ImageBaseURL,
		http:         opts.HTTPClient,
		clock:        opts.Clock,
	}
	if c.baseURL == "" {
		c.baseURL = DefaultBaseURL
	}
	if c.imageBaseURL == "" {
		c.imageBaseURL = DefaultImageBaseURL
	}
	if c.http == nil {
		c.http = &http.Client{
			Timeout: defaultTimeout,
			// WeChat never redirects; following one would send the secret in the query elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.clock == nil {
		c.clock = hearth.SystemClock{}
	}
	return c
}

// AccessToken returns a valid access token, from the cache when it has one that is not about to expire.
// Concurrent callers share one fetch.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	if token, fresh, _ := c.cached(); fresh {
		return token, nil
	}
	result := c.fetches.DoChan("token", func() (any, error) {
		if token, fresh, _ := c.cached(); fresh {
			return token, nil // another flight refreshed it while this one was being set up
		}
		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenFetchTimeout)
		defer cancel()
		return c.fetchToken(fetchCtx)
	})
	select {
	case r := <-result:
		if r.Err != nil {
			// A refresh that fails while the old token still has minutes left is no reason to fail the call.
			if token, _, valid := c.cached(); valid {
				return token, nil
			}
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", unavailable("wechat.access_token", "Gave up waiting for a WeChat access token.", ctx.Err())
	}
}

// cached returns the cached token, whether it is fresh (no refresh due) and whether WeChat still accepts it.
func (c *Client) cached() (token string, fresh, valid bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" {
		return "", false, false
	}
	now := c.clock.Now()
	return c.token, now.Before(c.refreshAt), now.Before(c.expiresAt)
}

// forgetToken drops the cached token if it is still the one WeChat rejected, so that a token fetched
// meanwhile by another caller survives.
func (c *Client) forgetToken(rejected string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == rejected {
		c.token, c.refreshAt, c.expiresAt = "", time.Time{}, time.Time{}
	}
}

func (c *Client) fetchToken(ctx context.Context) (string, error) {
	const op = "wechat.access_token"
	// The secret goes in the body, never in a URL that a proxy might log.
	body, err := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": c.appID, "secret": c.appSecret, "force_refresh": false})
	if err != nil {
		return "", &hearth.Error{Kind: hearth.Internal, Op: op, Err: err}
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	start := c.clock.Now()
	if err := c.roundTrip(ctx, op, http.MethodPost, "/cgi-bin/stable_token", body, &answer); err != nil {
		return "", err
	}
	if answer.AccessToken == "" || answer.ExpiresIn <= 0 {
		return "", unavailable(op, "WeChat answered without an access token.",
			fmt.Errorf("wechat: token answer has an empty token or expires_in %d", answer.ExpiresIn))
	}
	// The life is counted from before the request, so that a slow answer errs on the early side.
	life := time.Duration(answer.ExpiresIn) * time.Second
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = answer.AccessToken
	c.expiresAt = start.Add(life)
	c.refreshAt = c.expiresAt.Add(-min(refreshMargin, life/10))
	return c.token, nil
}

// call makes an API call that needs an access token. When WeChat rejects the token (revoked, expired, or
// replaced by a fetch elsewhere), it fetches a new one and tries once more.
func (c *Client) call(ctx context.Context, op, path string, body, out any) error {
	var payload bytes.Buffer
	enc := json.NewEncoder(&payload)
	enc.SetEscapeHTML(false) // WeChat reads the JSON as it is; \u003c in a scene would stay literal
	if err := enc.Encode(body); err != nil {
		return &hearth.Error{Kind: hearth.Internal, Op: op, Err: fmt.Errorf("wechat: encode request: %w", err)}
	}
	for attempt := 1; ; attempt++ {
		token, err := c.AccessToken(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		err = c.roundTrip(ctx, op, http.MethodPost, path+"?access_token="+url.QueryEscape(token), payload.Bytes(), out)
		if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.tokenRejected() && attempt == 1 {
			c.forgetToken(token)
			continue
		}
		return err
	}
}

// roundTrip sends one request and decodes the JSON answer into out. WeChat answers errors with HTTP 200 and
// a non-zero errcode; those come back as a classified *hearth.Error wrapping an *APIError.
func (c *Client) roundTrip(ctx context.Context, op, method, pathAndQuery string, body []byte, out any) error {
	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+pathAndQuery, reqBody)
	if err != nil {
		return &hearth.Error{Kind: hearth.Internal, Op: op, Err: fmt.Errorf("wechat: build request: %w", redactURLError(err))}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("User-Agent", "Hearth/"+hearth.Version)
	resp, err := c.http.Do(req)
	if err != nil {
		return unavailable(op, "WeChat cannot be reached.", fmt.Errorf("wechat: %w", redactURLError(err)))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return unavailable(op, "WeChat's answer was cut off.", fmt.Errorf("wechat: read answer: %w", err))
	}
	path := stripQuery(pathAndQuery)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return &hearth.Error{Kind: hearth.RateLimited, Op: op, Msg: "WeChat asks to slow down; try again later.",
			Err: fmt.Errorf("wechat: %s answered HTTP %d", path, resp.StatusCode)}
	case resp.StatusCode >= 500:
		return unavailable(op, "WeChat is not answering properly; try again later.",
			fmt.Errorf("wechat: %s answered HTTP %d", path, resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return &hearth.Error{Kind: hearth.Internal, Op: op, Msg: "WeChat answered with an unexpected status.",
			Err: fmt.Errorf("wechat: %s answered HTTP %d", path, resp.StatusCode)}
	case len(data) > MaxResponseSize:
		return unavailable(op, "WeChat's answer is too large.", fmt.Errorf("wechat: %s answered more than %d bytes", path, MaxResponseSize))
	}
	// The body is never quoted in errors: a token answer carries the token.
	var status struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(data, &status); err != nil {
		return unavailable(op, "WeChat answered with something that is not JSON.",
			fmt.Errorf("wechat: %s answered %d bytes of %q that do not decode: %w", path, len(data), resp.Header.Get("Content-Type"), err))
	}
	if status.ErrCode != 0 {
		return classify(op, &APIError{Code: status.ErrCode, Message: status.ErrMsg})
	}
	if err := json.Unmarshal(data, out); err != nil {
		return unavailable(op, "WeChat answered in an unexpected shape.", fmt.Errorf("wechat: decode %s answer: %w", path, err))
	}
	return nil
}
