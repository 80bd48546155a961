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

// memLog is an event log in memory, and the calls it took.
type memLog struct {
	mu     sync.Mutex
	events []collect.Event
	calls  int
}

func (l *memLog) AppendBatches(_ context.Context, bs []*collect.Batch) ([]collect.AppendResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	res := make([]collect.AppendResult, len(bs))
	for i, b := range bs {
		for _, ev := range b.Events {
			if ev.SourceID != b.SourceID {
				panic("event of another source in a batch")
			}
		}
		l.events = append(l.events, b.Events...)
		res[i].Accepted = len(b.Events)
	}
	return res, nil
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
	if wantCalls := (want + 99) / 100; log.calls != wantCalls {
		t.Errorf("%d appends, want %d: one a flush of BatchEvents", log.calls, wantCalls)
	}
	var f TruthFile
	if err := json.Unmarshal(truth.Bytes(), &f); err != nil {
		t.Fatalf("truth file: %v", err)
	}
	if len(f.People) != 150 || f.Seed != 3 || f.Days != 30 {
		t.Errorf("truth file: %d people, seed %d, days %d", len(f.People), f.Seed, f.Days)
	}
}

// The log reads as live traffic would: within each part of OrderEvents events (of whole people), every
// event in time order, each person's in the order the story told them; the parts follow the people.
func TestDemoAppendsInTimeOrder(t *testing.T) {
	const people, part = 400, 1000
	gen := generate(t, Options{People: people, Days: 30, Seed: 5})
	var parts [][]string // the message ids each part should hold
	var ids []string
	personOf, story := map[string]int{}, map[string]int{} // each event's person, and its place in their story
	for i, evs := range gen.events {
		for j, ev := range evs {
			ids = append(ids, ev.MessageID)
			personOf[ev.MessageID], story[ev.MessageID] = i, j
		}
		if len(ids) >= part || i == people-1 {
			parts = append(parts, ids)
			ids = nil
		}
	}
	if len(parts) < 3 {
		t.Fatalf("%d parts: the test wants several", len(parts))
	}
	log := &memLog{}
	if _, err := Append(context.Background(), FakeEnv(), log, Options{People: people, Days: 30, Seed: 5, Now: testNow, BatchEvents: 97, OrderEvents: part}, nil); err != nil {
		t.Fatal(err)
	}
	at := 0
	for k, want := range parts {
		got := log.events[at : at+len(want)]
		at += len(want)
		gotIDs := make([]string, len(got))
		for i, ev := range got {
			gotIDs[i] = ev.MessageID
		}
		if diff := cmp.Diff(slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(gotIDs))); diff != "" {
			t.Fatalf("part %d holds other events (-want +got):\n%s", k, diff)
		}
		last := map[int]int{} // each person's position in their story of the last event seen
		for i, ev := range got {
			if i > 0 && ev.Timestamp.Before(got[i-1].Timestamp) {
				t.Fatalf("part %d: event %d at %s after one at %s", k, i, ev.Timestamp, got[i-1].Timestamp)
			}
			p, j := personOf[ev.MessageID], story[ev.MessageID]
			if prev, ok := last[p]; ok && j < prev {
				t.Fatalf("part %d: person %d's event %d after their event %d", k, p, j, prev)
			}
			last[p] = j
		}
		sources := map[string]bool{}
		for _, ev := range got {
			sources[ev.SourceID] = true
		}
		if len(sources) < 3 {
			t.Errorf("part %d: events of %d sources, want them interleaved from several", k, len(sources))
		}
	}
	if at != len(log.events) {
		t.Errorf("log holds %d events, the parts %d", len(log.events), at)
	}
}

type failingLog struct{}

func (failingLog) AppendBatches(context.Context, []*collect.Batch) ([]collect.AppendResult, error) {
	return nil, errors.New("disk full")
}

// A log that fails stops the run with its error.
func TestDemoRunStopsOnAppendError(t *testing.T) {
	_, err := Append(context.Background(), FakeEnv(), failingLog{}, Options{People: 500, Days: 30, Seed: 1, Now: testNow, BatchEvents: 50}, nil)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the log's", err)
	}
}
