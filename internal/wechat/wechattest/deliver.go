package wechattest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hearth-cdp/hearth/internal/wechat"
)

// Errors of Deliver and VerifyURL, for errors.Is.
var (
	// ErrNoAnswer: the callback did not answer 200 within WeChat's deadline; WeChat would retry.
	ErrNoAnswer = errors.New("wechattest: the callback did not answer in time")
	// ErrBadReply: the callback answered something WeChat cannot use; the user would see "this account
	// cannot provide service for now".
	ErrBadReply = errors.New("wechattest: the callback's reply is not one WeChat accepts")
)

// Retries is how many times WeChat posts a callback again when it gets no answer in time.
const Retries = 3

const maxReply = 1 << 20

// Deliver posts msg to an account's callback URL as WeChat does: the XML with CDATA fields (in safe mode,
// encrypted in an <Encrypt> envelope), and a query signed with the account's token: signature, timestamp,
// nonce and openid, plus encrypt_type=aes and msg_signature in safe mode. It waits WeChat's 5 s deadline.
//
// The reply comes back as the callback sent it, decrypted in safe mode: empty or "success" for none, or a
// passive reply message, which must be addressed back to the user from the account. Anything else, or an
// encrypted reply whose signature does not match, is ErrBadReply.
func (s *Server) Deliver(ctx context.Context, callbackURL string, acct Account, msg wechat.Message, encrypted bool) ([]byte, error) {
	body, err := callbackBody(acct, msg, encrypted)
	if err != nil {
		return nil, err
	}
	return s.post(ctx, callbackURL, acct, msg, body, encrypted)
}

// DeliverWithRetries delivers msg as Deliver does and, as WeChat does when a callback does not answer in
// time (or fails), posts the same body again, up to Retries more times, each time newly signed. It returns
// the number of posts made; a reply WeChat got but cannot use is not retried.
func (s *Server) DeliverWithRetries(ctx context.Context, callbackURL string, acct Account, msg wechat.Message, encrypted bool) (reply []byte, posts int, err error) {
	body, err := callbackBody(acct, msg, encrypted)
	if err != nil {
		return nil, 0, err
	}
	for posts = 1; ; posts++ {
		reply, err = s.post(ctx, callbackURL, acct, msg, body, encrypted)
		if err == nil || errors.Is(err, ErrBadReply) || posts > Retries || ctx.Err() != nil {
			return reply, posts, err
		}
	}
}

func callbackBody(acct Account, msg wechat.Message, encrypted bool) ([]byte, error) {
	plain := msg.XML()
	if !encrypted {
		return plain, nil
	}
	sealed, err := wechat.Encrypt(acct.EncodingAESKey, acct.AppID, plain)
	if err != nil {
		return nil, fmt.Errorf("wechattest: encrypt: %w", err)
	}
	return wechat.Envelope{ToUserName: msg.ToUserName, Encrypt: sealed}.XML(), nil
}

func (s *Server) post(ctx context.Context, callbackURL string, acct Account, msg wechat.Message, body []byte, encrypted bool) ([]byte, error) {
	timestamp, nonce := strconv.FormatInt(s.clock.Now().Unix(), 10), wechat.NewNonce()
	query := url.Values{
		"signature": {wechat.Signature(acct.Token, timestamp, nonce)},
		"timestamp": {timestamp},
		"nonce":     {nonce},
		"openid":    {msg.FromUserName},
	}
	if encrypted {
		env, err := wechat.ParseEnvelope(body)
		if err != nil {
			return nil, fmt.Errorf("wechattest: %w", err)
		}
		query.Set("encrypt_type", "aes")
		query.Set("msg_signature", wechat.MsgSignature(acct.Token, timestamp, nonce, env.Encrypt))
	}
	target, err := withQuery(callbackURL, query)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.callbackDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("wechattest: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "Mozilla/4.0")
	answer, err := s.send(req)
	if err != nil {
		return nil, err
	}
	if len(answer) == 0 || string(answer) == "success" {
		return answer, nil
	}
	if encrypted {
		if answer, err = openReply(acct, answer); err != nil {
			return nil, err
		}
	}
	if err := checkReply(acct, msg, answer); err != nil {
		return nil, err
	}
	return answer, nil
}

// send makes one request and returns the body of a 200 answer.
func (s *Server) send(req *http.Request) ([]byte, error) {
	resp, err := s.callbackClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w (%s): %w", ErrNoAnswer, s.callbackDeadline, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %w", ErrNoAnswer, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP %d", ErrNoAnswer, resp.StatusCode)
	}
	return answer, nil
}

// openReply checks and decrypts a safe-mode passive reply.
func openReply(acct Account, answer []byte) ([]byte, error) {
	var r struct {
		XMLName      xml.Name `xml:"xml"`
		Encrypt      string
		MsgSignature string
		TimeStamp    string
		Nonce        string
	}
	if err := xml.Unmarshal(answer, &r); err != nil || r.Encrypt == "" {
		return nil, fmt.Errorf("%w: a safe-mode reply must be encrypted", ErrBadReply)
	}
	if !wechat.VerifyMsgSignature(acct.Token, r.MsgSignature, r.TimeStamp, r.Nonce, r.Encrypt) {
		return nil, fmt.Errorf("%w: the reply's MsgSignature does not match", ErrBadReply)
	}
	plain, err := wechat.Decrypt(acct.EncodingAESKey, acct.AppID, r.Encrypt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return plain, nil
}

// The message types of passive replies.
var replyTypes = map[string]bool{
	"text": true, "image": true, "voice": true, "video": true, "music": true, "news": true, "transfer_customer_service": true,
}

func checkReply(acct Account, msg wechat.Message, answer []byte) error {
	reply, err := wechat.ParseMessage(answer)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	case reply.ToUserName != msg.FromUserName || reply.FromUserName != acct.OriginalID:
		return fmt.Errorf("%w: a reply goes from the account back to the user who wrote", ErrBadReply)
	case !replyTypes[reply.MsgType]:
		return fmt.Errorf("%w: MsgType %q is not a passive reply", ErrBadReply, reply.MsgType)
	case reply.MsgType == "text" && reply.Content == "":
		return fmt.Errorf("%w: a text reply has no Content", ErrBadReply)
	}
	return nil
}

// VerifyURL is the check WeChat makes when a callback URL is configured: a GET with signature, timestamp,
// nonce and echostr, which must be answered 200 with the echostr, exactly, as the whole body.
func (s *Server) VerifyURL(ctx context.Context, callbackURL string, acct Account) error {
	timestamp, nonce := strconv.FormatInt(s.clock.Now().Unix(), 10), wechat.NewNonce()
	echo := wechat.NewNonce() + wechat.NewNonce() // WeChat's echostr is a long decimal number
	target, err := withQuery(callbackURL, url.Values{
		"signature": {wechat.Signature(acct.Token, timestamp, nonce)},
		"timestamp": {timestamp},
		"nonce":     {nonce},
		"echostr":   {echo},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.callbackDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("wechattest: %w", err)
	}
	answer, err := s.send(req)
	if err != nil {
		return err
	}
	if string(answer) != echo {
		return fmt.Errorf("%w: the URL check wants the echostr back, exactly", ErrBadReply)
	}
	return nil
}

func withQuery(rawURL string, params url.Values) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("wechattest: callback URL: %w", err)
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Messages. Each builder stands for something a user did, at the stand-in's clock; the stand-in remembers
// who follows which account, so that Scan sends subscribe or SCAN as WeChat would.

// NewOpenID returns a random openid of WeChat's shape: 28 characters starting with "o".
func NewOpenID() string { return "o" + randomURLSafe(21)[:27] }

func (s *Server) event(acct Account, openID, event, key string) wechat.Message {
	return wechat.Message{
		ToUserName: acct.OriginalID, FromUserName: openID, CreateTime: s.clock.Now().Unix(),
		MsgType: wechat.MsgTypeEvent, Event: event, EventKey: key,
	}
}

func (s *Server) setFollower(acct Account, openID string, follows bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.followers[acct.AppID+"/"+openID] = follows
}

// Follows reports whether the user follows the account, as far as the builders have told the stand-in.
func (s *Server) Follows(acct Account, openID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.followers[acct.AppID+"/"+openID]
}

// Scan is the user scanning a QR code the stand-in issued: a subscribe event with qrscene_<scene> if the
// user does not follow the account yet (and then follows it), else a SCAN event with the scene. A ticket
// that is unknown, expired or another account's is an error, as WeChat shows the user nothing.
func (s *Server) Scan(acct Account, openID, ticket string) (wechat.Message, error) {
	t, ok := s.LookupTicket(ticket)
	if !ok || t.AppID != acct.AppID {
		return wechat.Message{}, fmt.Errorf("wechattest: no QR code of this account has that ticket")
	}
	if !t.Permanent && !s.clock.Now().Before(t.ExpiresAt) {
		return wechat.Message{}, fmt.Errorf("wechattest: the QR code expired at %s", t.ExpiresAt.Format(time.RFC3339))
	}
	var m wechat.Message
	if s.Follows(acct, openID) {
		m = s.event(acct, openID, wechat.EventScan, t.Scene)
	} else {
		m = s.event(acct, openID, wechat.EventSubscribe, wechat.QRScenePrefix+t.Scene)
		s.setFollower(acct, openID, true)
	}
	m.Ticket = ticket
	return m, nil
}

// SubscribeQR is a subscribe by scanning a parametric QR code with scene and ticket.
func (s *Server) SubscribeQR(acct Account, openID, scene, ticket string) wechat.Message {
	s.setFollower(acct, openID, true)
	m := s.event(acct, openID, wechat.EventSubscribe, wechat.QRScenePrefix+scene)
	m.Ticket = ticket
	return m
}

// ScanQR is a follower scanning a parametric QR code with scene and ticket.
func (s *Server) ScanQR(acct Account, openID, scene, ticket string) wechat.Message {
	m := s.event(acct, openID, wechat.EventScan, scene)
	m.Ticket = ticket
	return m
}

// Subscribe is a follow by search or a shared card, with no scene.
func (s *Server) Subscribe(acct Account, openID string) wechat.Message {
	s.setFollower(acct, openID, true)
	return s.event(acct, openID, wechat.EventSubscribe, "")
}

// Unsubscribe is the user unfollowing the account.
func (s *Server) Unsubscribe(acct Account, openID string) wechat.Message {
	s.setFollower(acct, openID, false)
	return s.event(acct, openID, wechat.EventUnsubscribe, "")
}

// Click is the user tapping a menu button with key.
func (s *Server) Click(acct Account, openID, key string) wechat.Message {
	return s.event(acct, openID, wechat.EventClick, key)
}

// View is the user tapping a menu link to pageURL.
func (s *Server) View(acct Account, openID, pageURL string) wechat.Message {
	return s.event(acct, openID, wechat.EventView, pageURL)
}

// Text is the user sending a text message; it has a MsgId, as ordinary messages do.
func (s *Server) Text(acct Account, openID, content string) wechat.Message {
	s.mu.Lock()
	s.nextMsgID++
	id := s.nextMsgID
	s.mu.Unlock()
	return wechat.Message{
		ToUserName: acct.OriginalID, FromUserName: openID, CreateTime: s.clock.Now().Unix(),
		MsgType: wechat.MsgTypeText, Content: content, MsgID: id,
	}
}
