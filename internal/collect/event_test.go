package collect

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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
	})
}
