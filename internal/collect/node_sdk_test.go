package collect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth/internal/collect"
)

// Segment's own Node SDK (@segment/analytics-node, from npm) works unchanged against Hearth:
// testdata/segment-node/send.mjs sends one event of each type through it, and each is stored as sent.
func TestSegmentNodeSDK(t *testing.T) {
	testNodeSDK(t, "segment-node", "@segment/analytics-node", "@segment/analytics-node")
}

// So does RudderStack's (@rudderstack/rudder-sdk-node): it gzips its batches, dates its events by
// originalTimestamp rather than timestamp, and copies an identify's traits into context.traits.
func TestRudderStackNodeSDK(t *testing.T) {
	testNodeSDK(t, "rudderstack-node", "@rudderstack/rudder-sdk-node", "analytics-node")
}

// testNodeSDK runs testdata/DIR/send.mjs, which sends one event of each type through the SDK installed there
// as pkg, and checks that each is stored as sent, with the SDK named library in its context.
func testNodeSDK(t *testing.T, dir, pkg, library string) {
	dir = filepath.Join("testdata", dir)
	node, sdkVersion := nodeSDK(t, dir, pkg)
	forEachEngine(t, collect.IngestOptions{}, func(t *testing.T, e *ingestEnv) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "send.mjs")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOST="+e.url, "WRITE_KEY="+e.server.WriteKey)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node send.mjs: %v\n%s", err, stderr.Bytes())
		}
		var delivered []struct{ Type, MessageID string }
		if err := json.Unmarshal(out, &delivered); err != nil {
			t.Fatalf("send.mjs printed %q: %v", out, err)
		}

		evs := e.events()
		if len(evs) != len(delivered) {
			t.Fatalf("stored %d events, the SDK delivered %d", len(evs), len(delivered))
		}
		stored := map[string]collect.Event{} // by messageId: the SDK's own ids are kept, so its retries deduplicate
		for _, ev := range evs {
			stored[ev.MessageID] = ev
		}
		got := map[string]nodeEvent{}
		for _, d := range delivered {
			ev, ok := stored[d.MessageID]
			if !ok {
				t.Fatalf("the SDK's %s event %s was not stored under its messageId", d.Type, d.MessageID)
			}
			p := payload(t, ev)
			got[d.Type] = nodeEvent{
				Type: ev.Type, Name: ev.Name, UserID: ev.UserID, AnonymousID: ev.AnonymousID,
				Fields: pick(p, "traits", "properties", "groupId", "previousId", "category"),
			}

			if ev.SourceID != e.server.ID || ev.Bot {
				t.Errorf("%s: source %s, bot %v", ev.Type, ev.SourceID, ev.Bot)
			}
			c, _ := p["context"].(map[string]any)
			lib, _ := c["library"].(map[string]any)
			if lib["name"] != library || lib["version"] != sdkVersion {
				t.Errorf("%s: context.library = %v, want %s %s", ev.Type, lib, library, sdkVersion)
			}
			// The SDK's own user agent says nothing about the person.
			if ua, ok := c["userAgent"]; ok {
				t.Errorf("%s: context.userAgent = %v, the SDK's", ev.Type, ua)
			}
		}

		pageProperties := map[string]any{"url": "https://shop.example/pricing"}
		if pkg == "@segment/analytics-node" {
			pageProperties["category"] = "Docs" // Segment's SDK copies a page's category into its properties
		}
		want := map[string]nodeEvent{
			"identify": {Type: "identify", UserID: "u-1", Fields: map[string]any{
				"traits": map[string]any{"name": "李娜", "email": "li.na@example.com", "plan": "pro"},
			}},
			"track": {Type: "track", Name: "Order Completed", UserID: "u-1", Fields: map[string]any{
				"properties": map[string]any{
					"orderId": "o-42", "revenue": 199.5, "currency": "CNY",
					"products": []any{map[string]any{"sku": "tea-1", "quantity": 2.0}},
				},
			}},
			"page": {Type: "page", Name: "Pricing", AnonymousID: "anon-1", Fields: map[string]any{
				"category":   "Docs",
				"properties": pageProperties,
			}},
			"screen": {Type: "screen", Name: "Cart", UserID: "u-1", Fields: map[string]any{
				"properties": map[string]any{"items": 2.0},
			}},
			"group": {Type: "group", UserID: "u-1", Fields: map[string]any{
				"groupId": "acme",
				"traits":  map[string]any{"name": "Acme", "employees": 50.0},
			}},
			"alias": {Type: "alias", UserID: "u-1", Fields: map[string]any{"previousId": "anon-1"}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stored events (-want +got):\n%s", diff)
		}

		// The track call's fixed timestamp is kept as sent, and the event time is corrected for clock skew.
		var track collect.Event
		for _, d := range delivered {
			if d.Type == "track" {
				track = stored[d.MessageID]
			}
		}
		when := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
		if orig := payload(t, track)["originalTimestamp"]; orig != "2026-06-01T08:00:00Z" {
			t.Errorf("track originalTimestamp = %v, want 2026-06-01T08:00:00Z", orig)
		}
		if d := track.Timestamp.Sub(when); d < 0 || d > time.Minute {
			t.Errorf("track happened at %v, want about %v (skew-corrected)", track.Timestamp, when)
		}
	})
}

// nodeEvent is what testNodeSDK compares of a stored event.
type nodeEvent struct {
	Type, Name, UserID, AnonymousID string
	Fields                          map[string]any // the payload's fields of the call
}

func pick(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if obj, isObj := v.(map[string]any); isObj && len(obj) == 0 {
				continue // the SDK sends {} for what the call left out
			}
			out[k] = v
		}
	}
	return out
}

// nodeSDK returns the path of node and the version of the SDK pkg installed in dir (by npm ci, which
// scripts/test runs). Without them it skips the test, except under CI, where it must run.
func nodeSDK(t *testing.T, dir, pkg string) (node, version string) {
	t.Helper()
	node, err := exec.LookPath("node")
	var manifest []byte
	if err == nil {
		manifest, err = os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
	}
	if err != nil {
		msg := pkg + " is not installed (" + err.Error() + "): run scripts/test, or npm ci in " + dir
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; under CI this test must run")
		}
		t.Skip(msg)
	}
	var v struct{ Version string }
	if err := json.Unmarshal(manifest, &v); err != nil || v.Version == "" {
		t.Fatalf("%s: no version in the SDK's package.json: %v", dir, err)
	}
	return node, v.Version
}
