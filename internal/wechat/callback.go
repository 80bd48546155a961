package wechat

import (
	"crypto/rand"
	"encoding/binary"
	"net/url"
	"strconv"
	"time"

	"github.com/hearth-cdp/hearth"
)

// Callback checks and reads what WeChat sends to one account's callback URL, and seals the replies. It puts
// the primitives of this package together in the order that is safe; the HTTP handler around it decides
// about replay windows and deduplication.
type Callback struct {
	Token          string // the token set in the account's server configuration
	EncodingAESKey string // empty for an account in plain-text mode
	AppID          string
}

// VerifyEcho checks WeChat's GET to a callback URL being configured, and returns the echostr to answer with
// as the whole body.
func (cb Callback) VerifyEcho(query url.Values) (string, error) {
	if !VerifySignature(cb.Token, query.Get("signature"), query.Get("timestamp"), query.Get("nonce")) {
		return "", badSignature("wechat.verify_echo")
	}
	return query.Get("echostr"), nil
}

// Open checks a POSTed callback's signatures, decrypts it when it is in safe mode, and parses the message.
// encrypted says whether the reply must be encrypted too. An account with an EncodingAESKey accepts only
// encrypted callbacks: WeChat then always encrypts, and a plain-text body is signed by nothing but the
// query, which a captured signature could replay with any body.
func (cb Callback) Open(query url.Values, body []byte) (msg Message, encrypted bool, err error) {
	const op = "wechat.open_callback"
	timestamp, nonce := query.Get("timestamp"), query.Get("nonce")
	if !VerifySignature(cb.Token, query.Get("signature"), timestamp, nonce) {
		return Message{}, false, badSignature(op)
	}
	if query.Get("encrypt_type") != "aes" {
		if cb.EncodingAESKey != "" {
			return Message{}, false, hearth.Errorf(hearth.Unauthenticated, op, "This account accepts only encrypted callbacks.")
		}
		msg, err = ParseMessage(body)
		return msg, false, err
	}
	if cb.EncodingAESKey == "" {
		return Message{}, true, hearth.Errorf(hearth.Invalid, op, "The callback is encrypted but the account has no EncodingAESKey.")
	}
	env, err := ParseEnvelope(body)
	if err != nil {
		return Message{}, true, err
	}
	if !VerifyMsgSignature(cb.Token, query.Get("msg_signature"), timestamp, nonce, env.Encrypt) {
		return Message{}, true, badSignature(op)
	}
	plain, err := Decrypt(cb.EncodingAESKey, cb.AppID, env.Encrypt)
	if err != nil {
		return Message{}, true, err
	}
	if msg, err = ParseMessage(plain); err != nil {
		return Message{}, true, err
	}
	if env.ToUserName != "" && env.ToUserName != msg.ToUserName {
		return Message{}, true, hearth.Errorf(hearth.Invalid, op, "The encrypted message is addressed to another account.")
	}
	return msg, true, nil
}

// Reply returns the body to answer a callback with. An empty reply becomes "success", which tells WeChat
// there is nothing to show; anything else is encrypted when the callback was.
func (cb Callback) Reply(reply []byte, encrypted bool, now time.Time) ([]byte, error) {
	if len(reply) == 0 || string(reply) == "success" {
		return []byte("success"), nil
	}
	if !encrypted {
		return reply, nil
	}
	return EncryptReply(cb.Token, cb.EncodingAESKey, cb.AppID, reply, strconv.FormatInt(now.Unix(), 10), NewNonce())
}

// EncryptReply seals a passive reply for a safe-mode account:
// <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>, signed like a callback.
func EncryptReply(token, encodingAESKey, appID string, reply []byte, timestamp, nonce string) ([]byte, error) {
	encrypted, err := Encrypt(encodingAESKey, appID, reply)
	if err != nil {
		return nil, err
	}
	var b xmlBuilder
	b.open()
	b.text("Encrypt", encrypted)
	b.text("MsgSignature", MsgSignature(token, timestamp, nonce, encrypted))
	b.number("TimeStamp", timestamp)
	b.text("Nonce", nonce)
	return b.close(), nil
}

// NewNonce returns a random nonce of the kind WeChat uses: a decimal number of up to ten digits.
func NewNonce() string {
	var b [8]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program rather than return weak bytes
	return strconv.FormatUint(binary.BigEndian.Uint64(b[:])%1e10, 10)
}

func badSignature(op string) error {
	return &hearth.Error{Kind: hearth.Unauthenticated, Op: op, Code: "bad_signature", Msg: "The WeChat signature does not match."}
}
