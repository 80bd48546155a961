package collect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/wechat"
)

// The WeChat callback: /wechat/{account}, where WeChat reports what the followers of an official account do.
// A scan of a parametric QR code whose scene is a touchpoint's token is a touch; follows, unfollows, menu taps
// and messages are track events. Each event names the person by their openid (context.externalIds, and as
// anonymousId, since an openid is to an account what a cookie is to a browser); identity resolution links
// openids to profiles. What a person writes is never stored: of a message only its type and length.

// The events the callback records, besides touches.
const (
	WeChatFollowed        = "WeChat Followed"
	WeChatUnfollowed      = "WeChat Unfollowed"
	WeChatScanned         = "WeChat Scanned" // a scan of a code whose scene is refused or is not a Hearth token
	WeChatMenuClicked     = "WeChat Menu Clicked"
	WeChatMenuLinkOpened  = "WeChat Menu Link Opened"
	WeChatMessageReceived = "WeChat Message Received"
	WeChatEventReceived   = "WeChat Event Received" // any other event: only its name is kept
)

// WeChatOpenIDType is the external id type of an openid.
const WeChatOpenIDType = "wechat_openid"

// WeChatAccount is what the callback of one official account needs.
type WeChatAccount struct {
	ID       string
	SourceID string // its events are recorded under this source
	// Paused is set while that source is disabled: callbacks are answered, and nothing is recorded.
	Paused   bool
	Callback wechat.Callback
}

// WeChatAccounts finds the account of a callback URL; the touchpoint part keeps them.
type WeChatAccounts interface {
	// WeChatAccount returns the account whose callback URL ends in slug; NotFound when there is none.
	WeChatAccount(ctx context.Context, slug string) (WeChatAccount, error)
}

// WeChatOptions tune the callback.
type WeChatOptions struct {
	// ReplayWindow is how far a callback's timestamp may be from now. Default wechat.DefaultReplayWindow.
	ReplayWindow time.Duration
	// Deadline bounds the work on one callback: WeChat waits 5 s, then posts again. Past it the callback
	// answers 500, so that WeChat's retry (stored once) gets another chance. Default 4 s.
	Deadline time.Duration
}

// WeChatHandler serves an account's callback URL: GET for WeChat's check of the URL, POST for messages.
type WeChatHandler struct {
	accounts WeChatAccounts
	resolver TouchResolver
	log      Log
	clock    hearth.Clock
	logger   *slog.Logger
	opts     WeChatOptions
}

// NewWeChatHandler builds the callback handler.
func NewWeChatHandler(accounts WeChatAccounts, resolver TouchResolver, log Log, clock hearth.Clock, logger *slog.Logger, opts WeChatOptions) *WeChatHandler {
	if opts.ReplayWindow == 0 {
		opts.ReplayWindow = wechat.DefaultReplayWindow
	}
	if opts.Deadline == 0 {
		opts.Deadline = 4 * time.Second
	}
	return &WeChatHandler{accounts: accounts, resolver: resolver, log: log, clock: clock, logger: logger.With("component", "wechat"), opts: opts}
}

// Routes lists the callback's routes.
func (h *WeChatHandler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /wechat/{account}":  http.HandlerFunc(h.verifyURL),
		"POST /wechat/{account}": http.HandlerFunc(h.receive),
	}
}

// verifyURL answers the check WeChat makes when the URL is saved in its console: the echostr, signed.
func (h *WeChatHandler) verifyURL(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Deadline)
	defer cancel()
	slug := r.PathValue("account")
	acct, err := h.accounts.WeChatAccount(ctx, slug)
	if err != nil {
		h.fail(w, r, slug, err)
		return
	}
	echo, err := acct.Callback.VerifyEcho(r.URL.Query())
	if err != nil {
		h.fail(w, r, slug, err)
		return
	}
	writeText(w, http.StatusOK, []byte(echo))
}

// receive records a message: checked, decrypted, turned into events and appended durably, and only then
// answered "success". WeChat posts a message again when it has no answer in 5 s; the events' message ids
// come from the message, so that the log stores them once.
func (h *WeChatHandler) receive(w http.ResponseWriter, r *http.Request) {
	now := h.clock.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Deadline)
	defer cancel()
	slug := r.PathValue("account")
	acct, err := h.accounts.WeChatAccount(ctx, slug)
	if err != nil {
		h.fail(w, r, slug, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wechat.MaxMessageSize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			err = hearth.Errorf(hearth.TooLarge, "collect.wechat", "The message is larger than %d bytes.", wechat.MaxMessageSize)
		} else {
			err = &hearth.Error{Kind: hearth.Invalid, Op: "collect.wechat", Msg: "The message could not be read.", Err: err}
		}
		h.fail(w, r, slug, err)
		return
	}
	query := r.URL.Query()
	msg, encrypted, err := acct.Callback.Open(query, body)
	if err == nil {
		// After the signature, which covers the timestamp: a signed callback replayed later is refused.
		err = wechat.CheckTimestamp(query.Get("timestamp"), now, h.opts.ReplayWindow)
	}
	if err != nil {
		h.fail(w, r, slug, err)
		return
	}
	var evs []Event
	if !acct.Paused {
		evs, err = h.events(ctx, acct.SourceID, msg, now)
	}
	if err == nil && len(evs) > 0 {
		_, err = h.log.Append(ctx, &Batch{SourceID: acct.SourceID, ReceivedAt: now, Events: evs})
	}
	if err != nil {
		h.fail(w, r, slug, err)
		return
	}
	reply, err := acct.Callback.Reply(nil, encrypted, now)
	if err != nil {
		h.fail(w, r, slug, err)
		return
	}
	writeText(w, http.StatusOK, reply)
}

// wechatStatus maps the kinds of refusal to statuses; anything else is 500, which WeChat retries.
var wechatStatus = map[hearth.Kind]int{
	hearth.NotFound:        http.StatusNotFound,
	hearth.Invalid:         http.StatusBadRequest,
	hearth.Unauthenticated: http.StatusUnauthorized,
	hearth.TooLarge:        http.StatusRequestEntityTooLarge,
}

// fail answers a refused or failed callback. Refusals of a known account are logged at Warn, so that an
// operator sees a wrong token or clock; failures at Error. Neither says anything of the message or the person.
func (h *WeChatHandler) fail(w http.ResponseWriter, r *http.Request, slug string, err error) {
	kind := hearth.KindOf(err)
	status, refused := wechatStatus[kind]
	switch {
	case kind == hearth.NotFound:
	case refused:
		h.logger.WarnContext(r.Context(), "wechat callback refused", "account", slug, "reason", hearth.CodeOf(err), "err", err)
	case r.Context().Err() != nil:
		status = http.StatusInternalServerError // WeChat hung up; nobody reads the answer
	default:
		status = http.StatusInternalServerError
		h.logger.ErrorContext(r.Context(), "wechat callback failed", "account", slug, "err", err)
	}
	writeText(w, status, []byte(hearth.MessageOf(err)))
}

func writeText(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// Limits on what the callback keeps of a message's fields, which in plain-text mode are signed by nothing.
const (
	maxOpenIDLen  = 128 // openids are 28 characters
	maxKeptText   = 1024
	maxKeptMsgTyp = 32
)

// events turns a message into the events to record. Only a failing store makes an error; a message Hearth
// does not know becomes a WeChat Event Received or WeChat Message Received.
func (h *WeChatHandler) events(ctx context.Context, sourceID string, msg wechat.Message, now time.Time) ([]Event, error) {
	openID := msg.FromUserName
	if len(openID) > maxOpenIDLen || !utf8.ValidString(openID) {
		return nil, hearth.Errorf(hearth.Invalid, "collect.wechat", "The message's FromUserName is not an openid.")
	}
	b := wechatEvents{sourceID: sourceID, msg: msg, openID: openID, dedupe: msg.DedupeKey(), receivedAt: now, at: msg.Time()}
	// The time WeChat received the message; one far from now (a plain-text body is not signed) gives way to now.
	if d := b.at.Sub(now); d < -h.opts.ReplayWindow || d > h.opts.ReplayWindow {
		b.at = now
	}
	if msg.MsgType != wechat.MsgTypeEvent {
		props := map[string]any{"msg_type": clipText(msg.MsgType, maxKeptMsgTyp)}
		if msg.MsgType == wechat.MsgTypeText {
			props["length"] = utf8.RuneCountInString(msg.Content)
		}
		return b.add(WeChatMessageReceived, props)
	}
	switch msg.Event {
	case wechat.EventSubscribe, wechat.EventScan:
		scene, fromQR := msg.Scene()
		follow := msg.Event == wechat.EventSubscribe
		if !fromQR {
			if follow {
				return b.add(WeChatFollowed, map[string]any{})
			}
			return b.add(WeChatScanned, map[string]any{"refused": "malformed"})
		}
		res, err := h.resolver.ResolveTouch(ctx, scene, b.at)
		if err != nil {
			return nil, err
		}
		followProps := map[string]any{"scene": clipText(scene, wechat.MaxSceneLen)}
		if res.TouchpointID != "" {
			followProps["touchpoint_id"] = res.TouchpointID
		}
		if res.CampaignID != "" {
			followProps["campaign_id"] = res.CampaignID
		}
		if res.Refused == "" && res.TouchpointID != "" {
			if err := b.touch(res, scene, follow); err != nil {
				return nil, err
			}
		} else {
			scanProps := map[string]any{"refused": res.Refused, "new_follower": follow}
			for k, v := range followProps {
				scanProps[k] = v
			}
			if _, err := b.add(WeChatScanned, scanProps); err != nil {
				return nil, err
			}
		}
		if follow {
			return b.add(WeChatFollowed, followProps)
		}
		return b.evs, nil
	case wechat.EventUnsubscribe:
		return b.add(WeChatUnfollowed, map[string]any{})
	case wechat.EventClick:
		return b.add(WeChatMenuClicked, map[string]any{"key": clipText(msg.EventKey, maxKeptText)})
	case wechat.EventView:
		return b.add(WeChatMenuLinkOpened, map[string]any{"url": clipText(msg.EventKey, maxKeptText)})
	}
	// LOCATION and the rest: the name only, never where the person is.
	return b.add(WeChatEventReceived, map[string]any{"event": clipText(msg.Event, maxKeptMsgTyp)})
}

// wechatEvents builds the events of one message.
type wechatEvents struct {
	sourceID       string
	msg            wechat.Message
	openID, dedupe string
	at, receivedAt time.Time
	evs            []Event
}

// messageID is an event's message id: the same for every delivery of the message, different per event.
func (b *wechatEvents) messageID(name string) string {
	sum := sha256.Sum256([]byte(b.dedupe + "\x00" + name))
	return "wechat-" + hex.EncodeToString(sum[:16])
}

func (b *wechatEvents) externalIDs() []ExternalID {
	return []ExternalID{{Type: WeChatOpenIDType, ID: b.openID}}
}

// touch adds the Touch of a scan whose scene is a genuine token.
func (b *wechatEvents) touch(res ResolvedTouch, token string, follow bool) error {
	props := []byte(`{"new_follower":false}`)
	if follow {
		props = []byte(`{"new_follower":true}`)
	}
	t := Touch{Resolved: res, Token: token, Via: "wechat", AnonymousID: b.openID, ExternalIDs: b.externalIDs(), Properties: props,
		MessageID: b.messageID(TouchEventName), At: b.at, ReceivedAt: b.receivedAt}
	ev, err := t.Event(b.sourceID, nil)
	if err != nil {
		return err
	}
	b.evs = append(b.evs, ev)
	return nil
}

// wechatPayload is a WeChat event in Segment's shape.
type wechatPayload struct {
	Type        string         `json:"type"`
	MessageID   string         `json:"messageId"`
	AnonymousID string         `json:"anonymousId"`
	Event       string         `json:"event"`
	Properties  map[string]any `json:"properties"`
	Context     wechatContext  `json:"context"`
	Timestamp   time.Time      `json:"timestamp"`
	ReceivedAt  time.Time      `json:"receivedAt"`
}

type wechatContext struct {
	Library     libraryJSON  `json:"library"`
	ExternalIDs []ExternalID `json:"externalIds"`
}

type libraryJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// add adds a track event and returns the events so far.
func (b *wechatEvents) add(name string, props map[string]any) ([]Event, error) {
	id := b.messageID(name)
	payload, err := json.Marshal(wechatPayload{Type: "track", MessageID: id, AnonymousID: b.openID, Event: name, Properties: props,
		Context:   wechatContext{Library: libraryJSON{Name: "hearth", Version: hearth.Version}, ExternalIDs: b.externalIDs()},
		Timestamp: b.at, ReceivedAt: b.receivedAt})
	if err != nil {
		return nil, &hearth.Error{Kind: hearth.Internal, Op: "collect.wechat", Err: err}
	}
	b.evs = append(b.evs, Event{SourceID: b.sourceID, MessageID: id, Type: "track", Name: name, AnonymousID: b.openID,
		Timestamp: b.at, ReceivedAt: b.receivedAt, Payload: payload})
	return b.evs, nil
}

// clipText keeps at most n bytes of s, cut at a character boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
