package app

import (
	"context"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
	"github.com/hearth-cdp/hearth/internal/wechat"
)

// wechatPlatform calls WeChat's API for the touchpoint part, with one client per account, so that each
// account's access token is fetched once and reused until it is due (WeChat allows 2,000 fetches a day).
type wechatPlatform struct {
	mu      sync.Mutex
	clients map[string]wechatClient // by account id
}

type wechatClient struct {
	creds  touchpoint.WeChatCredentials // what the client was made with; a change makes a new one
	client *wechat.Client
}

func newWeChatPlatform() *wechatPlatform { return &wechatPlatform{clients: map[string]wechatClient{}} }

func (p *wechatPlatform) client(acct touchpoint.WeChatCredentials) *wechat.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[acct.AccountID]; ok && c.creds == acct {
		return c.client
	}
	opts := wechat.ClientOptions{AppID: acct.AppID, AppSecret: acct.AppSecret}
	if acct.APIBaseURL != "" {
		// A stand-in for WeChat (or a proxy in front of it) serves the images beside the API.
		opts.BaseURL, opts.ImageBaseURL = acct.APIBaseURL, acct.APIBaseURL+"/cgi-bin/showqrcode"
	}
	c := wechatClient{creds: acct, client: wechat.NewClient(opts)}
	p.clients[acct.AccountID] = c
	return c.client
}

func (p *wechatPlatform) CreateQRCode(ctx context.Context, acct touchpoint.WeChatCredentials, scene string, permanent bool, expiresIn time.Duration) (touchpoint.WeChatQRCode, error) {
	c := p.client(acct)
	code, err := c.CreateQRCode(ctx, wechat.QRCodeRequest{Scene: scene, Permanent: permanent, ExpiresIn: expiresIn})
	if err != nil {
		return touchpoint.WeChatQRCode{}, err
	}
	out := touchpoint.WeChatQRCode{Ticket: code.Ticket, URL: code.URL, ImageURL: c.QRCodeImageURL(code.Ticket)}
	if !code.ExpiresAt.IsZero() {
		at := code.ExpiresAt.UTC()
		out.ExpiresAt = &at
	}
	return out, nil
}

// wechatSources makes the source each WeChat account's events are recorded under.
type wechatSources struct{ sources *collect.Sources }

func (s wechatSources) CreateWeChatSource(ctx context.Context, name string) (string, error) {
	src, err := s.sources.Create(ctx, name, collect.KindWeChat)
	return src.ID, err
}

func (s wechatSources) RenameSource(ctx context.Context, id, name string) error {
	_, err := s.sources.Rename(ctx, id, name)
	return err
}

// wechatEndpoints gives the callback the accounts the touchpoint part keeps, paused while their source is
// disabled.
type wechatEndpoints struct {
	accounts *touchpoint.WeChatAccounts
	sources  *collect.Sources
}

func (e wechatEndpoints) WeChatAccount(ctx context.Context, slug string) (collect.WeChatAccount, error) {
	ep, err := e.accounts.Endpoint(ctx, slug)
	if err != nil {
		return collect.WeChatAccount{}, err
	}
	src, err := e.sources.Get(ctx, ep.SourceID)
	if err != nil {
		return collect.WeChatAccount{}, err
	}
	return collect.WeChatAccount{ID: ep.AccountID, SourceID: ep.SourceID, Paused: !src.Enabled,
		Callback: wechat.Callback{Token: ep.Token, EncodingAESKey: ep.EncodingAESKey, AppID: ep.AppID}}, nil
}
