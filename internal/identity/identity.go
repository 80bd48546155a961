// Package identity knows what identifies a person in Hearth: the types of identifier, how a value is
// normalised (emails lower-cased, phones to E.164), which values are junk, which identifiers an event
// carries, and the rules the identity graph is built under (a priority order of types and a limit per type
// in one profile). See docs/identity.md.
//
// It is pure domain code, with no store and no HTTP: the profile processor calls Rules.FromEvent (or
// Rules.Extract) for every event it processes, so reading an event is a single pass over its JSON that
// allocates next to nothing.
//
// Identifier values are personal data. Identifier.String gives the whole value, for keys and storage; logs
// get the redacted form (Identifier implements slog.LogValuer), and errors never carry a value.
package identity

import (
	"log/slog"
	"strings"
	"unicode/utf8"
)

// Type is the type of an identifier: one of the built-in types below, or a custom type declared in the
// rules (settings), named like member_no.
type Type string

// The built-in types.
const (
	AnonymousID   Type = "anonymous_id"   // a browser's or an app install's id, set by the SDK (Segment's anonymousId)
	UserID        Type = "user_id"        // the brand's own id of a customer (Segment's userId)
	Email         Type = "email"          // an email address, lower-cased
	Phone         Type = "phone"          // a phone number in E.164, such as +8613812345678
	WeChatOpenID  Type = "wechat_openid"  // a follower's id in one WeChat official account or mini program
	WeChatUnionID Type = "wechat_unionid" // a WeChat user's id across the accounts of one company
	DeviceID      Type = "device_id"      // a device's id (Segment's context.device.id)
)

// builtinTypes are the built-in types, in the default priority order.
var builtinTypes = [...]Type{UserID, WeChatUnionID, Email, Phone, WeChatOpenID, DeviceID, AnonymousID}

// BuiltIn reports whether t is one of the built-in types.
func (t Type) BuiltIn() bool {
	switch t {
	case AnonymousID, UserID, Email, Phone, WeChatOpenID, WeChatUnionID, DeviceID:
		return true
	}
	return false
}

// Identifier is a typed, normalised value: what the identity graph links.
type Identifier struct {
	Type  Type
	Value string // normalised: see Rules.Normalize
}

// String returns "type:value", with the whole value: for keys, tests and storage, never for a log line or an
// error message (use Redacted).
func (id Identifier) String() string { return string(id.Type) + ":" + id.Value }

// LogValue logs the identifier redacted, so that personal data never reaches logs.
func (id Identifier) LogValue() slog.Value { return slog.StringValue(id.Redacted()) }

// Redacted returns "type:value" with most of the value masked, enough for an operator to tell identifiers
// apart in logs but not to read them: email:l***@e***.com, phone:+86138****5678, user_id:c***, and for
// long values the first four and last two characters, wechat_openid:oK3x***Zs.
func (id Identifier) Redacted() string {
	var v string
	switch id.Type {
	case Email:
		v = redactEmail(id.Value)
	case Phone:
		v = redactPhone(id.Value)
	default:
		v = redactID(id.Value)
	}
	return string(id.Type) + ":" + v
}

func redactEmail(s string) string {
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return redactID(s)
	}
	tld := ""
	if i := strings.LastIndexByte(domain, '.'); i > 0 {
		domain, tld = domain[:i], domain[i:]
	}
	return firstRune(local) + "***@" + firstRune(domain) + "***" + tld
}

// redactPhone keeps the country code and the first digits of an E.164 number, masks four digits and keeps
// the last four; shorter numbers keep less.
func redactPhone(s string) string {
	n := len(s)
	if n < 8 || s[0] != '+' {
		return redactID(s)
	}
	head, tail := n-8, 4
	if head < 1 {
		head = 1
	}
	if n < 12 {
		head, tail = min(head, 3), 2
	}
	return s[:head] + strings.Repeat("*", n-head-tail) + s[n-tail:]
}

func redactID(s string) string {
	if utf8.RuneCountInString(s) < 16 {
		return firstRune(s) + "***"
	}
	r := []rune(s)
	return string(r[:4]) + "***" + string(r[len(r)-2:])
}

func firstRune(s string) string {
	_, n := utf8.DecodeRuneInString(s)
	return s[:n]
}
