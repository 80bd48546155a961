package wechat

import (
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
)

// A callback made with Python's hashlib and cryptography packages, independently of this code: the token,
// timestamp and nonce of WeChat's sample, a subscribe-by-QR message, and 16 bytes 00…0f as the random prefix.
const (
	vectorToken        = "pamtest"
	vectorTimestamp    = "1409304348"
	vectorNonce        = "xxxxxx"
	vectorAppID        = "wxb11529c136998cb6"
	vectorKey          = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	vectorSignature    = "76480565cbe296026c53aaacd1ad523a1ddba24f"
	vectorMsgSignature = "7b3fe2ebbd7558be5ab4d7c536c1bced9d218238"
	vectorMessage      = `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oTEST0000000000000000000000A]]></FromUserName><CreateTime>1409304348</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_poster-42]]></EventKey><Ticket><![CDATA[gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==]]></Ticket></xml>`
	vectorEncrypted    = "IG+0eOkLdhYW9kHtuT3HY7JhC1hvkYH2mBibT4PzQWnoblLzJWSI1KdgAm9lle7TuSTORtLfOFVPBeDhGJGsK09RpGMlzqECDOQR1Pmp5/mnR5QTx553AXzSTQThNM2kOcGuX6UdbikOOsOdo/l2+2gsehXGkWMK32PuL5szQko2xODJ7b6xXTtLBUDm1k4Ph7iYdE1MK3RymshnOSu8MonhPIyi55n4+CYA7mhrAV4yriLLHMs2c0eFvpgP8SIgKjMtdpA4Q8NCTHesWZb7j8FCtIBcBcjkZM5u0nl7a9xOqBtugB0FB5lffG8t9hqCchDdnpuZJO7/0QnNQDeVsqLEs80+EoF4ZLBQrqEGqlBvQp7zUyJatEKCSTMZMlNROFzbbdHZwdxRwhaUqKhh4Dy1OvBXjnM3Pv08sHJ2gYkJCHFcAF4xArSR3ur7VhODN3NBQgMkeRyERbkY0zH9HluZOJeQHQzeg+XkZw3uIj835Efe/ZqSC/kvQWn8DoLyaTl0lwfzOp00UguecZikKNlwZUCQGI1WoMi8tm8rLADcdJ7NDaS/0FIMWLWBVgFd/+gr7UMc3iCX6+rDeVVwgGKJ6bXyuzTNvCt/oj5zAAqV7RwoYZYnkV0Q1Jcwq4pX"
	vectorOpenID       = "oTEST0000000000000000000000A"
	vectorOriginalID   = "gh_0123456789ab"
)

func TestSignatureVector(t *testing.T) {
	if got := Signature(vectorToken, vectorTimestamp, vectorNonce); got != vectorSignature {
		t.Errorf("Signature = %s, want %s", got, vectorSignature)
	}
	if got := MsgSignature(vectorToken, vectorTimestamp, vectorNonce, vectorEncrypted); got != vectorMsgSignature {
		t.Errorf("MsgSignature = %s, want %s", got, vectorMsgSignature)
	}
}

func TestVerifySignature(t *testing.T) {
	tests := []struct {
		name                               string
		token, signature, timestamp, nonce string
		want                               bool
	}{
		{"right", vectorToken, vectorSignature, vectorTimestamp, vectorNonce, true},
		{"upper-case hex", vectorToken, strings.ToUpper(vectorSignature), vectorTimestamp, vectorNonce, true},
		{"other token", "other", vectorSignature, vectorTimestamp, vectorNonce, false},
		{"other timestamp", vectorToken, vectorSignature, "1409304349", vectorNonce, false},
		{"other nonce", vectorToken, vectorSignature, vectorTimestamp, "xxxxxy", false},
		{"empty signature", vectorToken, "", vectorTimestamp, vectorNonce, false},
		{"truncated signature", vectorToken, vectorSignature[:39], vectorTimestamp, vectorNonce, false},
		{"empty token, though the signature matches it", "", Signature("", "1", "2"), "1", "2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.token, tt.signature, tt.timestamp, tt.nonce); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
	if !VerifyMsgSignature(vectorToken, vectorMsgSignature, vectorTimestamp, vectorNonce, vectorEncrypted) {
		t.Error("VerifyMsgSignature refuses the vector")
	}
	if VerifyMsgSignature(vectorToken, vectorMsgSignature, vectorTimestamp, vectorNonce, vectorEncrypted+"A") {
		t.Error("VerifyMsgSignature accepts another message")
	}
}

func TestCheckTimestamp(t *testing.T) {
	now := time.Unix(1_780_000_000, 0)
	tests := []struct {
		name, timestamp string
		ok              bool
	}{
		{"now", "1780000000", true},
		{"four minutes ago", "1779999760", true},
		{"four minutes ahead", "1780000240", true},
		{"five minutes ago, the edge", "1779999700", true},
		{"six minutes ago", "1779999640", false},
		{"six minutes ahead", "1780000360", false},
		{"zero", "0", false},
		{"huge", "9223372036854775807", false},
		{"most negative", "-9223372036854775808", false},
		{"not a number", "17800000x0", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTimestamp(tt.timestamp, now, DefaultReplayWindow)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckTimestamp(%q) = %v, want ok %v", tt.timestamp, err, tt.ok)
			}
			if err != nil && hearth.KindOf(err) != hearth.Invalid {
				t.Errorf("kind = %v, want invalid", hearth.KindOf(err))
			}
		})
	}
}
