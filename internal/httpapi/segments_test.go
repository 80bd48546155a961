package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/httpapi"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

type segmentResp struct {
	ID          string
	Name        string
	Description string
	Kind        string
	Rule        json.RawMessage
	ListItems   *int `json:"list_items"`
	Size        int64
	Status      string
	EvaluatedAt *time.Time `json:"evaluated_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

type memberPageResp struct {
	Members []struct {
		ProfileID string `json:"profile_id"`
		Name      string
		Stage     string
		Since     time.Time
	}
	NextCursor *string `json:"next_cursor"`
}

type listUploadResp struct {
	Items    int
	Rejected []struct {
		Line   int
		Reason string
	}
}

// segmentServer starts a server on e's store with the segment service wired as the app wires it, and, when
// run, the segment engine beside it as the app runs it (checking every 20 ms, and when woken). It answers
// with e as seen through that server, and the engine.
func segmentServer(t *testing.T, e *env, run bool) (*env, *segment.Engine) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	engine := segment.NewEngine(e.db, e.clock, segment.Options{Interval: 20 * time.Millisecond, Logger: logger})
	configs := profile.NewConfigs(e.db)
	svc := segment.NewService(e.db, e.clock, engine, func(ctx context.Context) (identity.Rules, error) {
		c, err := configs.Get(ctx)
		return c.Identity, err
	})
	reg := prometheus.NewRegistry()
	srv := httpapi.New(httpapi.Options{
		Auth: e.auth, Pinger: e.db, Profiles: e.db, ProfileConfigs: configs, Segments: svc, SegmentData: e.db,
		Logger: logger, Metrics: httpapi.NewMetrics(reg), Gatherer: reg, Console: http.NotFoundHandler(),
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { engine.Run(ctx) })
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	s := *e
	s.url = ts.URL
	return &s, engine
}

// segmentPeople sends events of one source to the log and runs the profile processor over them, as profileWorld does.
type segmentPeople struct {
	t   *testing.T
	e   *env
	w   *store.EventWriter
	src string
	n   int
}

func newSegmentPeople(t *testing.T, e *env) *segmentPeople {
	t.Helper()
	src := createSource(t, e.as(hearth.RoleAdmin), "Website", "website")
	w := store.NewEventWriter(e.db, store.EventWriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &segmentPeople{t: t, e: e, w: w, src: src.ID}
}

// identify sends an identify of an anonymous id with traits.
func (p *segmentPeople) identify(anon string, traits map[string]any) {
	p.send("identify", anon, "", map[string]any{"traits": traits})
}

// track sends times track events of a name.
func (p *segmentPeople) track(anon, name string, times int) {
	for range times {
		p.send("track", anon, name, map[string]any{"event": name})
	}
}

func (p *segmentPeople) send(typ, anon, name string, fields map[string]any) {
	p.t.Helper()
	p.n++
	id := fmt.Sprintf("seg-m%d", p.n)
	fields["type"], fields["messageId"], fields["anonymousId"] = typ, id, anon
	payload, _ := json.Marshal(fields)
	now := p.e.clock.Now()
	_, err := p.w.Append(context.Background(), &collect.Batch{SourceID: p.src, ReceivedAt: now, Events: []collect.Event{
		{MessageID: id, Type: typ, Name: name, AnonymousID: anon, Timestamp: now.Add(time.Duration(p.n-1000) * time.Second), ReceivedAt: now, Payload: payload}}})
	if err != nil {
		p.t.Fatal(err)
	}
}

// process runs the profile processor to the end of the log.
func (p *segmentPeople) process() {
	p.t.Helper()
	proc := profile.NewProcessor(p.e.db, profile.Options{})
	for {
		n, err := proc.Process(context.Background())
		if err != nil {
			p.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// profileOf is the id of the profile that holds an identifier.
func profileOf(t *testing.T, c *client, typ, value string) string {
	t.Helper()
	r := c.do("GET", "/api/v1/profiles/lookup?type="+typ+"&value="+url.QueryEscape(value), nil)
	wantStatus(t, r, http.StatusOK)
	var p struct{ ID string }
	r.decode(t, &p)
	return p.ID
}

func getSegment(t *testing.T, c *client, id string) segmentResp {
	t.Helper()
	r := c.do("GET", "/api/v1/segments/"+id, nil)
	wantStatus(t, r, http.StatusOK)
	var s segmentResp
	r.decode(t, &s)
	return s
}

// waitSegment polls a segment until ok says it is as wanted, for up to 10 s.
func waitSegment(t *testing.T, c *client, id string, what string, ok func(segmentResp) bool) segmentResp {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := getSegment(t, c, id)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s is not %s after 10 s: %+v", id, what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allMembers reads every page of a segment's members, limit at a time, and the number of pages.
func allMembers(t *testing.T, c *client, id string, limit int) (ids []string, pages int) {
	t.Helper()
	cursor := ""
	for {
		r := c.do("GET", fmt.Sprintf("/api/v1/segments/%s/members?limit=%d&cursor=%s", id, limit, url.QueryEscape(cursor)), nil)
		wantStatus(t, r, http.StatusOK)
		var page memberPageResp
		r.decode(t, &page)
		pages++
		if len(page.Members) > limit {
			t.Fatalf("a page of %d members, limit %d", len(page.Members), limit)
		}
		for _, m := range page.Members {
			ids = append(ids, m.ProfileID)
		}
		if page.NextCursor == nil {
			return ids, pages
		}
		if pages > 100 {
			t.Fatal("the members' pages do not end")
		}
		cursor = *page.NextCursor
	}
}

func sortedIDs(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// sameJSON fails unless got and want are the same JSON value.
func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %s: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// exportCSV downloads a segment's members as CSV.
func exportCSV(t *testing.T, c *client, id string) (response, [][]string) {
	t.Helper()
	r := c.do("GET", "/api/v1/segments/"+id+"/members.csv", nil)
	wantStatus(t, r, http.StatusOK)
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, r.body)
	}
	return r, rows
}

func TestSegments(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		// Three days ago, so that a window of sizes can leave them out (the sizes' window ends at the system's now).
		start := time.Now().UTC().Truncate(time.Hour).Add(-72 * time.Hour)
		if d := start.Sub(e.clock.Now()); d < 0 {
			t.Fatalf("the system clock (%s) is before the test clock's start", time.Now())
		} else {
			e.clock.Advance(d)
		}
		s, _ := segmentServer(t, e, true)
		m, a := s.as(hearth.RoleMarketer), s.as(hearth.RoleAnalyst)

		p := newSegmentPeople(t, e)
		p.identify("a1", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "139 1234 5678", "city": "Shanghai"})
		p.track("a1", "Order Completed", 2)
		p.identify("b1", map[string]any{"name": "Bob Chen", "email": "bob@example.com", "city": "Shanghai"})
		p.track("b1", "Order Completed", 1)
		p.identify("c1", map[string]any{"name": `=HYPERLINK("https://evil.example","open")`, "email": "carol@example.com", "city": "Shanghai"})
		p.identify("d1", map[string]any{"name": "Dan", "phone": "137 2468 1357", "city": "Beijing"})
		p.track("d1", "Order Completed", 3)
		p.identify("e1", map[string]any{"name": "Eve", "email": "eve@example.com", "city": "shanghai"})
		p.send("page", "f1", "", map[string]any{})
		p.process()
		look := e.as(hearth.RoleAnalyst) // the harness's server, which has everything a profile shows
		ada, bob, carol := profileOf(t, look, "email", "ada@example.com"), profileOf(t, look, "email", "bob@example.com"), profileOf(t, look, "email", "carol@example.com")
		dan, eve := profileOf(t, look, "phone", "13724681357"), profileOf(t, look, "email", "eve@example.com")

		// A rule segment, evaluated before the answer.
		cityRule := `{"trait": {"name": "city", "op": "equals", "value": "Shanghai"}}`
		r := m.do("POST", "/api/v1/segments", `{"name": "Shanghai", "description": "City is Shanghai", "rule": `+cityRule+`}`)
		wantStatus(t, r, http.StatusCreated)
		var sh segmentResp
		r.decode(t, &sh)
		if !strings.HasPrefix(sh.ID, "seg_") || sh.Name != "Shanghai" || sh.Description != "City is Shanghai" || sh.Kind != "rule" || sh.Status != "ready" ||
			sh.Size != 3 || sh.EvaluatedAt == nil || !sh.CreatedAt.Equal(start) || !sh.UpdatedAt.Equal(start) {
			t.Errorf("the segment created: %s", r.body)
		}
		if loc := r.header.Get("Location"); loc != "/api/v1/segments/"+sh.ID {
			t.Errorf("Location %q", loc)
		}
		if strings.Contains(string(r.body), "list_items") {
			t.Errorf("a rule segment has list_items: %s", r.body)
		}
		sameJSON(t, "the rule answered", sh.Rule, cityRule)
		if got := getSegment(t, a, sh.ID); !cmp.Equal(got, sh) {
			t.Errorf("GET differs from the answer to POST:\n%s", cmp.Diff(sh, got))
		}

		// Its members, newest first a page at a time (all entered at once: by profile id then).
		ids, pages := allMembers(t, a, sh.ID, 2)
		if want := sortedIDs([]string{ada, bob, carol}); !cmp.Equal(ids, reversedIDs(want)) || pages != 2 {
			t.Errorf("members by pages of 2: %v in %d pages, want %v in 2", ids, pages, reversedIDs(want))
		}
		r = a.do("GET", "/api/v1/segments/"+sh.ID+"/members", nil)
		wantStatus(t, r, http.StatusOK)
		var page memberPageResp
		r.decode(t, &page)
		if len(page.Members) != 3 || page.NextCursor != nil {
			t.Fatalf("members: %s", r.body)
		}
		for _, mb := range page.Members {
			if mb.ProfileID == ada && (mb.Name != "Ada Lovelace" || mb.Stage != "converted" || !mb.Since.Equal(start)) {
				t.Errorf("Ada as a member: %+v", mb)
			}
			if mb.ProfileID == carol && mb.Stage != "connected" {
				t.Errorf("Carol as a member: %+v", mb)
			}
		}
		for _, q := range []string{"?cursor=nonsense", "?limit=-1", "?limit=x"} {
			if r := a.do("GET", "/api/v1/segments/"+sh.ID+"/members"+q, nil); r.status != http.StatusBadRequest {
				t.Errorf("members%s: %d %s, want 400", q, r.status, r.body)
			}
		}
		if r := a.do("GET", "/api/v1/segments/"+sh.ID+"/members?limit=500", nil); r.status != http.StatusOK {
			t.Errorf("a limit over 200: %d %s, want it taken as 200", r.status, r.body)
		}

		// The members as CSV, named after the segment, safe to open in a spreadsheet.
		r = m.do("PATCH", "/api/v1/segments/"+sh.ID, map[string]string{"name": "Shanghai 上海 buyers"})
		wantStatus(t, r, http.StatusOK)
		var renamed segmentResp
		r.decode(t, &renamed)
		if renamed.Name != "Shanghai 上海 buyers" || renamed.Description != "City is Shanghai" || renamed.Size != 3 || renamed.Status != "ready" {
			t.Errorf("renamed: %s", r.body)
		}
		sameJSON(t, "the rule after a rename", renamed.Rule, cityRule)
		r, rows := exportCSV(t, a, sh.ID)
		if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		cd := r.header.Get("Content-Disposition")
		if want := `attachment; filename="Shanghai-buyers.csv"; filename*=UTF-8''Shanghai-%E4%B8%8A%E6%B5%B7-buyers.csv`; cd != want {
			t.Errorf("Content-Disposition %q, want %q", cd, want)
		}
		if _, params, err := mime.ParseMediaType(cd); err != nil || params["filename"] != "Shanghai-上海-buyers.csv" {
			t.Errorf("Content-Disposition read as %v, %v", params, err)
		}
		since := start.Format(time.RFC3339)
		want := [][]string{
			{"profile_id", "name", "stage", "email", "phone", "since"},
			{ada, "Ada Lovelace", "converted", "ada@example.com", "+8613912345678", since},
			{bob, "Bob Chen", "converted", "bob@example.com", "", since},
			{carol, `'=HYPERLINK("https://evil.example","open")`, "connected", "carol@example.com", "", since},
		}
		slices.SortFunc(want[1:], func(x, y []string) int { return strings.Compare(x[0], y[0]) })
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("the CSV export (-want +got):\n%s", diff)
		}

		// The live count of a rule, stored nowhere; an analyst may ask too.
		for _, tt := range []struct {
			rule string
			size int64
		}{
			{`{"event": {"name": "Order Completed", "count": {"op": "at_least", "value": 2}}}`, 2},
			{`{"and": [` + cityRule + `, {"event": {"name": "Order Completed", "count": {"op": "at_least", "value": 2}}}]}`, 1},
			{`{"not": ` + cityRule + `}`, 3},
			{`{"segment": {"id": "` + sh.ID + `"}}`, 3},
			{`{"stage": {"op": "at_least", "value": "identified"}}`, 5},
		} {
			r := a.do("POST", "/api/v1/segments/count", `{"rule": `+tt.rule+`}`)
			wantStatus(t, r, http.StatusOK)
			var c struct {
				Size   int64
				TookMS *int64 `json:"took_ms"`
				Sample []struct{ ID, Name, Stage string }
			}
			r.decode(t, &c)
			if c.Size != tt.size || c.TookMS == nil || *c.TookMS < 0 || int64(len(c.Sample)) != min(tt.size, 5) {
				t.Errorf("count %s: %s, want size %d and as many people shown, up to 5", tt.rule, r.body, tt.size)
			}
			// The people shown are the rule's: those of the segment of the same rule are its members.
			if strings.Contains(tt.rule, sh.ID) {
				var members struct {
					Members []struct {
						ProfileID string `json:"profile_id"`
					}
				}
				mr := a.do("GET", "/api/v1/segments/"+sh.ID+"/members", nil)
				wantStatus(t, mr, http.StatusOK)
				mr.decode(t, &members)
				var want, got []string
				for _, m := range members.Members {
					want = append(want, m.ProfileID)
				}
				for _, p := range c.Sample {
					got = append(got, p.ID)
				}
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("the count of the segment's rule shows %v, its members are %v", got, want)
				}
			}
		}

		// A new rule is evaluated before the answer: Carol, who bought nothing, leaves.
		e.clock.Advance(time.Hour)
		bought := `{"and": [` + cityRule + `, {"event": {"name": "Order Completed"}}]}`
		r = m.do("PATCH", "/api/v1/segments/"+sh.ID, `{"rule": `+bought+`}`)
		wantStatus(t, r, http.StatusOK)
		var patched segmentResp
		r.decode(t, &patched)
		if patched.Size != 2 || patched.Status != "ready" || patched.EvaluatedAt == nil || !patched.EvaluatedAt.Equal(start.Add(time.Hour)) ||
			!patched.UpdatedAt.Equal(start.Add(time.Hour)) || patched.Name != "Shanghai 上海 buyers" {
			t.Errorf("after a new rule: %s", r.body)
		}
		sameJSON(t, "the new rule", patched.Rule, bought)
		if ids, _ := allMembers(t, a, sh.ID, 50); !cmp.Equal(sortedIDs(ids), sortedIDs([]string{ada, bob})) {
			t.Errorf("members after the new rule: %v", ids)
		}

		// Sizes at the end of each hour that changed them, oldest first, over the last days.
		sizes := func(q string) string {
			t.Helper()
			r := a.do("GET", "/api/v1/segments/"+sh.ID+"/sizes"+q, nil)
			wantStatus(t, r, http.StatusOK)
			var l struct {
				Sizes []struct {
					At   time.Time
					Size int64
				}
			}
			r.decode(t, &l)
			var out []string
			for _, sz := range l.Sizes {
				out = append(out, fmt.Sprintf("%s=%d", sz.At.Sub(start), sz.Size))
			}
			return strings.Join(out, " ")
		}
		for q, want := range map[string]string{"": "0s=3 1h0m0s=2", "?days=4": "0s=3 1h0m0s=2", "?days=1": "", "?days=0": "", "?days=9999": "0s=3 1h0m0s=2"} {
			if got := sizes(q); got != want {
				t.Errorf("sizes%s: %q, want %q", q, got, want)
			}
		}
		for _, q := range []string{"?days=-1", "?days=x"} {
			if r := a.do("GET", "/api/v1/segments/"+sh.ID+"/sizes"+q, nil); r.status != http.StatusBadRequest {
				t.Errorf("sizes%s: %d %s, want 400", q, r.status, r.body)
			}
		}

		// A person's segments now, and their history, newest first; an absorbed id answers too.
		personSegments := func(id string) (segs []string, changes []string) {
			t.Helper()
			r := a.do("GET", "/api/v1/profiles/"+id+"/segments", nil)
			wantStatus(t, r, http.StatusOK)
			var ps struct {
				Segments []struct {
					ID, Name string
					Since    time.Time
				}
				Changes []struct {
					SegmentID string `json:"segment_id"`
					Segment   string
					Entered   bool
					At        time.Time
				}
			}
			r.decode(t, &ps)
			if ps.Segments == nil || ps.Changes == nil {
				t.Errorf("null lists: %s", r.body)
			}
			for _, sg := range ps.Segments {
				segs = append(segs, fmt.Sprintf("%s %s %s", sg.ID, sg.Name, sg.Since.Sub(start)))
			}
			for _, c := range ps.Changes {
				changes = append(changes, fmt.Sprintf("%s %s %v %s", c.SegmentID, c.Segment, c.Entered, c.At.Sub(start)))
			}
			return segs, changes
		}
		segs, changes := personSegments(carol)
		if want := []string{sh.ID + " Shanghai 上海 buyers false 1h0m0s", sh.ID + " Shanghai 上海 buyers true 0s"}; len(segs) != 0 || !cmp.Equal(changes, want) {
			t.Errorf("Carol's segments %v, changes %v; want none and %v", segs, changes, want)
		}
		segs, changes = personSegments(ada)
		if want := []string{sh.ID + " Shanghai 上海 buyers 0s"}; !cmp.Equal(segs, want) || len(changes) != 1 {
			t.Errorf("Ada's segments %v, changes %v; want %v", segs, changes, want)
		}
		if r := a.do("GET", "/api/v1/profiles/nope/segments", nil); r.status != http.StatusNotFound {
			t.Errorf("an unknown profile's segments: %d %s", r.status, r.body)
		}

		// Events keep the members current: Eve moves to Shanghai and buys.
		p.identify("e1", map[string]any{"city": "Shanghai"})
		p.track("e1", "Order Completed", 1)
		p.process()
		waitSegment(t, a, sh.ID, "3 members with Eve", func(s segmentResp) bool { return s.Size == 3 })
		if ids, _ := allMembers(t, a, sh.ID, 1); !cmp.Equal(sortedIDs(ids), sortedIDs([]string{ada, bob, eve})) {
			t.Errorf("members after Eve's events: %v", ids)
		}

		// A segment that uses another: that one cannot be deleted while it does.
		r = m.do("POST", "/api/v1/segments", `{"name": "big spenders of Shanghai", "rule": {"and": [{"segment": {"id": "`+sh.ID+`"}}, {"event": {"name": "Order Completed", "count": {"op": "at_least", "value": 2}}}]}}`)
		wantStatus(t, r, http.StatusCreated)
		var big segmentResp
		r.decode(t, &big)
		if big.Size != 1 || big.Status != "ready" {
			t.Errorf("a segment of a segment: %s", r.body)
		}
		if r := m.do("DELETE", "/api/v1/segments/"+sh.ID, nil); r.status != http.StatusConflict || r.errCode() != "conflict" {
			t.Errorf("deleting a segment in use: %d %s, want 409 conflict", r.status, r.body)
		}
		getSegment(t, a, sh.ID)

		// Listed by name, whatever the case.
		r = a.do("GET", "/api/v1/segments", nil)
		wantStatus(t, r, http.StatusOK)
		var list struct{ Segments []segmentResp }
		r.decode(t, &list)
		if len(list.Segments) != 2 || list.Segments[0].ID != big.ID || list.Segments[1].ID != sh.ID {
			t.Errorf("the list: %s", r.body)
		}

		// Invalid rules are refused with the path of the part that is wrong; nothing is stored.
		for _, tt := range []struct {
			name, body, code, path string
		}{
			{"a bad op", `{"name": "x", "rule": {"and": [{"trait": {"name": "city", "op": "is", "value": "x"}}]}}`, "invalid_rule", "rule.and[0].trait.op"},
			{"a bad count", `{"name": "x", "rule": {"or": [` + cityRule + `, {"event": {"name": "Order Completed", "count": {"op": "at_least", "value": -1}}}]}}`, "invalid_rule", "rule.or[1].event.count.value"},
			{"anonymous reached", `{"name": "x", "rule": {"stage": {"op": "reached", "value": "anonymous"}}}`, "invalid_rule", "rule.stage.value"},
			{"two keys", `{"name": "x", "rule": {"trait": {"name": "city", "op": "exists"}, "stage": {"op": "is", "value": "converted"}}}`, "invalid_rule", "rule:"},
			{"not an object", `{"name": "x", "rule": []}`, "invalid_rule", "rule:"},
			{"null", `{"name": "x", "rule": null}`, "invalid_rule", "rule:"},
			{"no rule", `{"name": "x"}`, "invalid_rule", "rule:"},
			{"an unknown segment", `{"name": "x", "rule": {"segment": {"id": "seg_nope"}}}`, "invalid_rule", "seg_nope"},
			{"a list with a rule", `{"name": "x", "kind": "list", "rule": ` + cityRule + `}`, "invalid", "list"},
			{"an unknown kind", `{"name": "x", "kind": "magic", "rule": ` + cityRule + `}`, "invalid", "kind"},
			{"no name", `{"rule": ` + cityRule + `}`, "invalid", "name"},
			{"an unknown field", `{"name": "x", "colour": "red", "rule": ` + cityRule + `}`, "invalid", "colour"},
			{"not JSON", `{"name": `, "invalid", "not valid"},
		} {
			r := m.do("POST", "/api/v1/segments", tt.body)
			if r.status != http.StatusBadRequest || r.errCode() != tt.code || !strings.Contains(string(r.body), tt.path) {
				t.Errorf("%s: %d %s, want 400 %s naming %s", tt.name, r.status, r.body, tt.code, tt.path)
			}
		}
		r = m.do("POST", "/api/v1/segments/count", `{"rule": {"event": {"name": "Order Completed", "between": {"from": "2026-03-01", "to": "2026-02-01"}}}}`)
		if r.status != http.StatusBadRequest || r.errCode() != "invalid_rule" || !strings.Contains(string(r.body), "rule.event.between.to") {
			t.Errorf("count of an invalid rule: %d %s", r.status, r.body)
		}
		if r := m.do("POST", "/api/v1/segments/count", `{}`); r.status != http.StatusBadRequest || r.errCode() != "invalid_rule" {
			t.Errorf("count without a rule: %d %s", r.status, r.body)
		}
		for _, tt := range []struct{ name, body, path string }{
			{"a bad op", `{"rule": {"not": {"stage": {"op": "above", "value": "converted"}}}}`, "rule.not.stage.op"},
			{"itself", `{"rule": {"segment": {"id": "` + sh.ID + `"}}}`, "which is this segment"},
			{"a circle", `{"rule": {"segment": {"id": "` + big.ID + `"}}}`, "circle"},
		} {
			r := m.do("PATCH", "/api/v1/segments/"+sh.ID, tt.body)
			if r.status != http.StatusBadRequest || r.errCode() != "invalid_rule" || !strings.Contains(string(r.body), tt.path) {
				t.Errorf("PATCH %s: %d %s, want 400 invalid_rule naming %s", tt.name, r.status, r.body, tt.path)
			}
		}
		if r := m.do("PATCH", "/api/v1/segments/"+sh.ID, `{"kind": "list"}`); r.status != http.StatusBadRequest {
			t.Errorf("PATCH of the kind: %d %s", r.status, r.body)
		}
		if r := m.do("PATCH", "/api/v1/segments/seg_nope", `{"name": "x"}`); r.status != http.StatusNotFound {
			t.Errorf("PATCH of an unknown segment: %d %s", r.status, r.body)
		}
		if got := getSegment(t, a, sh.ID); got.Size != 3 || got.Name != "Shanghai 上海 buyers" {
			t.Errorf("refused changes changed the segment: %+v", got)
		}
		sameJSON(t, "the rule after refused changes", getSegment(t, a, sh.ID).Rule, bought)
		r = a.do("GET", "/api/v1/segments", nil)
		list.Segments = nil
		r.decode(t, &list)
		if len(list.Segments) != 2 {
			t.Errorf("refused segments were stored: %s", r.body)
		}

		// Roles: any role reads, admins and marketers write.
		for _, rt := range []struct{ method, path, body string }{
			{"POST", "/api/v1/segments", `{"name": "x", "rule": ` + cityRule + `}`},
			{"PATCH", "/api/v1/segments/" + sh.ID, `{"name": "x"}`},
			{"DELETE", "/api/v1/segments/" + big.ID, ""},
			{"PUT", "/api/v1/segments/" + sh.ID + "/list", "ada@example.com\n"},
		} {
			if r := a.do(rt.method, rt.path, rt.body); r.status != http.StatusForbidden || r.errCode() != "forbidden" {
				t.Errorf("an analyst's %s %s: %d %s, want 403", rt.method, rt.path, r.status, r.body)
			}
			if r := s.client().do(rt.method, rt.path, rt.body); r.status != http.StatusUnauthorized {
				t.Errorf("%s %s without credentials: %d, want 401", rt.method, rt.path, r.status)
			}
		}
		for _, path := range []string{"/api/v1/segments", "/api/v1/segments/" + sh.ID, "/api/v1/segments/" + sh.ID + "/members",
			"/api/v1/segments/" + sh.ID + "/members.csv", "/api/v1/segments/" + sh.ID + "/sizes", "/api/v1/profiles/" + ada + "/segments"} {
			if r := s.client().do("GET", path, nil); r.status != http.StatusUnauthorized {
				t.Errorf("GET %s without credentials: %d, want 401", path, r.status)
			}
		}
		if r := a.do("GET", "/api/v1/segments", nil); r.status != http.StatusOK {
			t.Errorf("an analyst's list: %d", r.status)
		}
		if r := s.as(hearth.RoleAdmin).do("PATCH", "/api/v1/segments/"+big.ID, `{"description": "bought twice"}`); r.status != http.StatusOK {
			t.Errorf("an admin's PATCH: %d %s", r.status, r.body)
		}
		for _, id := range []string{"seg_nope"} {
			for _, path := range []string{"", "/members", "/members.csv", "/sizes"} {
				if r := a.do("GET", "/api/v1/segments/"+id+path, nil); r.status != http.StatusNotFound || r.errCode() != "not_found" {
					t.Errorf("GET an unknown segment%s: %d %s", path, r.status, r.body)
				}
			}
		}

		// Deleting: the segment that uses another first, then that one.
		wantStatus(t, m.do("DELETE", "/api/v1/segments/"+big.ID, nil), http.StatusNoContent)
		wantStatus(t, a.do("GET", "/api/v1/segments/"+big.ID, nil), http.StatusNotFound)
		wantStatus(t, m.do("DELETE", "/api/v1/segments/"+big.ID, nil), http.StatusNotFound)

		// A list segment: one value per line, then columns under a header.
		r = m.do("POST", "/api/v1/segments", `{"name": "VIP list", "kind": "list"}`)
		wantStatus(t, r, http.StatusCreated)
		var vip segmentResp
		r.decode(t, &vip)
		if vip.Kind != "list" || string(vip.Rule) != "null" || vip.ListItems == nil || *vip.ListItems != 0 || vip.Size != 0 {
			t.Errorf("a new list segment: %s", r.body)
		}
		upload := func(id, body, contentType string) response {
			t.Helper()
			c := s.as(hearth.RoleMarketer)
			c.header.Set("Content-Type", contentType)
			return c.do("PUT", "/api/v1/segments/"+id+"/list", body)
		}
		rejected := func(l listUploadResp) []string {
			out := []string{}
			for _, rj := range l.Rejected {
				out = append(out, fmt.Sprintf("%d: %s", rj.Line, rj.Reason))
			}
			return out
		}
		r = upload(vip.ID, "\uFEFFADA@example.com\n137 2468 1357\nnot-an-email\nnobody@example.com\n,,\nada@example.com\n", "text/csv")
		wantStatus(t, r, http.StatusOK)
		var lu listUploadResp
		r.decode(t, &lu)
		if want := []string{"3: column 1 is not an email address or a phone number", "5: no email address or phone number"}; lu.Items != 3 || !cmp.Equal(rejected(lu), want) {
			t.Errorf("a list of values: %s; want 3 items and rejected %q", r.body, want)
		}
		got := waitSegment(t, a, vip.ID, "evaluated with 2 members", func(s segmentResp) bool { return s.Status == "ready" && s.Size == 2 })
		if got.ListItems == nil || *got.ListItems != 3 {
			t.Errorf("list_items %v, want 3", got.ListItems)
		}
		if ids, _ := allMembers(t, a, vip.ID, 50); !cmp.Equal(sortedIDs(ids), sortedIDs([]string{ada, dan})) {
			t.Errorf("the list's members: %v", ids)
		}
		r = upload(vip.ID, "姓名,邮箱,手机\nBob,bob@example.com,\nCarol,,\nEve,eve@example.com,139 1111 2222\nDan,,137 2468 1357\nZed,,12\n", "text/csv; charset=utf-8")
		wantStatus(t, r, http.StatusOK)
		lu = listUploadResp{}
		r.decode(t, &lu)
		if want := []string{"3: no email address or phone number", "6: column 3 is not a valid phone number"}; lu.Items != 4 || !cmp.Equal(rejected(lu), want) {
			t.Errorf("a list with a header: %s; want 4 items and rejected %q", r.body, want)
		}
		waitSegment(t, a, vip.ID, "evaluated with Bob, Eve and Dan", func(s segmentResp) bool { return s.Status == "ready" && s.Size == 3 })
		if ids, _ := allMembers(t, a, vip.ID, 50); !cmp.Equal(sortedIDs(ids), sortedIDs([]string{bob, eve, dan})) {
			t.Errorf("the list's members after a new list: %v", ids)
		}
		// An export uploads as a list of the same people.
		_, rows = exportCSV(t, a, sh.ID)
		var exported strings.Builder
		csv.NewWriter(&exported).WriteAll(rows)
		r = upload(vip.ID, exported.String(), "text/csv")
		wantStatus(t, r, http.StatusOK)
		lu = listUploadResp{}
		r.decode(t, &lu)
		if lu.Items != 4 || len(lu.Rejected) != 0 || lu.Rejected == nil {
			t.Errorf("an export as a list: %s", r.body)
		}
		waitSegment(t, a, vip.ID, "evaluated with the export's people", func(s segmentResp) bool { return s.Status == "ready" && s.Size == 3 })
		if ids, _ := allMembers(t, a, vip.ID, 50); !cmp.Equal(sortedIDs(ids), sortedIDs([]string{ada, bob, eve})) {
			t.Errorf("the members of an export as a list: %v", ids)
		}

		for _, tt := range []struct {
			name, id, body, contentType string
			status                      int
		}{
			{"JSON", vip.ID, `{"items": []}`, "application/json", 400},
			{"a rule segment", sh.ID, "ada@example.com\n", "text/csv", 400},
			{"an unknown segment", "seg_nope", "ada@example.com\n", "text/csv", 404},
			{"too large", vip.ID, strings.Repeat("someone@example.com\n", 32<<20/20+1), "text/csv", 413},
		} {
			if r := upload(tt.id, tt.body, tt.contentType); r.status != tt.status {
				t.Errorf("a list as %s: %d %.200s, want %d", tt.name, r.status, r.body, tt.status)
			}
		}
		// Over the limit without a Content-Length, sent in chunks.
		big32 := io.MultiReader(strings.NewReader("email\n"), strings.NewReader(strings.Repeat("someone@example.com\n", 32<<20/20+1)))
		req, _ := http.NewRequest("PUT", s.url+"/api/v1/segments/"+vip.ID+"/list", big32)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+e.keys[hearth.RoleMarketer])
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Errorf("a chunked upload over the limit: %v", err)
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "too_large") {
				t.Errorf("a chunked upload over the limit: %d %s", resp.StatusCode, b)
			}
		}
		if got := getSegment(t, a, vip.ID); got.ListItems == nil || *got.ListItems != 4 {
			t.Errorf("a refused upload changed the list: %+v", got)
		}

		// Deleting a segment drops its members and history.
		wantStatus(t, m.do("DELETE", "/api/v1/segments/"+vip.ID, nil), http.StatusNoContent)
		segs, changes = personSegments(dan)
		if len(segs) != 0 || len(changes) != 0 {
			t.Errorf("Dan's segments after the list's deletion: %v %v", segs, changes)
		}
		wantStatus(t, m.do("DELETE", "/api/v1/segments/"+sh.ID, nil), http.StatusNoContent)

		// Nothing personal reached the logs.
		logs := e.logs.String()
		if !strings.Contains(logs, "PUT /api/v1/segments/{id}/list") {
			t.Errorf("the access log lacks the uploads: %.300s", logs)
		}
		for _, personal := range []string{"ada@example.com", "ADA@example.com", "bob@example.com", "13724681357", "137 2468", "Lovelace", "HYPERLINK", "Shanghai"} {
			if strings.Contains(logs, personal) {
				t.Errorf("the log holds %q", personal)
			}
		}
	})
}

func reversedIDs(s []string) []string {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

// Without an engine running, creating a segment answers after 5 s with it still evaluating; the engine then
// makes it ready.
func TestSegmentsEvaluating(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, e *env) {
		s, engine := segmentServer(t, e, false)
		p := newSegmentPeople(t, e)
		p.identify("a1", map[string]any{"name": "Ada", "email": "ada@example.com"})
		p.process()
		m := s.as(hearth.RoleMarketer)
		began := time.Now()
		r := m.do("POST", "/api/v1/segments", `{"name": "Everyone reachable", "rule": {"reachable": {"channel": "any"}}}`)
		wantStatus(t, r, http.StatusCreated)
		var seg segmentResp
		r.decode(t, &seg)
		if seg.Status != "evaluating" || seg.EvaluatedAt != nil || seg.Size != 0 || !strings.Contains(string(r.body), `"evaluated_at":null`) {
			t.Errorf("a segment not evaluated yet: %s", r.body)
		}
		if waited := time.Since(began); waited < 4*time.Second {
			t.Errorf("answered after %s, before the engine could have evaluated it", waited)
		}
		for {
			busy, err := engine.Step(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !busy {
				break
			}
		}
		if got := getSegment(t, m, seg.ID); got.Status != "ready" || got.Size != 1 || got.EvaluatedAt == nil {
			t.Errorf("after the engine's steps: %+v", got)
		}
	})
}

// A server without segments says so.
func TestSegmentsUnavailable(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		r := e.as(hearth.RoleAnalyst).do("GET", "/api/v1/segments", nil)
		if r.status != http.StatusServiceUnavailable || r.errCode() != "unavailable" {
			t.Errorf("segments on a server without them: %d %s", r.status, r.body)
		}
	})
}
