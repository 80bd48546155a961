package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type generated struct {
	people []Truth
	events [][]collect.Event
}

func generate(t *testing.T, opts Options) generated {
	t.Helper()
	opts.Now = testNow
	g := NewGenerator(opts, FakeEnv())
	var out generated
	for g.Next() {
		p, evs, err := g.Person()
		if err != nil {
			t.Fatalf("person %d: %v", len(out.people)+1, err)
		}
		out.people = append(out.people, p)
		out.events = append(out.events, evs)
	}
	return out
}

func payloads(g generated) []string {
	var out []string
	for _, evs := range g.events {
		for _, ev := range evs {
			out = append(out, ev.SourceID+" "+string(ev.Payload))
		}
	}
	return out
}

func TestDemoDeterministic(t *testing.T) {
	a := generate(t, Options{People: 300, Days: 60, Seed: 7})
	b := generate(t, Options{People: 300, Days: 60, Seed: 7})
	if diff := cmp.Diff(a.people, b.people, cmp.AllowUnexported(Truth{})); diff != "" {
		t.Errorf("the same seed gave other people (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(payloads(a), payloads(b)); diff != "" {
		t.Errorf("the same seed gave other events (-first +second):\n%s", diff)
	}
	c := generate(t, Options{People: 300, Days: 60, Seed: 8})
	if cmp.Equal(payloads(a), payloads(c)) {
		t.Error("another seed gave the same events")
	}
	if len(a.people) != 300 {
		t.Errorf("%d people, want 300", len(a.people))
	}
}

// Every event reads as identity resolution reads it: its identifiers are all the person's, and they lie in
// one of the groups the truth gives; junk values never become identifiers; no identifier is two people's.
func TestDemoTruthMatchesEvents(t *testing.T) {
	g := generate(t, Options{People: 2000, Days: 90, Seed: 1})
	rules := identity.DefaultRules()
	owner := map[string]string{} // identifier -> person
	var touches, orders, tokens int
	known := map[string]bool{}
	for _, p := range FakeEnv().Touchpoints {
		known[p.Token] = true
	}
	for i, p := range g.people {
		group := map[string]int{}
		for gi, ids := range p.Profiles {
			for _, id := range ids {
				if _, dup := group[id]; dup {
					t.Errorf("%s: %s is in two groups", p.ID, id)
				}
				group[id] = gi
				if o, ok := owner[id]; ok && o != p.ID {
					t.Errorf("%s is both %s's and %s's", id, o, p.ID)
				}
				owner[id] = p.ID
			}
		}
		if p.Events != len(g.events[i]) {
			t.Errorf("%s: truth says %d events, made %d", p.ID, p.Events, len(g.events[i]))
		}
		var last time.Time
		carried := map[string]bool{}
		for _, ev := range g.events[i] {
			if ev.Timestamp.Before(last) || !ev.Timestamp.Before(testNow) || ev.Timestamp.Before(testNow.AddDate(0, 0, -90)) {
				t.Errorf("%s: event at %s out of order or outside the 90 days", p.ID, ev.Timestamp)
			}
			last = ev.Timestamp
			ids, err := rules.FromEvent(ev.Payload)
			if err != nil {
				t.Fatalf("%s: %v", p.ID, err)
			}
			gi := -1
			for _, id := range ids {
				if slices.Contains(p.Shared, id.Value) {
					continue
				}
				carried[id.String()] = true
				g, ok := group[id.String()]
				if !ok {
					t.Errorf("%s: event carries %s, not in the truth\n%s", p.ID, id, ev.Payload)
					continue
				}
				if gi >= 0 && g != gi {
					t.Errorf("%s: event links groups %d and %d", p.ID, gi, g)
				}
				gi = g
			}
			var body struct {
				Properties map[string]any `json:"properties"`
			}
			if err := json.Unmarshal(ev.Payload, &body); err != nil {
				t.Fatal(err)
			}
			switch ev.Name {
			case collect.TouchEventName:
				touches++
				if ev.SourceID != collect.TouchSourceID {
					t.Errorf("a touch in source %s", ev.SourceID)
				}
				if tok, _ := body.Properties["token"].(string); known[tok] {
					tokens++
				}
			case "Order Completed":
				orders++
				if body.Properties["currency"] != "CNY" || body.Properties["revenue"] == nil {
					t.Errorf("an order without revenue in CNY: %s", ev.Payload)
				}
			}
		}
		for id := range group { // and the truth gives no identifier that resolution cannot see
			if !carried[id] {
				t.Errorf("%s: the truth gives %s, which no event of theirs carries as an identifier", p.ID, id)
			}
		}
	}
	if touches < len(g.people) || tokens != touches {
		t.Errorf("%d touches for %d people, %d with a known token", touches, len(g.people), tokens)
	}
	if orders == 0 {
		t.Error("no orders")
	}
}

func TestDemoHardCases(t *testing.T) {
	g := generate(t, Options{People: 2000, Days: 90, Seed: 1})
	shared := map[string][]string{}
	names := map[string][]Truth{}
	var twoEmails, junk, anonymousOnly, identified int
	junkValues := map[string]bool{}
	for _, p := range g.people {
		for _, s := range p.Shared {
			shared[s] = append(shared[s], p.ID)
		}
		names[p.Name] = append(names[p.Name], p)
		if len(p.Emails) >= 2 {
			twoEmails++
		}
		if len(p.Junk) > 0 {
			junk++
			for _, j := range p.Junk {
				junkValues[j] = true
			}
		}
		if p.Identified {
			identified++
			if p.UserID == "" {
				t.Errorf("%s identified without a user id", p.ID)
			}
		} else {
			anonymousOnly++
		}
		for _, ph := range p.Phones {
			if !strings.HasPrefix(ph, "+861") || len(ph) != 14 || ph == "+8613800138000" {
				t.Errorf("%s: phone %s", p.ID, ph)
			}
		}
	}
	var families int
	for _, ids := range shared {
		if len(ids) == 2 {
			families++
		}
	}
	var namesakes int
	for _, ps := range names {
		if len(ps) > 1 && ps[0].UserID != ps[1].UserID {
			namesakes++
		}
	}
	for name, n := range map[string]int{"shared tablets": families, "namesakes": namesakes, "people with two emails": twoEmails,
		"people with junk values": junk, "people never identified": anonymousOnly, "identified people": identified} {
		if n == 0 {
			t.Errorf("no %s", name)
		}
	}
	if len(junkValues) < 3 {
		t.Errorf("junk values %v, want several kinds", junkValues)
	}
}

// memLog is an event log in memory.
type memLog struct {
	mu     sync.Mutex
	events []collect.Event
}

func (l *memLog) Append(_ context.Context, b *collect.Batch) (collect.AppendResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range b.Events {
		if ev.SourceID != b.SourceID {
			panic("event of another source in a batch")
		}
	}
	l.events = append(l.events, b.Events...)
	return collect.AppendResult{Accepted: len(b.Events)}, nil
}

// Run writes what the generator makes, and a truth file that reads back.
func TestDemoRunWritesAll(t *testing.T) {
	log := &memLog{}
	env := FakeEnv()
	var truth bytes.Buffer
	opts := Options{People: 150, Days: 30, Seed: 3, Now: testNow, BatchEvents: 100}
	g := NewGenerator(opts, env)
	want := 0
	for g.Next() {
		_, evs, _ := g.Person()
		want += len(evs)
	}
	sum, err := Append(context.Background(), env, log, opts, &truth)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Events != want || len(log.events) != want {
		t.Errorf("summary %d events, log %d, want %d", sum.Events, len(log.events), want)
	}
	var f TruthFile
	if err := json.Unmarshal(truth.Bytes(), &f); err != nil {
		t.Fatalf("truth file: %v", err)
	}
	if len(f.People) != 150 || f.Seed != 3 || f.Days != 30 {
		t.Errorf("truth file: %d people, seed %d, days %d", len(f.People), f.Seed, f.Days)
	}
}

type failingLog struct{}

func (failingLog) Append(context.Context, *collect.Batch) (collect.AppendResult, error) {
	return collect.AppendResult{}, errors.New("disk full")
}

// A log that fails stops the run with its error.
func TestDemoRunStopsOnAppendError(t *testing.T) {
	_, err := Append(context.Background(), FakeEnv(), failingLog{}, Options{People: 500, Days: 30, Seed: 1, Now: testNow, BatchEvents: 50}, nil)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the log's", err)
	}
}
