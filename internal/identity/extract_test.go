package identity

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
)

// ids writes identifiers as "type:value" for comparison.
func ids(list []Identifier) []string {
	out := []string{}
	for _, id := range list {
		out = append(out, id.String())
	}
	return out
}

func refusals(list []Refusal) []string {
	out := []string{}
	for _, r := range list {
		out = append(out, string(r.Type)+":"+r.Reason.String())
	}
	return out
}

func TestExtract(t *testing.T) {
	rules := DefaultRules()
	member, err := ParseRules([]byte(`{"types":[{"type":"user_id"},{"type":"member_no","limit":1,"fields":["traits.member_no","context.traits.member.no"]},
		{"type":"email","limit":1},{"type":"phone","fields":["properties.contact.mobile_phone"]},{"type":"anonymous_id"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		rules   Rules
		payload string
		want    []string
		refused []string
	}{
		{"page view", rules, pagePayload, []string{"anonymous_id:anon-00065006"}, nil},
		{"order", rules, orderPayload, []string{"user_id:user-164084", "anonymous_id:anon-00164084"}, nil},
		{"identify", rules, identifyPayload,
			[]string{"user_id:user-164084", "email:member164084@example.com", "phone:+8613800164084", "anonymous_id:anon-00164084"}, nil},
		{"touch with context traits and a unionid", rules, touchPayload,
			[]string{"wechat_unionid:o6_bmasdasdsad6_2sgVt7hMZOPfL", "email:li.lei@example.com", "phone:+8613812345678", "anonymous_id:7f3c9e2a-1b4d-4c8e-9a6f-2d5b8c1e0f37"}, nil},
		{"WeChat event", rules, wechatPayload,
			[]string{"wechat_openid:oK3xR5d8Tq2vWm9ZpL4sYbN7cHfJ", "anonymous_id:oK3xR5d8Tq2vWm9ZpL4sYbN7cHfJ"}, nil},
		{"traits mobile", rules, `{"anonymousId":"a-1","traits":{"mobile":"138 1234 5678"}}`,
			[]string{"phone:+8613812345678", "anonymous_id:a-1"}, nil},
		{"phone as a JSON number", rules, `{"traits":{"phone":13812345678}}`, []string{"phone:+8613812345678"}, nil},
		{"user id as a JSON number", rules, `{"userId":42}`, []string{"user_id:42"}, nil},
		{"device id", rules, `{"anonymousId":"a-1","context":{"device":{"id":"B5372DB0-C21E-11E4-8DFC-AA07A5B093DB","model":"iPhone15,2"}}}`,
			[]string{"device_id:B5372DB0-C21E-11E4-8DFC-AA07A5B093DB", "anonymous_id:a-1"}, nil},
		{"external ids of every type", rules, `{"context":{"externalIds":[
			{"type":"anonymous_id","id":"a-1"},{"type":"device_id","id":"d-1"},{"type":"wechat_openid","id":"o-1","collection":"users","encoding":"none"},
			{"type":"phone","id":"+86 138 1234 5678"},{"type":"email","id":"Li@QQ.com"},{"type":"wechat_unionid","id":"u-1"},{"type":"user_id","id":"42"}]}}`,
			[]string{"user_id:42", "wechat_unionid:u-1", "email:li@qq.com", "phone:+8613812345678", "wechat_openid:o-1", "device_id:d-1", "anonymous_id:a-1"}, nil},
		{"external ids Segment-style names", rules, `{"context":{"externalIds":[{"type":"userId","id":"u-7"},{"type":"WeChat_OpenID","id":"o-1"},{"type":"mobile","id":13812345678},{"id":"x","type":"deviceId"}]}}`,
			[]string{"user_id:u-7", "phone:+8613812345678", "wechat_openid:o-1", "device_id:x"}, nil},
		{"external ids of unknown types", rules, `{"context":{"externalIds":[{"type":"ga_client_id","id":"GA1.2.3"},{"type":"braze_id","id":"b"}]}}`, []string{}, nil},
		{"external ids not entries", rules, `{"context":{"externalIds":[1,"x",null,[],{"type":"email"},{"id":"a@qq.com"},{"type":7,"id":"a@qq.com"},{"type":"wechat_openid","id":"o-2"}]}}`,
			[]string{"wechat_openid:o-2"}, nil},
		{"external ids not an array", rules, `{"context":{"externalIds":{"type":"wechat_openid","id":"o-1"}}}`, []string{}, nil},
		{"external id entry with escaped names", rules, `{"context":{"externalIds":[{"typ\u0065":"email","\u0069d":"a@qq.com"}]}}`, []string{"email:a@qq.com"}, nil},
		{"external id of an escaped type", rules, `{"context":{"externalIds":[{"type":"wechat_open\u0069d","id":"o-1"}]}}`, []string{}, nil},
		{"precedence: userId before an external user id", rules, `{"userId":"u-1","context":{"externalIds":[{"type":"user_id","id":"u-2"}]}}`,
			[]string{"user_id:u-1"}, []string{"user_id:over_limit"}},
		{"precedence: traits before context traits", member, `{"traits":{"email":"a@qq.com"},"context":{"traits":{"email":"b@qq.com"}}}`,
			[]string{"email:a@qq.com"}, []string{"email:over_limit"}},
		{"precedence: context traits before external ids", member, `{"context":{"externalIds":[{"type":"email","id":"b@qq.com"}],"traits":{"email":"a@qq.com"}}}`,
			[]string{"email:a@qq.com"}, []string{"email:over_limit"}},
		{"limit: within it all kept, in order", rules, `{"traits":{"phone":"13812345678","mobile":"13912345678"},"context":{"traits":{"phone":"13712345678"}}}`,
			[]string{"phone:+8613812345678", "phone:+8613912345678", "phone:+8613712345678"}, nil},
		{"dedup across places", rules, `{"traits":{"email":"Li@QQ.com","phone":"138 1234 5678"},"context":{"traits":{"email":"li@qq.com","mobile":"+8613812345678"},"externalIds":[{"type":"email","id":" LI@qq.com "}]}}`,
			[]string{"email:li@qq.com", "phone:+8613812345678"}, nil},
		{"dedup does not count against the limit", member, `{"traits":{"email":"a@qq.com"},"context":{"traits":{"email":"A@qq.com"}}}`,
			[]string{"email:a@qq.com"}, nil},
		{"the same value as two types", rules, `{"anonymousId":"o-1","context":{"externalIds":[{"type":"wechat_openid","id":"o-1"}]}}`,
			[]string{"wechat_openid:o-1", "anonymous_id:o-1"}, nil},
		{"junk dropped", rules, `{"userId":"null","anonymousId":"undefined","traits":{"email":"test@test.com","phone":"13800138000"},"context":{"device":{"id":"00000000-0000-0000-0000-000000000000"}}}`,
			[]string{}, []string{"user_id:junk", "anonymous_id:junk", "email:junk", "phone:junk", "device_id:junk"}},
		{"malformed dropped", rules, `{"userId":"a\u0000b","traits":{"email":"li@","phone":"12345"},"anonymousId":"a-1"}`,
			[]string{"anonymous_id:a-1"}, []string{"user_id:malformed", "email:malformed", "phone:malformed"}},
		{"empty and null are absent", rules, `{"userId":"","anonymousId":null,"traits":{"email":"  ","phone":null},"context":{"device":{"id":""}}}`, []string{}, nil},
		{"wrong JSON types", rules, `{"userId":true,"anonymousId":{"id":"a"},"traits":{"email":12,"phone":["138"]},"context":{"device":{"id":false}}}`,
			[]string{}, []string{"user_id:malformed", "anonymous_id:malformed", "email:malformed", "phone:malformed", "device_id:malformed"}},
		{"objects of the wrong type are skipped", rules, `{"userId":"u-1","traits":"a@qq.com","context":[{"traits":{"email":"a@qq.com"}}]}`, []string{"user_id:u-1"}, nil},
		{"names without regard to case", rules, `{"USERID":"u-1","Traits":{"EMAIL":"a@qq.com","Phone":"13812345678"},"Context":{"ExternalIDs":[{"Type":"wechat_openid","ID":"o-1"}],"Device":{"Id":"d-1"}}}`,
			[]string{"user_id:u-1", "email:a@qq.com", "phone:+8613812345678", "wechat_openid:o-1", "device_id:d-1"}, nil},
		{"escaped names", rules, `{"user\u0049d":"u-1","traits":{"em\u0061il":"a@qq.com"}}`, []string{"user_id:u-1", "email:a@qq.com"}, nil},
		{"escaped values", rules, `{"userId":"\u4f1a\u5458-1","traits":{"email":"li\u0040qq.com"}}`, []string{"user_id:会员-1", "email:li@qq.com"}, nil},
		{"a repeated name: the last counts", rules, `{"traits":{"email":"a@qq.com","email":"b@qq.com"},"userId":"u-1","userId":"u-2"}`,
			[]string{"user_id:u-2", "email:b@qq.com"}, nil},
		{"other members and nesting skipped", rules, `{"properties":{"email":"p@qq.com","userId":"x","traits":{"email":"q@qq.com"}},"traits":{"address":{"email":"r@qq.com"},"email":"a@qq.com"},"integrations":{"All":true},"context":{"page":{"url":"https://x.cn/?email=s@qq.com"}}}`,
			[]string{"email:a@qq.com"}, nil},
		{"custom type from traits", member, `{"userId":"u-1","traits":{"member_no":"M-0001"}}`, []string{"user_id:u-1", "member_no:M-0001"}, nil},
		{"custom type from nested context traits, a number", member, `{"context":{"traits":{"member":{"no":1001}}}}`, []string{"member_no:1001"}, nil},
		{"custom type from external ids", member, `{"context":{"externalIds":[{"type":"member_no","id":"M-2"}]}}`, []string{"member_no:M-2"}, nil},
		{"custom type junk", member, `{"traits":{"member_no":"unknown"}}`, []string{}, []string{"member_no:junk"}},
		{"extra field of a built-in type", member, `{"properties":{"contact":{"mobile_phone":"139 1234 5678"}}}`, []string{"phone:+8613912345678"}, nil},
		{"types not in the rules are not read", member, `{"context":{"device":{"id":"d-1"},"externalIds":[{"type":"wechat_openid","id":"o-1"}]}}`, []string{}, nil},
		{"invalid UTF-8 in a value", rules, "{\"userId\":\"u-\xff\"}", []string{"user_id:u-\ufffd"}, nil},
		{"empty object", rules, `{}`, []string{}, nil},
		{"whitespace around", rules, " \n{ \"userId\" : \"u-1\" }\n", []string{"user_id:u-1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var x Extraction
			if err := tt.rules.Extract(&x, []byte(tt.payload)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ids(x.Identifiers)); diff != "" {
				t.Errorf("identifiers (-want +got):\n%s", diff)
			}
			want := tt.refused
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, refusals(x.Refused)); diff != "" {
				t.Errorf("refused (-want +got):\n%s", diff)
			}
			got, err := tt.rules.FromEvent([]byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("FromEvent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractMalformed(t *testing.T) {
	rules := DefaultRules()
	for _, payload := range []string{
		``, ` `, `null`, `[]`, `"userId"`, `42`, `{`, `{"userId":"u-1"`, `{"userId":"u-1"} {}`, `{"userId":"u-1"}]`,
		`{"userId":}`, `{"userId" "u-1"}`, `{"userId":"u-1",}`, `{"traits":{"email":"a@qq.com"}`, `{"context":{"externalIds":[{"type":"email","id":"a@qq.com"}`,
		`{"context":{"externalIds":[{"type":"email","id":"a@qq.com"},]}}`, `{"userId":"\ud800"}x`, `{"userId":'u-1'}`, `{userId:"u-1"}`,
		`{"properties":{"x":[1,2,}}`, `{"userId":"u-1","userId":}`, strings.Repeat(`{"traits":`, 10000),
	} {
		var x Extraction
		x.Identifiers = append(x.Identifiers, Identifier{UserID, "stale"})
		err := rules.Extract(&x, []byte(payload))
		if hearth.KindOf(err) != hearth.Invalid {
			t.Errorf("Extract(%.40q) = %v, want an Invalid error", payload, err)
		}
		if len(x.Identifiers) != 0 {
			t.Errorf("Extract(%.40q) left identifiers %v", payload, ids(x.Identifiers))
		}
		if got, err := rules.FromEvent([]byte(payload)); err == nil || len(got) != 0 {
			t.Errorf("FromEvent(%.40q) = %v, %v; want an error", payload, ids(got), err)
		}
	}
}

func TestExtractZeroRules(t *testing.T) {
	var rules Rules
	got, err := rules.FromEvent([]byte(identifyPayload))
	if err != nil || len(got) != 0 {
		t.Fatalf("FromEvent = %v, %v; want nothing", got, err)
	}
	if _, ok := rules.Normalize(Email, "a@qq.com"); ok {
		t.Error("the zero Rules normalised an email")
	}
}

// TestExtractReuse checks that an Extraction reused holds only the last event's identifiers, and that
// identifiers returned before stay as they were.
func TestExtractReuse(t *testing.T) {
	rules := DefaultRules()
	var x Extraction
	if err := rules.Extract(&x, []byte(touchPayload)); err != nil {
		t.Fatal(err)
	}
	first := ids(x.Identifiers)
	kept := x.Identifiers[0]
	if err := rules.Extract(&x, []byte(`{"userId":"junk","anonymousId":"null"}`)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"user_id:junk"}, ids(x.Identifiers)); diff != "" {
		t.Errorf("second event (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"anonymous_id:junk"}, refusals(x.Refused)); diff != "" {
		t.Errorf("second event refused (-want +got):\n%s", diff)
	}
	if kept.String() != first[0] {
		t.Errorf("an identifier of the first event changed to %v", kept)
	}
}

// TestExtractManyExternalIDs checks that a flood of external ids is read only so far.
func TestExtractManyExternalIDs(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"context":{"externalIds":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"anonymous_id","id":"a-` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `"}`)
	}
	b.WriteString(`]}}`)
	got, err := DefaultRules().FromEvent([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) > maxExternalIDs {
		t.Errorf("%d identifiers, want 1 to %d", len(got), maxExternalIDs)
	}
}
