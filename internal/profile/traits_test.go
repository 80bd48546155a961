package profile

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
)

var t0 = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

// wechatAndCRM maps a WeChat source's user info and a CRM's fields, as the examples do.
var wechatAndCRM = Settings{
	Mappings: []Mapping{
		{SourceID: "wechat", Fields: []FieldMap{
			{From: "nickname", To: "name"},
			{From: "sex", To: "gender", Values: map[string]any{"1": "male", "2": "female", "0": "unknown"}},
			{From: "headimgurl", To: "avatar"},
			{From: "privilege"}, // dropped
		}},
		{SourceID: "crm", Only: true, Fields: []FieldMap{
			{From: "mobile", To: "phone", Type: "string"},
			{From: "vip_level", To: "vip_level", Type: "number"},
			{From: "member", To: "member", Type: "boolean"},
			{From: "birth", To: "birthday", Type: "date"},
			{From: "address.city", To: "city"},
			{From: "properties.store", To: "home_store"},
		}},
	},
	Traits: []TraitRule{
		{Name: "name", Precedence: SourcePriority, Sources: []string{"crm", "wechat"}},
		{Name: "signup_channel", Precedence: FirstSeen},
	},
	Lifecycle: DefaultSettings().Lifecycle,
}

func event(source, payload string, seq int64) collect.Event {
	var head struct {
		Type  string `json:"type"`
		Event string `json:"event"`
	}
	json.Unmarshal([]byte(payload), &head)
	return collect.Event{Seq: seq, SourceID: source, Type: head.Type, Name: head.Event, Timestamp: t0.Add(time.Duration(seq) * time.Minute), Payload: []byte(payload)}
}

func traitValues(ts []Trait) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[t.Name] = string(t.Value)
	}
	return m
}

func TestTraitsOf(t *testing.T) {
	if err := wechatAndCRM.Validate(); err != nil {
		t.Fatal(err)
	}
	c := compileSettings(wechatAndCRM)
	for _, tc := range []struct {
		name, source, payload string
		want                  map[string]string
	}{
		{"unmapped source: every trait as sent, identify's over context's", "web",
			`{"type":"identify","traits":{"email":"a@example.com","plan":"pro","city":null},"context":{"traits":{"plan":"free","lang":"zh"}}}`,
			map[string]string{"email": `"a@example.com"`, "plan": `"pro"`, "lang": `"zh"`}},
		{"wechat: renamed, value map, dropped, the rest kept", "wechat",
			`{"type":"identify","traits":{"nickname":"小明","sex":1,"headimgurl":"https://x/y.png","privilege":["a"],"province":"广东"}}`,
			map[string]string{"name": `"小明"`, "gender": `"male"`, "avatar": `"https://x/y.png"`, "province": `"广东"`}},
		{"wechat: a value the map lacks is kept as sent", "wechat",
			`{"type":"identify","traits":{"sex":3}}`, map[string]string{"gender": `3`}},
		{"crm: only mapped fields, coerced; a value that does not convert is not kept", "crm",
			`{"type":"identify","traits":{"mobile":13800001111,"vip_level":"3","member":"是","birth":"1990/07/15","address":{"city":"杭州"},"secret":"x"},"properties":{"store":"SH-01"}}`,
			map[string]string{"phone": `"13800001111"`, "vip_level": `3`, "member": `true`, "birthday": `"1990-07-15"`, "city": `"杭州"`, "home_store": `"SH-01"`}},
		{"crm: bad number and date dropped", "crm",
			`{"type":"identify","traits":{"vip_level":"gold","birth":"someday","member":"maybe"}}`, map[string]string{}},
		{"wechat follow and unfollow say the consent", "wechat", `{"type":"track","event":"WeChat Followed"}`, map[string]string{"wechat_subscribed": "true"}},
		{"unfollow", "wechat", `{"type":"track","event":"WeChat Unfollowed"}`, map[string]string{"wechat_subscribed": "false"}},
		{"no traits", "web", `{"type":"track","event":"Product Viewed","properties":{"traits":1}}`, map[string]string{}},
		{"bad names and big values are not kept", "web",
			`{"type":"identify","traits":{"a.b":1,"":2,"ok":"` + strings.Repeat("x", maxTraitValue) + `","昵称":"阿明"}}`, map[string]string{"昵称": `"阿明"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.traitsOf(event(tc.source, tc.payload, 7))
			if diff := cmp.Diff(tc.want, traitValues(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, tr := range got {
				if tr.SourceID != tc.source || tr.Seq != 7 || !tr.At.Equal(t0.Add(7*time.Minute)) {
					t.Errorf("provenance of %s = %s, %d, %v", tr.Name, tr.SourceID, tr.Seq, tr.At)
				}
			}
		})
	}
}

func TestWins(t *testing.T) {
	c := compileSettings(wechatAndCRM)
	tr := func(name, source string, seq int64, minutes int) Trait {
		return Trait{Name: name, Value: json.RawMessage(`1`), SourceID: source, Seq: seq, At: t0.Add(time.Duration(minutes) * time.Minute)}
	}
	for _, tc := range []struct {
		name     string
		old, new Trait
		want     bool
	}{
		{"most recent: later event wins", tr("city", "web", 1, 1), tr("city", "web", 2, 2), true},
		{"most recent: an event that happened earlier, logged later, does not", tr("city", "web", 5, 10), tr("city", "web", 6, 3), false},
		{"most recent: same time, later seq wins", tr("city", "web", 5, 10), tr("city", "web", 6, 10), true},
		{"first seen: earlier wins", tr("signup_channel", "web", 5, 10), tr("signup_channel", "web", 6, 3), true},
		{"first seen: later does not", tr("signup_channel", "web", 5, 10), tr("signup_channel", "web", 6, 11), false},
		{"source priority: stronger source wins though older", tr("name", "wechat", 5, 10), tr("name", "crm", 6, 1), true},
		{"source priority: weaker never", tr("name", "crm", 5, 10), tr("name", "wechat", 6, 20), false},
		{"source priority: unlisted loses to listed", tr("name", "wechat", 5, 10), tr("name", "web", 6, 20), false},
		{"source priority: same source, most recent", tr("name", "crm", 5, 10), tr("name", "crm", 6, 20), true},
	} {
		if got := c.wins(tc.old, tc.new); got != tc.want {
			t.Errorf("%s: wins = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStepsOf(t *testing.T) {
	no := json.RawMessage("false")
	for _, tc := range []struct {
		name                     string
		counts                   map[identity.Type]int
		traits                   map[string]Trait
		activatedAt, convertedAt time.Time
		want                     Steps
		stage                    Stage
	}{
		{"anonymous", map[identity.Type]int{identity.AnonymousID: 2, identity.DeviceID: 1}, nil, time.Time{}, time.Time{}, Steps{}, Anonymous},
		{"identified by user id", map[identity.Type]int{identity.UserID: 1}, nil, time.Time{}, time.Time{}, Steps{Identified: true}, Identified},
		{"connected by email", map[identity.Type]int{identity.Email: 1}, nil, time.Time{}, time.Time{}, Steps{Identified: true, Connected: true}, Connected},
		{"email opted out: identified", map[identity.Type]int{identity.Email: 1}, map[string]Trait{EmailSubscribed: {Value: no}},
			time.Time{}, time.Time{}, Steps{Identified: true}, Identified},
		{"email opted out, phone reachable", map[identity.Type]int{identity.Email: 1, identity.Phone: 1}, map[string]Trait{EmailSubscribed: {Value: no}},
			time.Time{}, time.Time{}, Steps{Identified: true, Connected: true}, Connected},
		{"unfollowed WeChat", map[identity.Type]int{identity.WeChatOpenID: 1}, map[string]Trait{WeChatSubscribed: {Value: no}},
			time.Time{}, time.Time{}, Steps{Identified: true}, Identified},
		{"activated while anonymous", map[identity.Type]int{identity.AnonymousID: 1}, nil, t0, time.Time{}, Steps{Activated: true}, Activated},
		{"converted without a reachable channel", map[identity.Type]int{identity.UserID: 1}, nil, time.Time{}, t0,
			Steps{Identified: true, Converted: true}, Converted},
		{"every step", map[identity.Type]int{identity.Phone: 1}, nil, t0, t0, Steps{true, true, true, true}, Converted},
	} {
		got := stepsOf(tc.counts, tc.traits, tc.activatedAt, tc.convertedAt)
		if got != tc.want || got.Stage() != tc.stage {
			t.Errorf("%s: steps %+v, stage %s; want %+v, %s", tc.name, got, got.Stage(), tc.want, tc.stage)
		}
	}
}

// A profile read whole answers the steps of its identities, traits and events.
func TestProfileSteps(t *testing.T) {
	p := Profile{Identities: []Identity{{Identifier: identity.Identifier{Type: identity.Email, Value: "ada@example.com"}}},
		Traits: []Trait{{Name: EmailSubscribed, Value: json.RawMessage("false")}}, ConvertedAt: t0}
	if got, want := p.Steps(), (Steps{Identified: true, Converted: true}); got != want {
		t.Errorf("steps %+v, want %+v", got, want)
	}
}

// A profile read whole says when it met each step: from the first event of the identifiers that meet it,
// however they came (a merge brings the absorbed profile's with their times).
func TestProfileStepTimes(t *testing.T) {
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	id := func(typ identity.Type, v string, h int) Identity {
		i := Identity{Identifier: identity.Identifier{Type: typ, Value: v}}
		if h >= 0 {
			i.FirstAt = at(h)
		}
		return i
	}
	p := Profile{Identities: []Identity{
		id(identity.AnonymousID, "a1", 0), id(identity.DeviceID, "d1", 1), id(identity.Email, "ada@example.com", 5),
		id(identity.UserID, "u1", 9), id(identity.Phone, "+8613800000001", 3), id(identity.WeChatOpenID, "o1", -1),
	}, Traits: []Trait{{Name: SMSSubscribed, Value: json.RawMessage("false")}}, ActivatedAt: at(2), ConvertedAt: at(7)}
	want := StepTimes{Identified: at(3), Connected: at(5), Activated: at(2), Converted: at(7)}
	if got := p.StepTimes(); got != want {
		t.Errorf("step times %+v, want %+v (the phone opted out: connected by the email)", got, want)
	}
	if got := (Profile{Identities: []Identity{id(identity.AnonymousID, "a1", 0)}}).StepTimes(); got != (StepTimes{}) {
		t.Errorf("anonymous: %+v, want none", got)
	}
}

func TestParseDate(t *testing.T) {
	for in, want := range map[string]string{"1990-07-15": "1990-07-15", "1990/7/5": "1990-07-05", "19900715": "1990-07-15",
		"1990年7月15日": "1990-07-15", "2026-05-01T08:00:00+08:00": "2026-05-01", "648000000": "1990-07-15", "648000000000": "1990-07-15"} {
		if got, ok := parseDate(in); !ok || got != want {
			t.Errorf("parseDate(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "someday", "1990-13-01", "-5"} {
		if got, ok := parseDate(bad); ok {
			t.Errorf("parseDate(%q) = %q, want refused", bad, got)
		}
	}
}

func TestDisplayNameAndKey(t *testing.T) {
	s := func(v string) Trait { b, _ := json.Marshal(v); return Trait{Value: b} }
	if got := displayName(map[string]Trait{"name": s(" Ada Lovelace "), "first_name": s("X")}); got != "Ada Lovelace" {
		t.Errorf("name = %q", got)
	}
	if got := displayName(map[string]Trait{"first_name": s("Ada"), "last_name": s("Lovelace")}); got != "Ada Lovelace" {
		t.Errorf("first and last = %q", got)
	}
	if got := displayName(map[string]Trait{"name": {Value: json.RawMessage("42")}}); got != "" {
		t.Errorf("a number is no name: %q", got)
	}
	if got := NameKey("Ada  Lovelace\u3000王"); got != "adalovelace王" {
		t.Errorf("NameKey = %q", got)
	}
}

func TestSettingsValidate(t *testing.T) {
	bad := Settings{
		Mappings:  []Mapping{{SourceID: "", Fields: []FieldMap{{From: "", To: "a.b", Type: "money"}}}, {SourceID: "x"}, {SourceID: "x", Fields: []FieldMap{{From: "properties"}}}},
		Traits:    []TraitRule{{Name: "name", Precedence: "loudest"}, {Name: "name", Precedence: SourcePriority}},
		Lifecycle: Lifecycle{ConversionEvents: []string{" "}},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad settings")
	}
	for _, want := range []string{"mappings[0].source_id", "mappings[0].fields[0].from", "mappings[0].fields[0].to", "mappings[0].fields[0].type",
		"mappings[2].source_id", "mappings[2].fields[0].from", "traits[0].precedence", "traits[1].name", "traits[1].sources", "lifecycle.conversion_events[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	if _, err := ParseSettings([]byte(`{"mappings":[],"colour":"red"}`)); err == nil {
		t.Error("ParseSettings accepted an unknown field")
	}
	var e *hearth.Error
	if _, err := ParseSettings([]byte(`{"mappings":[{"source_id":"crm","fields":[{"from":1}]}]}`)); !errors.As(err, &e) ||
		!strings.Contains(e.Msg, "mappings.fields.from has the wrong type") || strings.Contains(e.Msg, "Go ") {
		t.Errorf("ParseSettings of a number for a field's name: %v; the message must name the member without Go's types", err)
	}
	s, err := ParseSettings([]byte(`{"lifecycle":{"conversion_events":["Paid"]}}`))
	if err != nil || s.Lifecycle.ConversionEvents[0] != "Paid" {
		t.Errorf("ParseSettings = %+v, %v", s, err)
	}
}

func TestConfigJSON(t *testing.T) {
	c, err := ParseConfig([]byte(`{"identity":{"phone_region":"HK"},"lifecycle":{"conversion_events":["Paid"]},
		"mappings":[{"source_id":"wechat","fields":[{"from":"nickname","to":"name"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity.Settings().PhoneRegion != "HK" || c.Lifecycle.ConversionEvents[0] != "Paid" ||
		len(c.Lifecycle.ActivationEvents) == 0 || c.Mappings[0].Fields[0].To != "name" {
		t.Errorf("ParseConfig: absent members must take their defaults, given ones kept: %+v", c)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseConfig(out)
	if err != nil {
		t.Fatalf("ParseConfig of MarshalJSON's output: %v\n%s", err, out)
	}
	out2, _ := json.Marshal(again)
	if string(out) != string(out2) {
		t.Errorf("round trip differs:\n%s\n%s", out, out2)
	}
	for _, bad := range []string{`[]`, `{"colour":1}`, `{"identity":{"types":[{"type":"shoe_size"}]}}`, `{"traits":[{"name":"x","precedence":"loudest"}]}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%s) accepted it", bad)
		}
	}
	def, _ := json.Marshal(DefaultConfig())
	if !strings.Contains(string(def), `"mappings":[]`) || !strings.Contains(string(def), `"identity":{"phone_region":"CN"`) {
		t.Errorf("the default config as JSON: %s", def)
	}
}

// FuzzParseConfig checks that reading the profile settings (identity rules, mappings, traits, lifecycle)
// never panics, that a refusal is an Invalid error, and that settings it accepts read back from their own JSON
// as the same settings.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"identity":{"phone_region":"HK"},"lifecycle":{"conversion_events":["Paid"]},
		"mappings":[{"source_id":"wechat","fields":[{"from":"nickname","to":"name"},{"from":"sex","to":"gender","values":{"1":"male","2":"female"}}]}]}`,
		`{"identity":{"types":[{"type":"user_id"},{"type":"member_no","limit":2,"junk":["-"],"fields":["traits.member_no"]},{"type":"email","limit":5}]}}`,
		`{"traits":[{"name":"name","precedence":"source_priority","sources":["crm","wechat"]},{"name":"city","precedence":"first_seen"}]}`,
		`{"mappings":[{"source_id":"crm","fields":[{"from":"mobile","to":"phone","type":"string"},{"from":"score","to":"score","type":"number"}]}]}`,
		`{"identity":{"types":[{"type":"shoe_size"}]}}`, `{"identity":{"phone_region":"XX"}}`, `{"traits":[{"name":"x","precedence":"loudest"}]}`,
		`{"colour":1}`, `[]`, `null`, `{"identity":[]}`, `{"lifecycle":{"activation_events":[""]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if hearth.KindOf(err) != hearth.Invalid {
				t.Fatalf("ParseConfig(%q): %v, want an Invalid error", data, err)
			}
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("MarshalJSON of %q: %v", data, err)
		}
		again, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("ParseConfig(%q) accepted it, but not its own JSON %s: %v", data, out, err)
		}
		if out2, _ := json.Marshal(again); string(out2) != string(out) {
			t.Fatalf("%q reads back differently:\n%s\n%s", data, out, out2)
		}
	})
}

// The store keeps steps as bits, and segment conditions select stages and steps by them.
func TestStepsBits(t *testing.T) {
	for b := range 16 {
		if got := StepsOfBits(b).Bits(); got != b {
			t.Errorf("StepsOfBits(%d).Bits() = %d", b, got)
		}
	}
	for stage, bit := range map[Stage]int{Anonymous: 0, Identified: 1, Connected: 2, Activated: 4, Converted: 8} {
		if got := StepBit(stage); got != bit {
			t.Errorf("StepBit(%s) = %d, want %d", stage, got, bit)
		}
		if stage != Anonymous && StepsOfBits(bit).Stage() != stage {
			t.Errorf("StepsOfBits(%d).Stage() = %s, want %s", bit, StepsOfBits(bit).Stage(), stage)
		}
	}
}
