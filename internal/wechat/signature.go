package wechat

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
)

// DefaultReplayWindow is how far a callback's timestamp may be from now: WeChat's retries come within about
// 15 s, and five minutes leaves room for servers' clocks to drift.
const DefaultReplayWindow = 5 * time.Minute

// Signature is what WeChat puts in a callback's signature parameter: the hex SHA-1 of the token, timestamp
// and nonce, sorted and joined. It covers the query only, never the body: a plain-text callback is
// authenticated by the token alone, which is why safe mode (MsgSignature) matters.
func Signature(token, timestamp, nonce string) string {
	return sortedSHA1(token, timestamp, nonce)
}

// MsgSignature is a safe-mode callback's msg_signature, which also covers the encrypted message.
func MsgSignature(token, timestamp, nonce, encrypted string) string {
	return sortedSHA1(token, timestamp, nonce, encrypted)
}

// VerifySignature reports whether signature is right for the account's token. An empty token never
// verifies: anyone could sign with it.
func VerifySignature(token, signature, timestamp, nonce string) bool {
	return token != "" && equalHex(signature, Signature(token, timestamp, nonce))
}

// VerifyMsgSignature reports whether a safe-mode msg_signature is right for the token and encrypted message.
func VerifyMsgSignature(token, msgSignature, timestamp, nonce, encrypted string) bool {
	return token != "" && equalHex(msgSignature, MsgSignature(token, timestamp, nonce, encrypted))
}

// CheckTimestamp checks that a callback's timestamp (Unix seconds) is within window of now, to refuse a
// signed request replayed later. An error is Invalid.
func CheckTimestamp(timestamp string, now time.Time, window time.Duration) error {
	const op = "wechat.timestamp"
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return invalid(op, "The callback's timestamp is not a number.", fmt.Errorf("wechat: timestamp: %w", err))
	}
	// Compared in seconds, so that no timestamp, however large, overflows a time.Duration.
	nowSec, windowSec := now.Unix(), int64(window/time.Second)
	if sec < nowSec-windowSec || sec > nowSec+windowSec {
		return hearth.Errorf(hearth.Invalid, op, "The callback's timestamp is too far from now.")
	}
	return nil
}

func sortedSHA1(parts ...string) string {
	slices.Sort(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// equalHex compares a received hex signature with the expected one in constant time; WeChat sends lower
// case, but case carries no meaning in hex.
func equalHex(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(want)) == 1
}
