package collect

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The hand-written payload of a touch is valid JSON with everything in its place, extra properties
// overridden by the touch's own.
func TestTouchEvent(t *testing.T) {
	at := time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC)
	touch := Touch{
		Resolved: ResolvedTouch{TouchpointID: "tp1", TouchpointName: `Poster "A" <1>`, CampaignID: "c1", Channel: "qr_poster", Serial: 42},
		Token:    "tok", Via: "offline", UserID: "u1", AnonymousID: "a1",
		Traits:      map[string]string{"phone": "+8613800000000", "email": "li@example.com"},
		ExternalIDs: []ExternalID{{Type: "wechat_openid", ID: "o1"}},
		Properties:  json.RawMessage(`{ "coupon": "SPRING", "touchpoint_id": "forged" }`),
		IP:          "203.0.113.9", UserAgent: "UA", Referrer: "https://ref.example/", Method: "GET", Bot: true, At: at, ReceivedAt: at.Add(time.Second),
	}
	ev, err := touch.Event("touch", func() string { return "m1" })
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(ev.Payload, &got); err != nil {
		t.Fatalf("%s: %v", ev.Payload, err)
	}
	// encoding/json keeps the last of repeated names, as every reader of the log does.
	want := map[string]any{
		"type": "track", "messageId": "m1", "anonymousId": "a1", "userId": "u1", "event": "Touch",
		"properties": map[string]any{"coupon": "SPRING", "touchpoint_id": "tp1", "touchpoint": `Poster "A" <1>`, "channel": "qr_poster",
			"token": "tok", "via": "offline", "campaign_id": "c1", "method": "GET", "serial": float64(42)},
		"context": map[string]any{"library": map[string]any{"name": "hearth", "version": "dev"}, "ip": "203.0.113.9", "userAgent": "UA",
			"page": map[string]any{"referrer": "https://ref.example/"}, "traits": map[string]any{"email": "li@example.com", "phone": "+8613800000000"},
			"externalIds": []any{map[string]any{"type": "wechat_openid", "id": "o1"}}},
		"timestamp": "2026-11-23T08:30:00Z", "receivedAt": "2026-11-23T08:30:01Z", "bot": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if ev.MessageID != "m1" || ev.Name != "Touch" || !ev.Bot || ev.UserID != "u1" || ev.SourceID != "touch" {
		t.Errorf("event %+v", ev)
	}
	// The least a touch has.
	ev, err = Touch{Token: "t", Via: "link", At: at, ReceivedAt: at}.Event("touch", func() string { return "m2" })
	if err != nil || !json.Valid(ev.Payload) {
		t.Errorf("minimal touch: %s %v", ev.Payload, err)
	}
}
