package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/demo"
)

type discardLog struct{}

func (discardLog) AppendBatches(_ context.Context, bs []*collect.Batch) ([]collect.AppendResult, error) {
	res := make([]collect.AppendResult, len(bs))
	for i, b := range bs {
		res[i].Accepted = len(b.Events)
	}
	return res, nil
}

// truthFile is the truth hearth demo writes for a small world, and its people.
func truthFile(t *testing.T, people int) ([]byte, []demo.Truth) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := demo.Append(context.Background(), demo.FakeEnv(), discardLog{}, demo.Options{People: people, Seed: 1, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, &buf); err != nil {
		t.Fatal(err)
	}
	var f demo.TruthFile
	if err := json.Unmarshal(buf.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), f.People
}

// owners maps each identifier of the truth ("type:value") to its person, as a store's profiles would.
func owners(people []demo.Truth) map[string]string {
	m := map[string]string{}
	for _, p := range people {
		for _, g := range p.Profiles {
			for _, id := range g {
				m[id] = p.ID
			}
		}
	}
	return m
}

func TestReadTargets(t *testing.T) {
	file, people := truthFile(t, 300)
	own := owners(people)
	shared := map[string]bool{}
	for _, p := range people {
		for _, s := range p.Shared {
			shared["anonymous_id:"+s] = true
		}
	}

	all, n, err := ReadTargets(bytes.NewReader(file), LookupTypes, 1<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 300 {
		t.Errorf("%d people, want 300", n)
	}
	if len(all) != len(own) { // every identifier of every group, and no shared device's
		t.Errorf("%d identifiers, the truth's groups hold %d", len(all), len(own))
	}
	for _, tg := range all {
		if own[tg.Type+":"+tg.Value] == "" || shared[tg.Type+":"+tg.Value] {
			t.Errorf("%s:%s is no one's own identifier", tg.Type, tg.Value)
		}
	}

	emails, _, err := ReadTargets(bytes.NewReader(file), []string{"email", "phone"}, 50, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(emails) != 50 {
		t.Errorf("%d identifiers, want a sample of 50", len(emails))
	}
	if got := targetTypes(emails); !cmp.Equal(got, []string{"email", "phone"}) {
		t.Errorf("types %v, want email and phone", got)
	}
	again, _, _ := ReadTargets(bytes.NewReader(file), []string{"email", "phone"}, 50, 7)
	if !cmp.Equal(emails, again) {
		t.Error("the same seed sampled other identifiers")
	}
	other, _, _ := ReadTargets(bytes.NewReader(file), []string{"email", "phone"}, 50, 8)
	if cmp.Equal(emails, other) {
		t.Error("another seed sampled the same identifiers")
	}

	for name, tc := range map[string]struct {
		file  string
		types []string
	}{
		"unknown type":       {string(file), []string{"email", "shoe_size"}},
		"not JSON":           {"people,emails\n", LookupTypes},
		"not a truth file":   {`[1, 2]`, LookupTypes},
		"no such identifier": {`{"seed":1,"people":[{"id":"p1","anonymous_ids":["a1"]}]}`, []string{"email"}},
		"cut short":          {string(file[:len(file)/2]), LookupTypes},
	} {
		if _, _, err := ReadTargets(strings.NewReader(tc.file), tc.types, 10, 1); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// profileServer answers the two calls of the 360° profile API as their contract says, over the truth's
// people, and records what it was asked.
type profileServer struct {
	key    string
	owners map[string]string
	mu     sync.Mutex
	looked map[string]int // "type:value" -> lookups
	read   map[string]int // profile id -> timeline reads
	bad    []string       // requests that broke the contract
}

func (s *profileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path == "/metrics" { // the server's CPU and memory: not this one's
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		s.bad = append(s.bad, "no API key: "+r.URL.String())
		http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
		return
	}
	switch {
	case r.URL.Path == "/api/v1/profiles/lookup":
		key := r.URL.Query().Get("type") + ":" + r.URL.Query().Get("value")
		s.looked[key]++
		id, ok := s.owners[key]
		if !ok {
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, `{"id":%q,"identities":[{"type":"user_id","value":"x"}],"traits":{}}`, id)
	case strings.HasPrefix(r.URL.Path, "/api/v1/profiles/") && strings.HasSuffix(r.URL.Path, "/events"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/profiles/"), "/events")
		if r.URL.Query().Get("limit") != "50" || !slices.Contains(slices.Collect(maps.Values(s.owners)), id) {
			s.bad = append(s.bad, "events: "+r.URL.String())
		}
		s.read[id]++
		fmt.Fprint(w, `{"events":[{"seq":1,"type":"page"}]}`)
	default:
		s.bad = append(s.bad, r.Method+" "+r.URL.String())
		http.NotFound(w, r)
	}
}

// hearth bench lookup looks up identifiers of the truth and reads the timeline of the profile each finds;
// a lookup the server cannot answer is counted by its status.
func TestLookup(t *testing.T) {
	file, people := truthFile(t, 100)
	srv := &profileServer{key: "k1", owners: owners(people), looked: map[string]int{}, read: map[string]int{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	targets, n, err := ReadTargets(bytes.NewReader(file), LookupTypes, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	opts := LookupOptions{URL: ts.URL, APIKey: "k1", Targets: targets, People: n, Duration: 300 * time.Millisecond, Concurrency: 2, Seed: 1}
	r, err := Lookup(context.Background(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", r)
	if r.Accepted == 0 || r.Accepted != r.Requests || len(r.Failed) != 0 {
		t.Errorf("%d operations, %d done, failures %v", r.Requests, r.Accepted, r.Failed)
	}
	lookups, reads := 0, 0
	for _, c := range srv.looked {
		lookups += c
	}
	for _, c := range srv.read {
		reads += c
	}
	if int64(lookups) != r.Requests || int64(reads) != r.Accepted {
		t.Errorf("the server saw %d lookups and %d timeline reads for %d operations", lookups, reads, r.Requests)
	}
	if len(srv.bad) > 0 {
		t.Errorf("requests off the contract: %v", srv.bad[:min(5, len(srv.bad))])
	}
	if !strings.Contains(r.String(), fmt.Sprintf("lookups:   %d in", r.Accepted)) || r.LookupP99 == 0 || r.EventsP99 == 0 {
		t.Errorf("report:\n%s", r)
	}

	// Identifiers no profile holds: each lookup fails with the server's status.
	r, err = Lookup(context.Background(), LookupOptions{URL: ts.URL, APIKey: "k1", Targets: []Target{{"email", "nobody@example.com"}},
		Duration: 100 * time.Millisecond, Concurrency: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 0 || r.Failed["lookup-404"] != r.Requests || !strings.Contains(r.String(), "lookup-404×") {
		t.Errorf("%d operations, %d done, failures %v", r.Requests, r.Accepted, r.Failed)
	}

	if _, err := Lookup(context.Background(), LookupOptions{URL: ts.URL, APIKey: "k1", Duration: time.Second, Concurrency: 1}, nil); err == nil {
		t.Error("no error without identifiers")
	}
}
