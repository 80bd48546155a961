package identity

import (
	"testing"
)

// fuzzRules are the default rules with a custom type, read from traits and from a nested field.
func fuzzRules(t testing.TB) Rules {
	s := DefaultSettings()
	s.Types = append(s.Types, TypeRule{Type: "member_no", Limit: 2, Junk: DefaultJunk("member_no"), Fields: []string{"traits.member_no", "properties.member.no"}})
	rules, err := NewRules(s)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// FuzzNormalize checks that normalising never panics, that what it returns normalises to itself, and that
// the fast path for Chinese mobile numbers agrees with libphonenumber.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"li.lei@example.com", " Li@QQ.com ", "ＬＩ＠ＱＱ．ＣＯＭ", "用户@例子.广告", "13812345678", "+86 138 1234 5678",
		"008613812345678", "86-138-1234-5678", "010-6552 9988", "+1 (650) 253-0000", "+44 (0)7911 123456", "tel:+86-138-1234-5678",
		"１３８１２３４５６７８", "user-1", "null", "0000", "\u200bx\ufeff", "a\x00b", "+86 (0) 138 1234 5678"} {
		for i := range 8 {
			f.Add(uint8(i), s)
		}
	}
	rules := fuzzRules(f)
	types := rules.Types()
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		typ := types[int(which)%len(types)]
		id, ok := rules.Normalize(typ, raw)
		if !ok {
			return
		}
		if id.Type != typ || id.Value == "" {
			t.Fatalf("Normalize(%s, %q) = %#v", typ, raw, id)
		}
		again, ok := rules.Normalize(typ, id.Value)
		if !ok || again != id {
			t.Fatalf("Normalize(%s, %q) = %q, but that normalises to %q, %v", typ, raw, id.Value, again.Value, ok)
		}
		if typ == Phone {
			v := trim([]byte(raw))
			if e164, fast := rules.c.cnMobile.appendE164(nil, v); fast {
				if slow, ok := rules.c.parsePhone(string(v)); !ok || slow != string(e164) {
					t.Fatalf("%q: the fast path reads %q, libphonenumber %q, %v", raw, e164, slow, ok)
				}
			}
		}
	})
}

// FuzzFromEvent checks that reading an event never panics, and that what it returns is normalised, each
// once, in priority order, within the limits.
func FuzzFromEvent(f *testing.F) {
	for _, p := range []string{pagePayload, orderPayload, identifyPayload, touchPayload, wechatPayload,
		`{"userId":42,"traits":{"phone":13812345678,"email":"A@QQ.com","member_no":"M-1"},"properties":{"member":{"no":7}}}`,
		`{"context":{"externalIds":[{"type":"email","id":"a@qq.com"},{"type":"userId","id":"u"},{"type":"member_no","id":"m"}],"device":{"id":"d"}}}`,
		`{"USERID":"u","Traits":{"em\u0061il":"x@y.cn"},"userId":"v"}`, `{"userId":"\ud800"}`, `[]`, `{`, ``} {
		f.Add([]byte(p))
	}
	rules := fuzzRules(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		var x Extraction
		err := rules.Extract(&x, payload)
		if err != nil {
			if len(x.Identifiers) != 0 || len(x.Refused) != 0 {
				t.Fatalf("an error, and identifiers %v", x.Identifiers)
			}
			return
		}
		count := map[Type]int{}
		seen := map[Identifier]bool{}
		last := -1
		for _, id := range x.Identifiers {
			again, ok := rules.Normalize(id.Type, id.Value)
			if !ok || again != id {
				t.Fatalf("%s normalises to %q, %v", id, again.Value, ok)
			}
			if seen[id] {
				t.Fatalf("%s twice", id)
			}
			seen[id] = true
			p := rules.Priority(id.Type)
			if p < last {
				t.Fatalf("%s after a type of lower priority: %v", id, x.Identifiers)
			}
			last = p
			if count[id.Type]++; count[id.Type] > rules.Limit(id.Type) {
				t.Fatalf("more %s than the limit: %v", id.Type, x.Identifiers)
			}
		}
		for _, r := range x.Refused {
			if rules.Priority(r.Type) < 0 || r.Reason < Junk || r.Reason > OverLimit {
				t.Fatalf("refusal %+v", r)
			}
		}
		got, err := rules.FromEvent(payload)
		if err != nil || len(got) != len(x.Identifiers) {
			t.Fatalf("FromEvent = %v, %v; Extract %v", got, err, x.Identifiers)
		}
	})
}
