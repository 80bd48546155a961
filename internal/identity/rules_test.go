package identity

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
)

func TestDefaultRules(t *testing.T) {
	rules := DefaultRules()
	if err := DefaultSettings().Validate(); err != nil {
		t.Fatalf("the default settings are not valid: %v", err)
	}
	want := []Type{UserID, WeChatUnionID, Email, Phone, WeChatOpenID, DeviceID, AnonymousID}
	if diff := cmp.Diff(want, rules.Types()); diff != "" {
		t.Errorf("types (-want +got):\n%s", diff)
	}
	limits := map[Type]int{UserID: 1, WeChatUnionID: 1, Email: 5, Phone: 5, WeChatOpenID: 5, DeviceID: 10, AnonymousID: 100, "member_no": 0}
	for typ, limit := range limits {
		if got := rules.Limit(typ); got != limit {
			t.Errorf("Limit(%s) = %d, want %d", typ, got, limit)
		}
	}
	for i, typ := range want {
		if got := rules.Priority(typ); got != i {
			t.Errorf("Priority(%s) = %d, want %d", typ, got, i)
		}
	}
	if got := rules.Priority("member_no"); got != -1 {
		t.Errorf("Priority(member_no) = %d, want -1", got)
	}
	if rules.Settings().PhoneRegion != "CN" {
		t.Errorf("phone region %q, want CN", rules.Settings().PhoneRegion)
	}
	for _, typ := range want {
		if !typ.BuiltIn() {
			t.Errorf("%s is not built in", typ)
		}
	}
	if Type("member_no").BuiltIn() {
		t.Error("member_no is built in")
	}
}

func TestParseRules(t *testing.T) {
	t.Run("empty object is the defaults", func(t *testing.T) {
		rules, err := ParseRules([]byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(DefaultSettings(), rules.Settings()); diff != "" {
			t.Errorf("settings (-want +got):\n%s", diff)
		}
	})
	t.Run("custom types, order, limits and junk", func(t *testing.T) {
		rules, err := ParseRules([]byte(`{"phone_region":"HK","types":[
			{"type":"member_no","limit":1,"fields":["traits.member_no"]},
			{"type":"user_id"},
			{"type":"email","limit":3,"junk":["*@brand.cn"]},
			{"type":"phone","junk":[]},
			{"type":"anonymous_id","limit":20}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want := Settings{PhoneRegion: "HK", Types: []TypeRule{
			{Type: "member_no", Limit: 1, Junk: DefaultJunk("member_no"), Fields: []string{"traits.member_no"}},
			{Type: UserID, Limit: 1, Junk: DefaultJunk(UserID)},
			{Type: Email, Limit: 3, Junk: []string{"*@brand.cn"}},
			{Type: Phone, Limit: 5, Junk: []string{}},
			{Type: AnonymousID, Limit: 20, Junk: DefaultJunk(AnonymousID)},
		}}
		if diff := cmp.Diff(want, rules.Settings()); diff != "" {
			t.Errorf("settings (-want +got):\n%s", diff)
		}
		if rules.Priority("member_no") != 0 || rules.Priority(DeviceID) != -1 {
			t.Errorf("priorities: member_no %d, device_id %d", rules.Priority("member_no"), rules.Priority(DeviceID))
		}
		if _, ok := rules.Normalize(Phone, "13800138000"); ok {
			t.Error("a CN number without its country code is a phone in HK")
		}
		if id, ok := rules.Normalize(Phone, "6123 4567"); !ok || id.Value != "+85261234567" {
			t.Errorf("HK number = %v, %v", id, ok)
		}
	})
	t.Run("round trip", func(t *testing.T) {
		s := DefaultSettings()
		s.Types = append(s.Types, TypeRule{Type: "member_no", Limit: 2, Junk: []string{}, Fields: []string{"traits.member_no", "context.traits.会员号"}})
		rules, err := NewRules(s)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(rules)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseRules(data)
		if err != nil {
			t.Fatalf("ParseRules(%s): %v", data, err)
		}
		if diff := cmp.Diff(s, again.Settings()); diff != "" {
			t.Errorf("settings (-want +got):\n%s", diff)
		}
	})
	t.Run("settings are copies", func(t *testing.T) {
		rules := DefaultRules()
		s := rules.Settings()
		s.Types[0].Junk[0] = "changed"
		s.Types[0].Limit = 99
		if rules.Settings().Types[0].Junk[0] == "changed" || rules.Limit(UserID) != 1 {
			t.Error("changing the settings returned changed the rules")
		}
	})
}

func TestParseRulesInvalid(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string // the fields of the problems
	}{
		{"not JSON", `{"types":`, []string{"rules"}},
		{"not an object", `[]`, []string{"rules"}},
		{"data after", `{} {}`, []string{"rules"}},
		{"unknown member", `{"phone_regoin":"CN"}`, []string{"rules"}},
		{"unknown member of a type", `{"types":[{"type":"email","limt":5}]}`, []string{"rules"}},
		{"wrong type", `{"types":[{"type":"email","limit":"5"}]}`, []string{"rules"}},
		{"no types", `{"types":[]}`, []string{"types"}},
		{"junk that is everything", `{"types":[{"type":"email","junk":["*@*","**"]}]}`, []string{"types[0] (email).junk[1]"}},
		{"custom type without a limit", `{"types":[{"type":"member_no"}]}`, []string{"types[0] (member_no).limit"}},
		{"every problem at once", `{"phone_region":"XX","types":[
			{"type":"user_id","limit":0},
			{"type":"Member No","limit":1},
			{"type":"email","limit":100000,"junk":["ok","bad\u0000"]},
			{"type":"user_id"},
			{"type":"","limit":1},
			{"type":"member_no","limit":1,"fields":["member_no","traits.email","traits","context.device.id.x","traits.a..b","traits.*","properties.x","properties.x"]}]}`,
			[]string{"types[0] (user_id).limit", "types[1].type", "types[2] (email).limit", "types[2] (email).junk[1]", "types[3].type", "types[4].type",
				"types[5] (member_no).fields[0]", "types[5] (member_no).fields[1]", "types[5] (member_no).fields[2]", "types[5] (member_no).fields[3]",
				"types[5] (member_no).fields[4]", "types[5] (member_no).fields[5]", "types[5] (member_no).fields[7]", "phone_region"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.json))
			if hearth.KindOf(err) != hearth.Invalid {
				t.Fatalf("ParseRules = %v, want an Invalid error", err)
			}
			var fields []string
			for _, p := range Problems(err) {
				fields = append(fields, p.Field)
				if p.Msg == "" {
					t.Errorf("%s: no message", p.Field)
				}
			}
			if diff := cmp.Diff(tt.want, fields); diff != "" {
				t.Errorf("problems (-want +got):\n%s\n%v", diff, err)
			}
			if msg := hearth.MessageOf(err); !strings.Contains(msg, tt.want[0]) {
				t.Errorf("the message %q does not name %s", msg, tt.want[0])
			}
		})
	}
}

func TestSettingsValidate(t *testing.T) {
	s := DefaultSettings()
	s.PhoneRegion = ""
	s.Types = append(s.Types, TypeRule{Type: "member_no", Limit: 1, Fields: []string{"traits.Email"}})
	var fields []string
	for _, p := range Problems(s.Validate()) {
		fields = append(fields, p.Field)
	}
	if diff := cmp.Diff([]string{"types[7] (member_no).fields[0]", "phone_region"}, fields); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if _, err := NewRules(s); hearth.KindOf(err) != hearth.Invalid {
		t.Errorf("NewRules = %v, want an Invalid error", err)
	}
	if Problems(nil) != nil || Problems(hearth.Errorf(hearth.Invalid, "x", "y")) != nil {
		t.Error("Problems of an error that lists none")
	}
}
