package identity

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	rules := DefaultRules()
	us, err := ParseRules([]byte(`{"phone_region":"US"}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		rules Rules
		typ   Type
		raw   string
		want  string // "" for not an identifier
	}{
		// Emails.
		{"email as is", rules, Email, "li.lei@example.com", "li.lei@example.com"},
		{"email trimmed and lower-cased", rules, Email, "  Li.Lei@Example.COM \n", "li.lei@example.com"},
		{"email no provider rewriting", rules, Email, "Li.Lei+shop@GMail.com", "li.lei+shop@gmail.com"},
		{"email qq number", rules, Email, "12345678@qq.com", "12345678@qq.com"},
		{"email subdomains", rules, Email, "wang_fang@mail.corp.example.com.cn", "wang_fang@mail.corp.example.com.cn"},
		{"email atext", rules, Email, "o'brien!#$%&*=?^_`{|}~-/@x.ie", "o'brien!#$%&*=?^_`{|}~-/@x.ie"},
		{"email full-width from an IME", rules, Email, "ＬＩ＠ＱＱ．ＣＯＭ", "li@qq.com"},
		{"email ideographic full stop", rules, Email, "li@163。com", "li@163.com"},
		{"email internationalised", rules, Email, "用户@例子.广告", "用户@例子.广告"},
		{"email punycode", rules, Email, "li@xn--fiqs8s.cn", "li@xn--fiqs8s.cn"},
		{"email zero-width space around", rules, Email, "\u200bli@qq.com\ufeff", "li@qq.com"},
		{"email ideographic space around", rules, Email, "\u3000li@qq.com\u3000", "li@qq.com"},
		{"email display name", rules, Email, "Li Lei <li@qq.com>", ""},
		{"email mailto", rules, Email, "mailto:li@qq.com", ""},
		{"email no domain dot", rules, Email, "li@localhost", ""},
		{"email two ats", rules, Email, "li@lei@qq.com", ""},
		{"email no local", rules, Email, "@qq.com", ""},
		{"email no domain", rules, Email, "li@", ""},
		{"email no at", rules, Email, "li.qq.com", ""},
		{"email double dot", rules, Email, "li..lei@qq.com", ""},
		{"email leading dot", rules, Email, ".li@qq.com", ""},
		{"email trailing dot in local", rules, Email, "li.@qq.com", ""},
		{"email domain double dot", rules, Email, "li@qq..com", ""},
		{"email domain trailing dot", rules, Email, "li@qq.com.", ""},
		{"email label hyphen", rules, Email, "li@-qq.com", ""},
		{"email label hyphen end", rules, Email, "li@qq-.com", ""},
		{"email IP", rules, Email, "li@192.168.1.1", ""},
		{"email IP literal", rules, Email, "li@[192.168.1.1]", ""},
		{"email quoted", rules, Email, `"li lei"@qq.com`, ""},
		{"email space inside", rules, Email, "li lei@qq.com", ""},
		{"email comma", rules, Email, "li,lei@qq.com", ""},
		{"email one-letter TLD", rules, Email, "li@qq.c", ""},
		{"email control character", rules, Email, "li\x00@qq.com", ""},
		{"email zero-width inside", rules, Email, "li\u200b@qq.com", ""},
		{"email local too long", rules, Email, strings.Repeat("a", 65) + "@qq.com", ""},
		{"email local longest", rules, Email, strings.Repeat("a", 64) + "@qq.com", strings.Repeat("a", 64) + "@qq.com"},
		{"email too long", rules, Email, "a@" + strings.Repeat(strings.Repeat("b", 63)+".", 4) + "cn", ""},
		{"email label too long", rules, Email, "a@" + strings.Repeat("b", 64) + ".com", ""},
		{"email junk", rules, Email, "test@test.com", ""},
		{"email junk in capitals", rules, Email, "TEST@TEST.COM", ""},
		{"email junk a@a", rules, Email, "a@a.com", ""},
		{"email junk noreply", rules, Email, "noreply@shop.example.cn", ""},
		{"email junk no-reply", rules, Email, "No-Reply@Brand.com", ""},
		{"email junk test@", rules, Email, "test@brand.com", ""},
		{"email junk reserved TLD", rules, Email, "li@mail.invalid", ""},
		{"email junk word", rules, Email, "null", ""},
		{"email empty", rules, Email, "   ", ""},

		// Phones.
		{"phone CN mobile", rules, Phone, "13812345678", "+8613812345678"},
		{"phone CN mobile spaced", rules, Phone, "138 1234 5678", "+8613812345678"},
		{"phone CN mobile dashed", rules, Phone, "138-1234-5678", "+8613812345678"},
		{"phone CN mobile dotted", rules, Phone, "138.1234.5678", "+8613812345678"},
		{"phone CN mobile +86", rules, Phone, "+86 138 1234 5678", "+8613812345678"},
		{"phone CN mobile +86 dashed", rules, Phone, "+86-138-1234-5678", "+8613812345678"},
		{"phone CN mobile E.164", rules, Phone, "+8613812345678", "+8613812345678"},
		{"phone CN mobile 0086", rules, Phone, "008613812345678", "+8613812345678"},
		{"phone CN mobile 0086 spaced", rules, Phone, "0086 138 1234 5678", "+8613812345678"},
		{"phone CN mobile 86-", rules, Phone, "86-138-1234-5678", "+8613812345678"},
		{"phone CN mobile 86", rules, Phone, "8613812345678", "+8613812345678"},
		{"phone CN mobile (+86)", rules, Phone, "(+86) 138 1234 5678", "+8613812345678"},
		{"phone CN mobile +86 (0)", rules, Phone, "+86 (0) 138 1234 5678", "+8613812345678"},
		{"phone CN mobile full-width", rules, Phone, "１３８１２３４５６７８", "+8613812345678"},
		{"phone CN mobile tel URI", rules, Phone, "tel:+86-138-1234-5678", "+8613812345678"},
		{"phone CN mobile with extension", rules, Phone, "+86 138 1234 5678 ext. 12", "+8613812345678"},
		{"phone CN mobile 199", rules, Phone, "19912345678", "+8619912345678"},
		{"phone CN mobile 170", rules, Phone, "17012345678", "+8617012345678"},
		{"phone CN mobile 1740", rules, Phone, "17400123456", "+8617400123456"},
		{"phone CN mobile trailing space", rules, Phone, "13812345678 ", "+8613812345678"},
		{"phone CN landline Beijing", rules, Phone, "010-6552 9988", "+861065529988"},
		{"phone CN landline Shanghai", rules, Phone, "(021) 6234 5678", "+862162345678"},
		{"phone CN landline +86", rules, Phone, "+86 21 6234 5678", "+862162345678"},
		{"phone HK", rules, Phone, "+852 6123 4567", "+85261234567"},
		{"phone TW", rules, Phone, "+886 912 345 678", "+886912345678"},
		{"phone US", rules, Phone, "+1 (650) 253-0000", "+16502530000"},
		{"phone UK", rules, Phone, "+44 20 7946 0958", "+442079460958"},
		{"phone UK mobile with national prefix", rules, Phone, "+44 (0)7911 123456", "+447911123456"},
		{"phone US region national", us, Phone, "(650) 253-0000", "+16502530000"},
		{"phone US region CN mobile international", us, Phone, "+86 138 1234 5678", "+8613812345678"},
		{"phone US region CN mobile national", us, Phone, "13812345678", ""},
		{"phone too short", rules, Phone, "12345", ""},
		{"phone service number", rules, Phone, "95588", ""},
		{"phone 12 digits", rules, Phone, "138123456789", ""},
		{"phone 10 digits", rules, Phone, "1381234567", ""},
		{"phone unallocated prefix", rules, Phone, "14012345678", ""},
		{"phone 00 without country", rules, Phone, "0013812345678", ""},
		{"phone Excel number", rules, Phone, "1.38123E+10", ""},
		{"phone letters", rules, Phone, "call me", ""},
		{"phone shared-cost 400", rules, Phone, "400-800-8888", ""},
		{"phone toll-free 800", rules, Phone, "800-810-8888", ""},
		{"phone junk example number", rules, Phone, "13800138000", ""},
		{"phone junk example number written otherwise", rules, Phone, "+86 138 0013 8000", ""},
		{"phone junk one digit", rules, Phone, "+852 6666 6666", ""},
		{"phone one digit is not junk with its country code", rules, Phone, "+852 5555 5555", ""},
		{"phone junk ones", rules, Phone, "11111111111", ""},
		{"phone junk word", rules, Phone, "N/A", ""},
		{"phone control character", rules, Phone, "138\x001234 5678", ""},
		{"phone too long", rules, Phone, strings.Repeat("1", 100), ""},

		// Ids.
		{"user id", rules, UserID, "user-164084", "user-164084"},
		{"user id trimmed", rules, UserID, "  user-164084\t", "user-164084"},
		{"user id case kept", rules, UserID, "User-ABC", "User-ABC"},
		{"user id number", rules, UserID, "42", "42"},
		{"user id Chinese", rules, UserID, "会员-张三", "会员-张三"},
		{"user id 255 characters", rules, UserID, strings.Repeat("会", 255), strings.Repeat("会", 255)},
		{"user id 256 characters", rules, UserID, strings.Repeat("u", 256), ""},
		{"user id tab inside", rules, UserID, "user\t1", ""},
		{"user id newline inside", rules, UserID, "user\n1", ""},
		{"user id bidi override", rules, UserID, "user\u202e1", ""},
		{"user id invalid UTF-8", rules, UserID, "user\xff", ""},
		{"user id repeated kept", rules, UserID, "0000", "0000"},
		{"user id junk null", rules, UserID, "null", ""},
		{"user id junk NULL", rules, UserID, "NULL", ""},
		{"user id junk nil", rules, UserID, "nil", ""},
		{"user id junk undefined", rules, UserID, " Undefined ", ""},
		{"user id junk none", rules, UserID, "None", ""},
		{"user id junk 0", rules, UserID, "0", ""},
		{"user id junk -1", rules, UserID, "-1", ""},
		{"user id junk anonymous", rules, UserID, "anonymous", ""},
		{"user id junk unknown", rules, UserID, "Unknown", ""},
		{"user id junk test", rules, UserID, "TEST", ""},
		{"user id junk n/a", rules, UserID, "n/a", ""},
		{"user id junk object", rules, UserID, "[object Object]", ""},
		{"user id junk NaN", rules, UserID, "NaN", ""},
		{"user id junk guest", rules, UserID, "guest", ""},
		{"user id junk zero uuid", rules, UserID, "00000000-0000-0000-0000-000000000000", ""},
		{"user id empty", rules, UserID, "", ""},
		{"anonymous id", rules, AnonymousID, "7f3c9e2a-1b4d-4c8e-9a6f-2d5b8c1e0f37", "7f3c9e2a-1b4d-4c8e-9a6f-2d5b8c1e0f37"},
		{"anonymous id repeated", rules, AnonymousID, "0000000000", ""},
		{"anonymous id all x", rules, AnonymousID, "xxxxxxxx", ""},
		{"anonymous id only dashes", rules, AnonymousID, "----", ""},
		{"openid", rules, WeChatOpenID, "oK3xR5d8Tq2vWm9ZpL4sYbN7cHfJ", "oK3xR5d8Tq2vWm9ZpL4sYbN7cHfJ"},
		{"openid junk", rules, WeChatOpenID, "undefined", ""},
		{"unionid", rules, WeChatUnionID, " o6_bmasdasdsad6_2sgVt7hMZOPfL ", "o6_bmasdasdsad6_2sgVt7hMZOPfL"},
		{"device id", rules, DeviceID, "B5372DB0-C21E-11E4-8DFC-AA07A5B093DB", "B5372DB0-C21E-11E4-8DFC-AA07A5B093DB"},
		{"device id zero IDFA", rules, DeviceID, "00000000-0000-0000-0000-000000000000", ""},
		{"device id zero MAC", rules, DeviceID, "00:00:00:00:00:00", ""},
		{"device id shared Android id", rules, DeviceID, "9774d56d682e549c", ""},
		{"not a type of the rules", rules, Type("member_no"), "M-1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := tt.rules.Normalize(tt.typ, tt.raw)
			if tt.want == "" {
				if ok {
					t.Fatalf("Normalize(%s, %q) = %q, want not an identifier", tt.typ, tt.raw, id.Value)
				}
				return
			}
			if !ok || id != (Identifier{tt.typ, tt.want}) {
				t.Fatalf("Normalize(%s, %q) = %q, %v; want %q", tt.typ, tt.raw, id.Value, ok, tt.want)
			}
			if again, ok := tt.rules.Normalize(tt.typ, id.Value); !ok || again != id {
				t.Errorf("Normalize(%s, %q) = %q, %v; want it unchanged", tt.typ, id.Value, again.Value, ok)
			}
		})
	}
}

// TestNormalizeReason checks why values are refused: junk and malformed values are counted apart.
func TestNormalizeReason(t *testing.T) {
	rules := DefaultRules()
	tests := []struct {
		typ  Type
		raw  string
		want Reason
	}{
		{Email, "li@qq.com", 0},
		{Email, "", reasonEmpty},
		{Email, " \t", reasonEmpty},
		{Email, "null", Junk},
		{Email, "test@test.com", Junk},
		{Email, "li@", Malformed},
		{Phone, "undefined", Junk},
		{Phone, "13800138000", Junk},
		{Phone, "138 0013 8000", Junk},
		{Phone, "12345", Malformed},
		{UserID, "guest", Junk},
		{UserID, "a\x01", Malformed},
		{UserID, strings.Repeat("x", 300), Malformed},
	}
	for _, tt := range tests {
		_, got := rules.c.appendNormalized(nil, rules.Priority(tt.typ), []byte(tt.raw))
		if got != tt.want {
			t.Errorf("%s %q: reason %v, want %v", tt.typ, tt.raw, got, tt.want)
		}
	}
}

func TestJunkSettings(t *testing.T) {
	s := DefaultSettings()
	for i := range s.Types {
		switch s.Types[i].Type {
		case UserID:
			s.Types[i].Junk = []string{"guest-*", "{repeated}"} // guest is an id now, guest-7 is not
		case Phone:
			s.Types[i].Junk = []string{" 138 1234 5678 ", "+86170*"} // matched as normalised
		case Email:
			s.Types[i].Junk = []string{"*@example.com", "*admin*"}
		}
	}
	rules, err := NewRules(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		typ  Type
		raw  string
		want bool
	}{
		{UserID, "guest", true},
		{UserID, "GUEST-7", false},
		{UserID, "0000", false},
		{UserID, "null", true},
		{Phone, "13800138000", true},
		{Phone, "+86 138 1234 5678", false},
		{Phone, "008613812345678", false},
		{Phone, "170 1234 5678", false},
		{Phone, "171 1234 5678", true},
		{Email, "li@example.com", false},
		{Email, "li@example.com.cn", true},
		{Email, "sysadmin@brand.cn", false},
		{Email, "test@test.com", true},
	} {
		if _, ok := rules.Normalize(tt.typ, tt.raw); ok != tt.want {
			t.Errorf("Normalize(%s, %q) = %v, want %v", tt.typ, tt.raw, ok, tt.want)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"noreply@*", "noreply@x.com", true},
		{"noreply@*", "noreply@", true},
		{"noreply@*", "xnoreply@x.com", false},
		{"*.test", "a@b.test", true},
		{"*.test", "a@b.testing", false},
		{"*a*b*", "xaxbx", true},
		{"*a*b*", "xbxax", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"*", "", true},
	} {
		if got := matchGlob(strings.Split(tt.pattern, "*"), []byte(tt.s)); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}
