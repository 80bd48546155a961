package collect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
)

var received = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func testReq() Request {
	return Request{ReceivedAt: received, IP: "203.0.113.9", UserAgent: "Mozilla/5.0 (iPhone)", Browser: true}
}

func fixedID() string { return "generated-id" }

func noBots(ua string) bool { return strings.Contains(ua, "bot") }

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, typ, in string
		req           func(*Request)
		check         func(t *testing.T, ev Event, payload map[string]any)
	}{
		{
			name: "track with everything", typ: "track",
			in: `{"messageId":"m1","userId":"u1","event":"Order Completed","properties":{"total":99.5},"timestamp":"2026-06-01T11:59:00Z","context":{"locale":"zh-CN"}}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				if ev.MessageID != "m1" || ev.Name != "Order Completed" || ev.UserID != "u1" || ev.Type != "track" {
					t.Errorf("event = %+v", ev)
				}
				if !ev.Timestamp.Equal(received.Add(-time.Minute)) {
					t.Errorf("timestamp = %v", ev.Timestamp)
				}
				ctx := p["context"].(map[string]any)
				if ctx["ip"] != "203.0.113.9" || ctx["userAgent"] != "Mozilla/5.0 (iPhone)" || ctx["locale"] != "zh-CN" {
					t.Errorf("context = %v", ctx)
				}
				if p["properties"].(map[string]any)["total"] != 99.5 {
					t.Errorf("properties = %v", p["properties"])
				}
			},
		},
		{
			name: "clock skew corrected", typ: "",
			in: `{"type":"page","anonymousId":"a1","name":"Home","timestamp":"2020-01-01T00:00:00Z","sentAt":"2020-01-01T00:00:05Z"}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				if want := received.Add(-5 * time.Second); !ev.Timestamp.Equal(want) {
					t.Errorf("timestamp = %v, want receivedAt − 5 s = %v", ev.Timestamp, want)
				}
				if p["originalTimestamp"] != "2020-01-01T00:00:00Z" || ev.Name != "Home" {
					t.Errorf("payload = %v", p)
				}
			},
		},
		{
			// Beijing time sent as UTC, without a sentAt to correct it by: 8 hours ahead of its arrival.
			name: "a time in the future is when it arrived", typ: "track",
			in: `{"userId":"u1","event":"Order Completed","timestamp":"2026-06-01T20:00:00Z"}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				if !ev.Timestamp.Equal(received) || p["timestamp"] != "2026-06-01T12:00:00Z" {
					t.Errorf("timestamp = %v (payload %v), want receivedAt %v", ev.Timestamp, p["timestamp"], received)
				}
				if p["originalTimestamp"] != "2026-06-01T20:00:00Z" {
					t.Errorf("originalTimestamp = %v, want the client's time", p["originalTimestamp"])
				}
			},
		},
		{
			name: "a clock a little ahead is believed", typ: "track",
			in: `{"userId":"u1","event":"x","timestamp":"2026-06-01T12:05:00Z"}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				if want := received.Add(MaxFuture); !ev.Timestamp.Equal(want) {
					t.Errorf("timestamp = %v, want %v", ev.Timestamp, want)
				}
			},
		},
		{
			name: "an event made after it was sent is when it arrived", typ: "track",
			in: `{"userId":"u1","event":"x","timestamp":"2026-06-01T12:00:00Z","sentAt":"2026-06-01T11:00:00Z"}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				if !ev.Timestamp.Equal(received) {
					t.Errorf("timestamp = %v, want receivedAt %v", ev.Timestamp, received)
				}
			},
		},
		{
			name: "batch sentAt and context apply", typ: "",
			in: `{"type":"identify","userId":42,"traits":{"email":"a@example.com"},"timestamp":"2026-06-01T11:00:00+08:00"}`,
			req: func(r *Request) {
				r.SentAt = json.RawMessage(`"2026-06-01T11:00:02+08:00"`)
				r.Context = json.RawMessage(`{"library":{"name":"analytics-go"}}`)
			},
			check: func(t *testing.T, ev Event, p map[string]any) {
				if ev.UserID != "42" || !ev.Timestamp.Equal(received.Add(-2*time.Second)) {
					t.Errorf("event = %+v", ev)
				}
				if p["context"].(map[string]any)["library"] == nil {
					t.Errorf("batch context not applied: %v", p["context"])
				}
			},
		},
		{
			name: "message id and time assigned", typ: "screen",
			in: `{"anonymousId":"a1","name":"Cart"}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				if ev.MessageID != "generated-id" || !ev.Timestamp.Equal(received) || ev.Name != "Cart" {
					t.Errorf("event = %+v", ev)
				}
			},
		},
		{
			name: "client's own ip kept, bot flagged", typ: "track",
			in: `{"anonymousId":"a1","event":"x","context":{"ip":"198.51.100.1","userAgent":"Googlebot/2.1"}}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				ctx := p["context"].(map[string]any)
				if ctx["ip"] != "198.51.100.1" || ctx["userAgent"] != "Googlebot/2.1" || !ev.Bot || p["bot"] != true {
					t.Errorf("event %+v, context %v", ev, ctx)
				}
			},
		},
		{
			name: "empty context object", typ: "track",
			in: `{"anonymousId":"a1","event":"x","context":{ }}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				if p["context"].(map[string]any)["ip"] != "203.0.113.9" {
					t.Errorf("context = %v", p["context"])
				}
			},
		},
		{
			name: "alias", typ: "alias", in: `{"previousId":"a1","userId":"u1"}`,
			check: func(t *testing.T, ev Event, p map[string]any) {
				if p["previousId"] != "a1" {
					t.Errorf("payload = %v", p)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := testReq()
			if tt.req != nil {
				tt.req(&req)
			}
			ev, err := Normalize([]byte(tt.in), tt.typ, req, fixedID, noBots)
			if err != nil {
				t.Fatal(err)
			}
			var p map[string]any
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatalf("payload is not JSON: %v: %s", err, ev.Payload)
			}
			tt.check(t, ev, p)
		})
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct{ name, typ, in, reason string }{
		{"no identity", "track", `{"event":"x"}`, "userId or anonymousId is required"},
		{"blank identity", "track", `{"event":"x","userId":"  "}`, "userId or anonymousId is required"},
		{"track without event", "track", `{"userId":"u"}`, "event is required"},
		{"group without groupId", "group", `{"userId":"u"}`, "groupId is required"},
		{"alias without previousId", "alias", `{"userId":"u"}`, "previousId and userId are required"},
		{"no type in batch", "", `{"userId":"u"}`, "type is missing"},
		{"unknown type", "", `{"type":"purchase","userId":"u"}`, "is not one of"},
		{"type mismatch", "track", `{"type":"page","userId":"u","event":"x"}`, "does not match"},
		{"properties not object", "track", `{"userId":"u","event":"x","properties":[1]}`, "properties must be an object"},
		{"traits not object", "identify", `{"userId":"u","traits":"x"}`, "traits must be an object"},
		{"bad timestamp", "track", `{"userId":"u","event":"x","timestamp":"yesterday"}`, "not an ISO 8601 date"},
		{"userId object", "track", `{"userId":{"a":1},"event":"x"}`, "userId must be a string"},
		{"long userId", "track", `{"userId":"` + strings.Repeat("u", 256) + `","event":"x"}`, "longer than 255"},
		{"not JSON", "track", `{"userId":`, "not valid JSON"},
		{"not an object", "track", `[1]`, "must be a JSON object"},
		{"bad context ip", "track", `{"userId":"u","event":"x","context":{"ip":5}}`, "context.ip"},
		{"huge number", "track", `{"userId":"u","event":"x","properties":{"a":"1e999","n":[1,-1E+1000000]}}`, "properties holds the number -1E+1000000, out of range"},
		{"many decimals", "identify", `{"userId":"u","traits":{"a\"1e999":0.5e-340}}`, "traits holds the number 0.5e-340, out of range"},
		{"zero's decimals", "track", `{"userId":"u","event":"x","context":{"n":0e-99999}}`, "context holds the number 0e-99999"},
		{"long exponent", "track", `{"userId":"u","event":"x","integrations":{"n":1e99999999999999999999}}`, "integrations holds the number"},
		{"too deep", "track", `{"userId":"u","event":"x","properties":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "nested more than 10,000 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize([]byte(tt.in), tt.typ, testReq(), fixedID, noBots)
			if hearth.KindOf(err) != hearth.Invalid {
				t.Fatalf("err = %v, want Invalid", err)
			}
			if !strings.Contains(hearth.MessageOf(err), tt.reason) {
				t.Errorf("reason %q, want it to say %q", hearth.MessageOf(err), tt.reason)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 6, 1, 4, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-06-01T04:00:00Z", "2026-06-01T12:00:00+08:00", "2026-06-01T12:00:00.000+0800", "2026-06-01 04:00:00Z", "2026-06-01T04:00:00", "1780286400000"} {
		got, err := parseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
}

// Whatever arrives, Normalize answers an event whose payload is a JSON object, or an Invalid error with a
// reason; it never panics.
func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{
		`{"type":"track","userId":"u","event":"x","properties":{"a":1},"context":{"ip":"1.2.3.4"}}`,
		`{"anonymousId":"a","context":{}}`, `{"userId":1e400}`, `{"userId":"u","timestamp":"2026-01-01T00:00:00Z","sentAt":"1999-01-01T00:00:00Z"}`,
		`{"userId":"u","context":{ "x" : 1 }}`, `{"userId":"u","context":{"userAgent":null}}`, `null`, `"x"`, `{"userId":"\ud800"}`,
	} {
		f.Add(seed, "track")
		f.Add(seed, "")
	}
	f.Fuzz(func(t *testing.T, in, typ string) {
		ev, err := Normalize([]byte(in), typ, testReq(), fixedID, noBots)
		if err != nil {
			if hearth.KindOf(err) != hearth.Invalid || hearth.MessageOf(err) == "" {
				t.Fatalf("error %v is not Invalid with a reason", err)
			}
			return
		}
		var p map[string]any
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatalf("payload %s is not a JSON object: %v", ev.Payload, err)
		}
		if ev.MessageID == "" || (ev.UserID == "" && ev.AnonymousID == "") || !eventTypes[ev.Type] {
			t.Fatalf("normalised event lacks what it must have: %+v", ev)
		}
		if !StorableJSON(ev.Payload) {
			t.Fatalf("payload %q holds text PostgreSQL refuses", ev.Payload)
		}
		if n := numberOutOfRange(ev.Payload); n != nil {
			t.Fatalf("payload %q holds the number %s, out of range", ev.Payload, n)
		}
		for _, s := range []string{ev.MessageID, ev.UserID, ev.AnonymousID, ev.Name} {
			if !storableText(s) {
				t.Fatalf("field %q holds text PostgreSQL refuses", s)
			}
		}
	})
}

func storableText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// What PostgreSQL cannot store (NUL, a lone surrogate's escape, bytes that are not UTF-8) is kept as U+FFFD,
// on both engines alike; the rest of the event, an emoji's surrogate pair and an escaped backslash included,
// is kept as sent.
func TestNormalizeUnstorableText(t *testing.T) {
	in := "{\"userId\":\"u\\u0000 1\",\"anonymousId\":\"a\xff\",\"event\":\"Bought \\ud800\",\"messageId\":\"m\\u0000\"," +
		"\"properties\":{\"nul\":\"x\\u0000y\",\"k\\u0000\":\"v\",\"high\":\"\\uD83D!\",\"low\":\"\\udc00\",\"emoji\":\"\\ud83d\\ude00\"," +
		"\"path\":\"C:\\\\u0000\",\"bytes\":\"\xe4\xb8\",\"ok\":\"\u4e2d\"}}"
	ev, err := Normalize([]byte(in), "track", testReq(), fixedID, noBots)
	if err != nil {
		t.Fatal(err)
	}
	if ev.UserID != "u\uFFFD 1" || ev.AnonymousID != "a\uFFFD" || ev.Name != "Bought \uFFFD" || ev.MessageID != "m\uFFFD" {
		t.Errorf("ids %q %q %q %q, want U+FFFD for what cannot be stored", ev.UserID, ev.AnonymousID, ev.Name, ev.MessageID)
	}
	if !StorableJSON(ev.Payload) {
		t.Fatalf("payload %s is not storable", ev.Payload)
	}
	var p struct{ Properties map[string]string }
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"nul": "x\uFFFDy", "k\uFFFD": "v", "high": "\uFFFD!", "low": "\uFFFD", "emoji": "😀",
		"path": `C:\u0000`, "bytes": "\uFFFD\uFFFD", "ok": "中"}
	for k, v := range want {
		if got, ok := p.Properties[k]; !ok || got != v {
			t.Errorf("properties[%q] = %q, want %q", k, got, v)
		}
	}
}

// Numbers within a double's range and beyond are kept as sent; only those PostgreSQL refuses, or would
// render as thousands of digits, are refused.
func TestNumbersInRange(t *testing.T) {
	for _, n := range []string{"0", "-0", "12.5", "1e308", "-1.7976931348623157E+308", "4.9e-324", "123456789012345678901234567890",
		"0.000001", "1e-300", "9" + strings.Repeat("9", 308), "0." + strings.Repeat("0", 339) + "1", "1" + strings.Repeat("0", 300) + "e8"} {
		if !numberInRange([]byte(n)) {
			t.Errorf("%.40s… is refused", n)
		}
	}
	for _, n := range []string{"1e310", "1e1000000", "0e-99999", "1e-341", "0.5e-340", "1" + strings.Repeat("0", 309), "0." + strings.Repeat("0", 340) + "1",
		"1e+99999999999999999999"} {
		if numberInRange([]byte(n)) {
			t.Errorf("%.40s… is kept", n)
		}
	}
	if got := numberOutOfRange([]byte(`{"a\\":"1e999","b\"":[true,false,null,1e999]}`)); string(got) != "1e999" {
		t.Errorf("numberOutOfRange = %s, want the one number outside the strings", got)
	}
}

func TestStorableJSON(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`"\u0000"`, `"\ufffd"`},
		{`"\\u0000"`, `"\\u0000"`},           // an escaped backslash, then text
		{`"\\\u0000"`, `"\\\ufffd"`},         // an escaped backslash, then NUL
		{`"\ud83d\ude00"`, `"\ud83d\ude00"`}, // a pair
		{`"\uD83D\uDE00"`, `"\uD83D\uDE00"`},
		{`"\ud83d"`, `"\ufffd"`},
		{`"\ud83d\u0041"`, `"\ufffd\u0041"`},
		{`"\ude00\ud83d"`, `"\ufffd\ufffd"`},
		{`"\ud83d\ud83d\ude00"`, `"\ufffd\ud83d\ude00"`},
		{"\"\xff\xe4\xb8\xad\"", "\"\uFFFD中\""},
		{`["\n\"\/","\u00e9"]`, `["\n\"\/","\u00e9"]`},
	} {
		got := string(appendStorableJSON(nil, []byte(tt.in)))
		if got != tt.want {
			t.Errorf("appendStorableJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if StorableJSON([]byte(tt.in)) != (got == tt.in) {
			t.Errorf("StorableJSON(%s) = %v, but it becomes %s", tt.in, !(got == tt.in), got)
		}
	}
}

// Whatever valid JSON arrives, what appendStorableJSON makes of it is valid JSON that StorableJSON accepts,
// and unchanged when StorableJSON accepted it already; StorableJSON never panics on anything.
func FuzzStorableJSON(f *testing.F) {
	for _, seed := range []string{`{"a":"\u0000"}`, `"\ud800"`, `"\\\ud83d\ude00"`, "\"\xff\"", `[1,"\\"]`, `"\`, `"\u12`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		ok := StorableJSON(v)
		if !json.Valid(v) {
			return
		}
		got := appendStorableJSON(nil, v)
		if !json.Valid(got) || !StorableJSON(got) {
			t.Fatalf("%q became %q", v, got)
		}
		if ok != bytes.Equal(got, v) {
			t.Fatalf("StorableJSON(%q) = %v, but it became %q", v, ok, got)
		}
	})
}
