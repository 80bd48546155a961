package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
)

type profileResp struct {
	ID           string
	AbsorbedID   *string `json:"absorbed_id"`
	Name         string
	Stage        string
	Steps        map[string]bool
	IdentifiedAt *time.Time `json:"identified_at"`
	ConnectedAt  *time.Time `json:"connected_at"`
	ActivatedAt  *time.Time `json:"activated_at"`
	ConvertedAt  *time.Time `json:"converted_at"`
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
	Identities   []struct {
		Type, Value string
		FirstSeq    int64      `json:"first_seq"`
		FirstAt     *time.Time `json:"first_at"`
	}
	Traits map[string]struct {
		Value    json.RawMessage
		SourceID string `json:"source_id"`
		Source   string
		Seq      int64
		At       time.Time
	}
	Touches []struct {
		TouchpointID string  `json:"touchpoint_id"`
		Touchpoint   string  `json:"touchpoint"`
		Channel      string  `json:"channel"`
		CampaignID   *string `json:"campaign_id"`
		Campaign     *string `json:"campaign"`
		Count        int     `json:"count"`
	}
	FirstTouch *struct {
		Touchpoint string
		Campaign   *string
		Seq        int64
	} `json:"first_touch"`
	LastTouch *struct{ Touchpoint string } `json:"last_touch"`
	Stages    []struct {
		Seq      int64
		From, To string
	}
	Merges []struct {
		Seq        int64
		Into, From string
		Via        struct{ Type, Value string }
	}
}

type profileListResp struct {
	Items []struct {
		ID, Name, Stage string
		Email, Phone    *string
		LastSeen        time.Time `json:"last_seen"`
	}
	Next *string
}

type timelineResp struct {
	Items []struct {
		Seq        int64
		Type       string
		Name       string
		MessageID  string `json:"message_id"`
		SourceID   string `json:"source_id"`
		Source     string
		SourceKind string `json:"source_kind"`
		Payload    json.RawMessage
		Touch      *struct {
			TouchpointID string `json:"touchpoint_id"`
			Touchpoint   string
			Channel      string
			Campaign     *string
			Via          string
		}
	}
	Next *int64
}

// profileWorld fills the store with a few people's events and runs the profile processor over them:
//
//	seq 1     page, anonymous a1                                   → P1
//	seq 2     identify a1: Ada Lovelace, her email and phone        → P1 identified, connected
//	seq 3     identify a3 with the email countess@example.org       → P3
//	seq 4     Product Viewed by a1, with countess@example.org       → P3 merges into P1
//	seq 5     identify g1: Grace Hopper, grace@example.com          → P5
//	seq 6     a touch of the Jing'an poster, recorded by staff with ada@example.com → P1
//	seq 7–61  55 Page Scrolled events of a1                         → P1
func profileWorld(t *testing.T, e *env) (web sourceOut, poster touchpointResp, campaign campaignResp) {
	t.Helper()
	m := e.as(hearth.RoleMarketer)
	web = createSource(t, m, "Website", "website")
	if _, err := collect.NewSources(e.db, e.clock).EnsureTouchSource(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.do("POST", "/api/v1/campaigns", map[string]any{"name": "Spring launch"}).decode(t, &campaign)
	m.do("POST", "/api/v1/touchpoints", map[string]any{"name": "Jing'an window poster", "channel": "qr_poster",
		"destination_url": "https://shop.example/spring", "campaign_id": campaign.ID}).decode(t, &poster)

	w := store.NewEventWriter(e.db, store.EventWriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	n := 0
	send := func(typ string, fields map[string]any) {
		n++
		fields["type"], fields["messageId"] = typ, fmt.Sprintf("m%d", n)
		payload, _ := json.Marshal(fields)
		anon, _ := fields["anonymousId"].(string)
		name, _ := fields["event"].(string)
		at := e.clock.Now().Add(time.Duration(n-120) * time.Minute)
		_, err := w.Append(ctx, &collect.Batch{SourceID: web.ID, ReceivedAt: e.clock.Now(), Events: []collect.Event{
			{MessageID: fmt.Sprintf("m%d", n), Type: typ, Name: name, AnonymousID: anon, Timestamp: at, ReceivedAt: e.clock.Now(), Payload: payload}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	send("page", map[string]any{"anonymousId": "a1"})
	send("identify", map[string]any{"anonymousId": "a1", "traits": map[string]any{"name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "139 1234 5678", "plan": "pro"}})
	send("identify", map[string]any{"anonymousId": "a3", "traits": map[string]any{"email": "countess@example.org"}})
	send("track", map[string]any{"anonymousId": "a1", "event": "Product Viewed", "context": map[string]any{"traits": map[string]any{"email": "countess@example.org"}}})
	send("identify", map[string]any{"anonymousId": "g1", "traits": map[string]any{"name": "Grace Hopper", "email": "grace@example.com"}})
	n++
	r := m.do("POST", "/api/v1/touches", map[string]any{"touchpoint_id": poster.ID, "email": "ada@example.com"})
	wantStatus(t, r, http.StatusCreated)
	for range 55 {
		send("track", map[string]any{"anonymousId": "a1", "event": "Page Scrolled"})
	}

	p := profile.NewProcessor(e.db, profile.Options{})
	for {
		n, err := p.Process(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	return web, poster, campaign
}

func TestProfiles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		web, poster, campaign := profileWorld(t, e)
		c := e.as(hearth.RoleAnalyst)
		p1, p3, p5 := profile.ProfileID(1), profile.ProfileID(3), profile.ProfileID(5)

		// A lookup by any identifier, written as people write it.
		var ada profileResp
		r := c.do("GET", "/api/v1/profiles/lookup?type=email&value="+url.QueryEscape(" Ada@Example.com "), nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &ada)
		if ada.ID != p1 || ada.AbsorbedID != nil || ada.Name != "Ada Lovelace" || ada.Stage != "activated" {
			t.Errorf("Ada: %s", r.body)
		}
		var ids []string
		seqAt := func(seq int64) time.Time { return e.clock.Now().Add(time.Duration(seq-120) * time.Minute) }
		for _, id := range ada.Identities {
			ids = append(ids, id.Type+":"+id.Value)
			if id.FirstAt == nil || !id.FirstAt.Equal(seqAt(id.FirstSeq)) {
				t.Errorf("%s:%s first at %v, want the time of event %d", id.Type, id.Value, id.FirstAt, id.FirstSeq)
			}
		}
		want := []string{"anonymous_id:a1", "email:ada@example.com", "phone:+8613912345678", "anonymous_id:a3", "email:countess@example.org"}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("identities (-want +got):\n%s", diff)
		}
		if tr := ada.Traits["plan"]; string(tr.Value) != `"pro"` || tr.SourceID != web.ID || tr.Source != "Website" || tr.Seq != 2 {
			t.Errorf("trait plan: %+v", tr)
		}
		if len(ada.Touches) != 1 || ada.Touches[0].TouchpointID != poster.ID || ada.Touches[0].Touchpoint != "Jing'an window poster" ||
			ada.Touches[0].Channel != "qr_poster" || ada.Touches[0].Campaign == nil || *ada.Touches[0].Campaign != "Spring launch" ||
			*ada.Touches[0].CampaignID != campaign.ID || ada.Touches[0].Count != 1 {
			t.Errorf("touches: %s", r.body)
		}
		if ada.FirstTouch == nil || ada.FirstTouch.Seq != 6 || ada.FirstTouch.Campaign == nil || ada.LastTouch == nil || ada.LastTouch.Touchpoint != "Jing'an window poster" {
			t.Errorf("first and last touch: %+v, %+v", ada.FirstTouch, ada.LastTouch)
		}
		if len(ada.Merges) != 1 || ada.Merges[0].Seq != 4 || ada.Merges[0].Into != p1 || ada.Merges[0].From != p3 ||
			ada.Merges[0].Via.Type != "email" || ada.Merges[0].Via.Value != "countess@example.org" {
			t.Errorf("merges: %+v", ada.Merges)
		}
		if len(ada.Stages) == 0 || ada.Stages[len(ada.Stages)-1].To != "activated" {
			t.Errorf("stages: %+v", ada.Stages)
		}
		// Each step's rule on its own, and the time she first viewed a product (seq 4).
		if diff := cmp.Diff(map[string]bool{"identified": true, "connected": true, "activated": true, "converted": false}, ada.Steps); diff != "" {
			t.Errorf("steps (-want +got):\n%s", diff)
		}
		if at := seqAt(4); ada.ActivatedAt == nil || !ada.ActivatedAt.Equal(at) || ada.ConvertedAt != nil {
			t.Errorf("activated at %v, converted at %v; want %v and null", ada.ActivatedAt, ada.ConvertedAt, at)
		}
		// Identified and connected by the email and phone of her first identify (seq 2).
		if ada.IdentifiedAt == nil || !ada.IdentifiedAt.Equal(seqAt(2)) || ada.ConnectedAt == nil || !ada.ConnectedAt.Equal(seqAt(2)) {
			t.Errorf("identified at %v, connected at %v; want both %v", ada.IdentifiedAt, ada.ConnectedAt, seqAt(2))
		}

		for _, tt := range []struct {
			name, query string
			status      int
		}{
			{"phone as typed", "type=phone&value=" + url.QueryEscape("139 1234 5678"), 200},
			{"phone in E.164", "type=phone&value=" + url.QueryEscape("+8613912345678"), 200},
			{"anonymous id", "type=anonymous_id&value=a3", 200}, // absorbed with P3
			{"unknown type", "type=shoe_size&value=42", 400},
			{"no type", "value=ada@example.com", 400},
			{"not an email", "type=email&value=ada", 400},
			{"junk", "type=email&value=test@test.com", 400},
			{"no one", "type=email&value=nobody@example.com", 404},
		} {
			r := c.do("GET", "/api/v1/profiles/lookup?"+tt.query, nil)
			if r.status != tt.status {
				t.Errorf("lookup %s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
			}
			var p profileResp
			if r.status == 200 {
				r.decode(t, &p)
				if p.ID != p1 {
					t.Errorf("lookup %s: profile %s, want %s", tt.name, p.ID, p1)
				}
			}
		}

		// By id; the id of a profile merged away answers the one it lives in.
		var got profileResp
		r = c.do("GET", "/api/v1/profiles/"+p1, nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &got)
		if diff := cmp.Diff(ada, got); diff != "" {
			t.Errorf("by id (-lookup +by id):\n%s", diff)
		}
		r = c.do("GET", "/api/v1/profiles/"+p3, nil)
		wantStatus(t, r, http.StatusOK)
		got = profileResp{}
		r.decode(t, &got)
		if got.ID != p1 || got.AbsorbedID == nil || *got.AbsorbedID != p3 || got.Name != "Ada Lovelace" {
			t.Errorf("by the absorbed id: %s", r.body)
		}
		if r := c.do("GET", "/api/v1/profiles/nope", nil); r.status != http.StatusNotFound || r.errCode() != "not_found" {
			t.Errorf("an unknown id: %d %s", r.status, r.body)
		}

		// Search by name, email or phone prefix; without a query, the most recently active first.
		search := func(query string) profileListResp {
			t.Helper()
			r := c.do("GET", "/api/v1/profiles"+query, nil)
			wantStatus(t, r, http.StatusOK)
			var l profileListResp
			r.decode(t, &l)
			return l
		}
		for _, tt := range []struct {
			query string
			want  []string
		}{
			{"?q=ada", []string{p1}},
			{"?q=" + url.QueryEscape("Ada L"), []string{p1}},
			{"?q=ADAL", []string{p1}},
			{"?q=countess", []string{p1}},
			{"?q=grace%40", []string{p5}},
			{"?q=" + url.QueryEscape("ｇｒａｃｅ＠"), []string{p5}}, // typed in full width
			{"?q=139123", []string{p1}},
			{"?q=" + url.QueryEscape("+86 139"), []string{p1}},
			{"?q=8613912", []string{p1}},
			{"?q=" + url.QueryEscape("139-1234"), []string{p1}},
			{"?q=138", []string{}},
			{"?q=zz", []string{}},
			{"", []string{p1, p5}},
			{"?q=%2B", []string{}},
			{"?q=" + url.QueryEscape("ada@ex grace"), []string{}},
			{"?step=identified", []string{p1, p5}},
			{"?step=activated", []string{p1}},
			{"?step=converted", []string{}},
			{"?q=grace&step=connected", []string{p5}},
			{"?q=grace&step=activated", []string{}},
		} {
			l := search(tt.query)
			got := []string{}
			for _, p := range l.Items {
				got = append(got, p.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" || l.Next != nil {
				t.Errorf("search %s (-want +got):\n%s next %v", tt.query, diff, l.Next)
			}
		}
		l := search("?q=countess")
		if it := l.Items[0]; it.Name != "Ada Lovelace" || it.Stage != "activated" || it.Email == nil || *it.Email != "countess@example.org" ||
			it.Phone == nil || *it.Phone != "+8613912345678" {
			t.Errorf("a search's row: %+v", it)
		}
		l = search("?limit=1")
		if len(l.Items) != 1 || l.Items[0].ID != p1 || l.Items[0].Email == nil || *l.Items[0].Email != "ada@example.com" || l.Next == nil {
			t.Fatalf("first page of one: %+v", l)
		}
		l = search("?limit=1&cursor=" + *l.Next)
		if len(l.Items) != 1 || l.Items[0].ID != p5 || l.Next != nil {
			t.Errorf("second page of one: %+v", l)
		}
		for _, q := range []string{"?cursor=nonsense", "?limit=-1", "?limit=x", "?q=" + strings.Repeat("x", 201), "?step=anonymous", "?step=loyal"} {
			if r := c.do("GET", "/api/v1/profiles"+q, nil); r.status != http.StatusBadRequest {
				t.Errorf("search %.40s: %d %s, want 400", q, r.status, r.body)
			}
		}

		// How many people stand at each stage, every stage in order: Ada and Grace (P3 lives in Ada).
		var stages struct {
			Stages []struct {
				Stage    string `json:"stage"`
				Profiles int64  `json:"profiles"`
			} `json:"stages"`
			Steps []struct {
				Step     string `json:"step"`
				Profiles int64  `json:"profiles"`
			} `json:"steps"`
			Total int64 `json:"total"`
		}
		r = c.do("GET", "/api/v1/profiles/stages", nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &stages)
		var order []string
		counted := map[string]int64{}
		for _, st := range stages.Stages {
			order = append(order, st.Stage)
			counted[st.Stage] = st.Profiles
		}
		if !slices.Equal(order, []string{"anonymous", "identified", "connected", "activated", "converted"}) || stages.Total != 2 ||
			counted["activated"] < 1 || counted["anonymous"]+counted["identified"]+counted["connected"]+counted["activated"]+counted["converted"] != 2 {
			t.Errorf("stages: %s", r.body)
		}
		// Each step counts the people who meet it, as each profile's own steps say.
		var listed struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		r2 := c.do("GET", "/api/v1/profiles", nil)
		wantStatus(t, r2, http.StatusOK)
		r2.decode(t, &listed)
		meet := map[string]int64{}
		for _, it := range listed.Items {
			var one struct {
				Steps map[string]bool `json:"steps"`
			}
			rp := c.do("GET", "/api/v1/profiles/"+it.ID, nil)
			wantStatus(t, rp, http.StatusOK)
			rp.decode(t, &one)
			for step, met := range one.Steps {
				if met {
					meet[step]++
				}
			}
		}
		var stepOrder []string
		for _, st := range stages.Steps {
			stepOrder = append(stepOrder, st.Step)
			if st.Profiles != meet[st.Step] {
				t.Errorf("step %s: %d profiles, but %d profiles say they meet it", st.Step, st.Profiles, meet[st.Step])
			}
		}
		if !slices.Equal(stepOrder, []string{"identified", "connected", "activated", "converted"}) || len(listed.Items) != 2 || meet["activated"] < 1 {
			t.Errorf("steps: %s (profiles meeting each: %v)", r.body, meet)
		}

		// The timeline, newest first, a page at a time; a touch says what was touched.
		var tl timelineResp
		r = c.do("GET", "/api/v1/profiles/"+p1+"/events", nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &tl)
		if len(tl.Items) != 50 || tl.Items[0].Seq != 61 || tl.Items[49].Seq != 12 || tl.Next == nil || *tl.Next != 12 {
			t.Fatalf("first page: %d events, next %v", len(tl.Items), tl.Next)
		}
		if it := tl.Items[0]; it.Name != "Page Scrolled" || it.Type != "track" || it.SourceID != web.ID || it.Source != "Website" || it.SourceKind != "website" || it.Touch != nil ||
			!strings.Contains(string(it.Payload), `"Page Scrolled"`) {
			t.Errorf("an event: %+v", it)
		}
		r = c.do("GET", fmt.Sprintf("/api/v1/profiles/%s/events?before=%d", p3, *tl.Next), nil) // by the absorbed id too
		wantStatus(t, r, http.StatusOK)
		tl = timelineResp{}
		r.decode(t, &tl)
		if len(tl.Items) != 10 || tl.Items[0].Seq != 11 || tl.Items[9].Seq != 1 || tl.Next != nil {
			t.Fatalf("second page: %+v", tl)
		}
		touch := tl.Items[5]
		if touch.Seq != 6 || touch.Name != "Touch" || touch.SourceID != collect.TouchSourceID || touch.Source == "" || touch.SourceKind != "touch" || touch.Touch == nil ||
			touch.Touch.TouchpointID != poster.ID || touch.Touch.Touchpoint != "Jing'an window poster" || touch.Touch.Channel != "qr_poster" ||
			touch.Touch.Campaign == nil || *touch.Touch.Campaign != "Spring launch" || touch.Touch.Via != "offline" {
			t.Errorf("the touch: %+v %+v", touch, touch.Touch)
		}
		r = c.do("GET", "/api/v1/profiles/"+p5+"/events?limit=500", nil)
		tl = timelineResp{}
		r.decode(t, &tl)
		if len(tl.Items) != 1 || tl.Items[0].Seq != 5 || tl.Next != nil {
			t.Errorf("Grace's timeline: %+v", tl)
		}
		for _, q := range []string{"/api/v1/profiles/nope/events", "/api/v1/profiles/" + p1 + "/events?before=x", "/api/v1/profiles/" + p1 + "/events?limit=-2"} {
			if r := c.do("GET", q, nil); r.status != http.StatusNotFound && r.status != http.StatusBadRequest {
				t.Errorf("%s: %d %s", q, r.status, r.body)
			}
		}

		// None of what was looked up or searched for is in the logs.
		logs := e.logs.String()
		if !strings.Contains(logs, "GET /api/v1/profiles/lookup") {
			t.Errorf("the access log lacks the lookups: %.300s", logs)
		}
		for _, personal := range []string{"ada@example.com", "Ada@Example.com", "Ada%40Example", "912345", "countess", "grace", "Lovelace", "q=ada"} {
			if strings.Contains(logs, personal) {
				t.Errorf("the log holds %q", personal)
			}
		}
	})
}
