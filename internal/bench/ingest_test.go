package bench

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

// The generated load must be what the benchmarks say it is: valid Segment calls of about 300 bytes, each
// with its own message id, from the pool of visitors.
func TestEventGenMakesSegmentCalls(t *testing.T) {
	g := newEventGen()
	var (
		hexID    = regexp.MustCompile(`^[0-9a-f]{32}$`)
		anon     = regexp.MustCompile(`^anon-[0-9]{8}$`)
		phone    = regexp.MustCompile(`^\+86138[0-9]{8}$`)
		seen     = map[string]bool{}
		types    = map[string]int{}
		bytesSum int
	)
	for range 50 {
		body, path := g.body(100)
		if path != "/v1/batch" {
			t.Fatalf("path %q", path)
		}
		bytesSum += len(body)
		var batch struct {
			SentAt time.Time        `json:"sentAt"`
			Batch  []map[string]any `json:"batch"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, body)
		}
		if len(batch.Batch) != 100 || batch.SentAt.IsZero() {
			t.Fatalf("%d events, sentAt %v", len(batch.Batch), batch.SentAt)
		}
		for _, e := range batch.Batch {
			id, _ := e["messageId"].(string)
			if !hexID.MatchString(id) || seen[id] {
				t.Fatalf("message id %q (repeated: %v)", id, seen[id])
			}
			seen[id] = true
			if a, _ := e["anonymousId"].(string); !anon.MatchString(a) {
				t.Fatalf("anonymousId %q", a)
			}
			if _, err := time.Parse(time.RFC3339Nano, e["timestamp"].(string)); err != nil {
				t.Fatal(err)
			}
			typ := e["type"].(string)
			types[typ]++
			switch typ {
			case "page":
				if e["name"] == "" || e["properties"].(map[string]any)["path"] != e["name"] {
					t.Fatalf("page %v", e)
				}
			case "track":
				if e["event"] != "Product Viewed" && e["event"] != "Order Completed" {
					t.Fatalf("track %v", e)
				}
			case "identify":
				traits := e["traits"].(map[string]any)
				if !phone.MatchString(traits["phone"].(string)) || traits["city"] != "上海" || e["userId"] == "" {
					t.Fatalf("identify %v", e)
				}
			default:
				t.Fatalf("type %q", typ)
			}
		}
	}
	if types["page"] < 2000 || types["track"] < 1200 || types["identify"] < 300 {
		t.Errorf("mix %v, want about half pages, 40%% tracks, a tenth identifies", types)
	}
	if avg := bytesSum / 5000; avg < 250 || avg > 360 {
		t.Errorf("events of %d bytes on average, want about 300", avg)
	}
	body, path := g.body(1)
	var single map[string]any
	if err := json.Unmarshal(body, &single); err != nil || path != "/v1/"+single["type"].(string) {
		t.Fatalf("single event to %s: %v %s", path, err, body)
	}
	if got := string(appendPad8(nil, 42)); got != "00000042" {
		t.Errorf("appendPad8(42) = %q", got)
	}
}

// The generator shares the cores with the server it measures: its cost per request is part of the method.
func BenchmarkEventGenBody(b *testing.B) {
	g := newEventGen()
	for b.Loop() {
		g.body(100)
	}
}
