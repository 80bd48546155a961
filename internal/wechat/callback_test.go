package wechat

import (
	"encoding/xml"
	"net/url"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
)

func signedQuery(token, timestamp, nonce string) url.Values {
	return url.Values{"signature": {Signature(token, timestamp, nonce)}, "timestamp": {timestamp}, "nonce": {nonce}, "openid": {vectorOpenID}}
}

func TestCallbackOpen(t *testing.T) {
	plainAccount := Callback{Token: vectorToken, AppID: vectorAppID}
	safeAccount := Callback{Token: vectorToken, AppID: vectorAppID, EncodingAESKey: vectorKey}
	envelope := Envelope{ToUserName: vectorOriginalID, Encrypt: vectorEncrypted}.XML()
	safeQuery := func() url.Values {
		q := signedQuery(vectorToken, vectorTimestamp, vectorNonce)
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", vectorMsgSignature)
		return q
	}
	tests := []struct {
		name          string
		cb            Callback
		query         func() url.Values
		body          []byte
		kind          hearth.Kind // Internal for none
		wantEncrypted bool
	}{
		{"plain text", plainAccount, func() url.Values { return signedQuery(vectorToken, vectorTimestamp, vectorNonce) }, []byte(vectorMessage), 0, false},
		{"safe mode", safeAccount, safeQuery, envelope, 0, true},
		{"plain text with a bad signature", plainAccount, func() url.Values { return signedQuery("other", vectorTimestamp, vectorNonce) }, []byte(vectorMessage), hearth.Unauthenticated, false},
		{"safe mode with a bad signature", safeAccount, func() url.Values {
			q := safeQuery()
			q.Set("signature", Signature("other", vectorTimestamp, vectorNonce))
			return q
		}, envelope, hearth.Unauthenticated, false},
		{"safe mode with a bad msg_signature", safeAccount, func() url.Values {
			q := safeQuery()
			q.Set("msg_signature", MsgSignature("other", vectorTimestamp, vectorNonce, vectorEncrypted))
			return q
		}, envelope, hearth.Unauthenticated, true},
		{"safe mode, message swapped under a good query signature", safeAccount, safeQuery,
			Envelope{ToUserName: vectorOriginalID, Encrypt: mustEncrypt(t, vectorMessage)}.XML(), hearth.Unauthenticated, true},
		{"plain text to a safe-mode account", safeAccount, func() url.Values { return signedQuery(vectorToken, vectorTimestamp, vectorNonce) }, []byte(vectorMessage), hearth.Unauthenticated, false},
		{"encrypted to a plain-text account", plainAccount, safeQuery, envelope, hearth.Invalid, true},
		{"safe mode for another account", Callback{Token: vectorToken, AppID: "wx0000000000000000", EncodingAESKey: vectorKey}, safeQuery, envelope, hearth.Invalid, true},
		{"envelope to another account", safeAccount, safeQuery, Envelope{ToUserName: "gh_other", Encrypt: vectorEncrypted}.XML(), hearth.Invalid, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, encrypted, err := tt.cb.Open(tt.query(), tt.body)
			if tt.kind != 0 {
				if hearth.KindOf(err) != tt.kind {
					t.Fatalf("Open = %+v, %v; want kind %v", msg, err, tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if encrypted != tt.wantEncrypted {
				t.Errorf("encrypted = %v", encrypted)
			}
			if scene, ok := msg.Scene(); !ok || scene != "poster-42" || msg.FromUserName != vectorOpenID {
				t.Errorf("Open = %+v", msg)
			}
		})
	}
}

func mustEncrypt(t *testing.T, msg string) string {
	t.Helper()
	enc, err := Encrypt(vectorKey, vectorAppID, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestCallbackVerifyEcho(t *testing.T) {
	cb := Callback{Token: vectorToken}
	q := signedQuery(vectorToken, vectorTimestamp, vectorNonce)
	q.Set("echostr", "5837397520665436492")
	if echo, err := cb.VerifyEcho(q); err != nil || echo != "5837397520665436492" {
		t.Errorf("VerifyEcho = %q, %v", echo, err)
	}
	q.Set("nonce", "other")
	if _, err := cb.VerifyEcho(q); hearth.KindOf(err) != hearth.Unauthenticated {
		t.Errorf("VerifyEcho with a bad signature: %v", err)
	}
}

func TestCallbackReply(t *testing.T) {
	cb := Callback{Token: vectorToken, AppID: vectorAppID, EncodingAESKey: vectorKey}
	now := time.Unix(1_780_000_000, 0)
	for _, encrypted := range []bool{false, true} {
		if got, err := cb.Reply(nil, encrypted, now); err != nil || string(got) != "success" {
			t.Errorf("empty reply, encrypted %v: %q, %v", encrypted, got, err)
		}
	}
	msg, _ := ParseMessage([]byte(vectorMessage))
	text := msg.TextReply("欢迎", now)
	if got, err := cb.Reply(text, false, now); err != nil || string(got) != string(text) {
		t.Errorf("plain reply = %q, %v", got, err)
	}
	sealed, err := cb.Reply(text, true, now)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		XMLName                                 xml.Name `xml:"xml"`
		Encrypt, MsgSignature, TimeStamp, Nonce string
	}
	if err := xml.Unmarshal(sealed, &r); err != nil {
		t.Fatal(err)
	}
	if r.TimeStamp != "1780000000" || !VerifyMsgSignature(cb.Token, r.MsgSignature, r.TimeStamp, r.Nonce, r.Encrypt) {
		t.Errorf("the encrypted reply is not signed: %s", sealed)
	}
	plain, err := Decrypt(cb.EncodingAESKey, cb.AppID, r.Encrypt)
	if err != nil || string(plain) != string(text) {
		t.Fatalf("decrypted reply = %q, %v", plain, err)
	}
	reply, err := ParseMessage(plain)
	if err != nil || reply.ToUserName != vectorOpenID || reply.FromUserName != vectorOriginalID || reply.Content != "欢迎" {
		t.Errorf("reply = %+v, %v", reply, err)
	}
}

// Open never panics, and in either mode reads a correctly signed message exactly as ParseMessage does.
// The raw body also goes through as a safe-mode envelope, to fuzz ParseEnvelope.
func FuzzCallbackOpen(f *testing.F) {
	f.Add([]byte(vectorMessage))
	f.Add(Envelope{ToUserName: vectorOriginalID, Encrypt: vectorEncrypted}.XML())
	f.Add([]byte("<xml><Encrypt></Encrypt></xml>"))
	f.Add([]byte(""))
	plainAccount := Callback{Token: vectorToken, AppID: vectorAppID}
	safeAccount := Callback{Token: vectorToken, AppID: vectorAppID, EncodingAESKey: vectorKey}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantErr := ParseMessage(body)
		checkKind := func(err error) {
			if k := hearth.KindOf(err); err != nil && k != hearth.Invalid && k != hearth.TooLarge && k != hearth.Unauthenticated {
				t.Fatalf("error of kind %v: %v", k, err)
			}
		}

		q := signedQuery(vectorToken, vectorTimestamp, vectorNonce)
		got, _, err := plainAccount.Open(q, body)
		checkKind(err)
		if (err == nil) != (wantErr == nil) || err == nil && got != want {
			t.Fatalf("plain text: Open = %+v, %v; ParseMessage = %+v, %v", got, err, want, wantErr)
		}

		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", "0")
		_, _, err = safeAccount.Open(q, body)
		checkKind(err)

		sealed := mustEncrypt(t, string(body))
		q.Set("msg_signature", MsgSignature(vectorToken, vectorTimestamp, vectorNonce, sealed))
		envelope := Envelope{ToUserName: want.ToUserName, Encrypt: sealed}.XML()
		got, _, err = safeAccount.Open(q, envelope)
		checkKind(err)
		if len(envelope) > MaxMessageSize {
			// Base64 makes a message a third larger: the limit on the body leaves encrypted messages less room.
			if hearth.KindOf(err) != hearth.TooLarge {
				t.Fatalf("an envelope of %d bytes: %v, want too large", len(envelope), err)
			}
		} else if (err == nil) != (wantErr == nil) || err == nil && got != want {
			t.Fatalf("safe mode: Open = %+v, %v; ParseMessage = %+v, %v", got, err, want, wantErr)
		}
	})
}
