package app

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// A marketer looks at what a campaign reached. The Singles' Day campaign has a poster and a business card; staff
// record Mei (by her phone) at both and Li (by his email) at the poster, and someone else at a touchpoint outside
// the campaign; Li signed up in the shop's app and bought. From the campaigns list, the touchpoints count opens
// the campaign's touchpoints and the row opens the campaign's page: its touches, its touchpoints (the poster
// first, the most touched), and the people it reached, Mei and Li, each once, with how far they went. Make a
// segment opens the editor on "touched the campaign", counting the same two people; a person's chip opens their
// page; the poster's page counts its own people. The campaign pauses and resumes, and its goal is edited, from its
// page. The home screen charts the touches of every touchpoint. It reads the same in Chinese and fits a phone.
func TestBrowserCampaign(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	bg := context.Background()

	campaign, err := s.app.touch.CreateCampaign(bg, touchpoint.Campaign{Name: "Singles' Day", Goal: "500 new members"})
	if err != nil {
		t.Fatal(err)
	}
	newTouchpoint := func(name string, ch touchpoint.Channel, campaignID string) touchpoint.Touchpoint {
		t.Helper()
		tp, err := s.app.touch.CreateTouchpoint(bg, touchpoint.Touchpoint{Name: name, Channel: ch,
			DestinationURL: "https://shop.example/1111", CampaignID: campaignID})
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	poster := newTouchpoint("Nanjing Road poster", touchpoint.ChannelPoster, campaign.ID)
	card := newTouchpoint("Sales rep card", touchpoint.ChannelCard, campaign.ID)
	elsewhere := newTouchpoint("Airport ad", touchpoint.ChannelAd, "")

	src, err := s.app.sources.Create(bg, "Shop app", collect.KindApp)
	if err != nil {
		t.Fatal(err)
	}
	track := func(call, body string) { postTracking(t, s.base, src.WriteKey, call, body, http.StatusOK) }
	track("identify", `{"userId":"li","traits":{"name":"Li Lei","email":"li@example.com"}}`)
	track("track", `{"userId":"li","event":"Order Completed","properties":{"amount":299}}`)

	key, _, err := s.app.auth.CreateAPIKey(bg, "staff app", hearth.RoleMarketer)
	if err != nil {
		t.Fatal(err)
	}
	for _, touch := range []map[string]string{
		{"touchpoint_id": poster.ID, "phone": "13912345678"},
		{"touchpoint_id": card.ID, "phone": "13912345678"},
		{"touchpoint_id": poster.ID, "email": "li@example.com"},
		{"touchpoint_id": elsewhere.ID, "email": "wang@example.com"},
	} {
		if code := s.call(t, key, "POST", "/api/v1/touches", touch, nil); code != http.StatusCreated {
			t.Fatalf("record %v: %d", touch, code)
		}
	}
	// Li bought before her touch; Mei buys after hers.
	track("track", `{"userId":"mei","event":"Order Completed","context":{"traits":{"phone":"13912345678"}}}`)

	// The touch counters and the people are kept by readers of the event log, about once a second: wait until
	// the API counts them all, so that the page, read once, shows them.
	type reach struct {
		Profiles int
		Steps    []struct {
			Step     string
			Profiles int
		}
	}
	var totals struct{ Totals struct{ Touches int } }
	var people reach
	for deadline := time.Now().Add(20 * time.Second); ; {
		s.call(t, key, "GET", "/api/v1/campaigns/"+campaign.ID, nil, &totals)
		s.call(t, key, "GET", "/api/v1/campaigns/"+campaign.ID+"/people", nil, &people)
		if totals.Totals.Touches == 3 && people.Profiles == 2 && fmt.Sprint(people.Steps) == "[{identified 2} {connected 2} {activated 0} {converted 2}]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s the campaign counts %d touches and %+v", totals.Totals.Touches, people)
		}
		time.Sleep(100 * time.Millisecond)
	}
	person := func(typ identity.Type, value string) string {
		t.Helper()
		p, err := s.app.db.ProfileByIdentifier(bg, typ, value)
		if err != nil {
			t.Fatalf("the profile of %s: %v", value, err)
		}
		return p.ID
	}
	li, mei := person(identity.Email, "li@example.com"), person(identity.Phone, "+8613912345678")

	ctx := browser(t)
	row := chromedp.CSS(`[data-testid="campaign-row"][data-campaign-id="` + campaign.ID + `"]`)
	signIn(t, ctx, s.base, "/campaigns", "admin@example.com", "a long admin password", row)

	// The list says how many people each campaign reached, and how many of them converted after their touch: Mei
	// of two (Li had bought before hers).
	do(t, ctx, "the campaign's people in the list",
		chromedp.WaitVisible(chromedp.CSS(string(row)+` [data-testid="reach-cell"][data-loaded="true"]`)))
	if got := read(t, ctx, "people reached", chromedp.Text(chromedp.CSS(string(row)+` [data-testid="campaign-people"]`))); !strings.Contains(got, "2") ||
		!strings.Contains(got, "50% converted after") {
		t.Errorf("the campaign's row says %q, want 2 people, 50%% converted after", got)
	}
	do(t, ctx, "the touchpoints count opens the campaign's touchpoints",
		chromedp.Click(chromedp.CSS(string(row)+` [data-testid="campaign-touchpoints-link"]`)),
		chromedp.WaitVisible(tid("touchpoints-table")),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid="touchpoint-row"]').length === 2`),
	)
	if picked := read(t, ctx, "campaign filter", chromedp.Value(tid("filter-campaign"))); picked != campaign.ID {
		t.Errorf("the touchpoints list is filtered by campaign %q, want %q", picked, campaign.ID)
	}
	// Each touchpoint's people too: the poster reached Mei and Li.
	posterPeople := chromedp.CSS(`[data-testid="touchpoint-row"][data-touchpoint-id="` + poster.ID + `"] [data-testid="reach-cell"][data-loaded="true"]`)
	do(t, ctx, "the poster's people in the list", chromedp.WaitVisible(posterPeople))
	if got := read(t, ctx, "the poster's people", chromedp.Attributes(posterPeople))["data-total"]; got != "2" {
		t.Errorf("the poster's row counts %q people, want 2", got)
	}
	do(t, ctx, "a touchpoint's campaign opens the campaign's page",
		chromedp.Click(tid("touchpoint-row-campaign")),
		chromedp.WaitVisible(tid("campaign-title")),
		chromedp.Poll[chromedp.Void](`location.pathname.endsWith('/campaigns/`+campaign.ID+`')`),
	)
	do(t, ctx, "the row opens the campaign's page",
		chromedp.Navigate(s.base+"/console/campaigns"),
		chromedp.WaitVisible(row),
		chromedp.Click(chromedp.CSS(string(row)+` td:nth-child(3)`)),
		chromedp.WaitVisible(tid("campaign-title")),
		chromedp.WaitVisible(tid("people-reached-total")),
		chromedp.WaitVisible(tid("campaign-touchpoint")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="campaign-people-count"][data-loaded="true"]`)),
	)
	text := func(testid string) string { return read(t, ctx, testid, chromedp.Text(tid(testid))) }
	if title := text("campaign-title"); title != "Singles' Day" {
		t.Errorf("the campaign's page is titled %q", title)
	}
	if doc := read(t, ctx, "window title", chromedp.Title()); doc != "Singles' Day · Campaigns · Hearth" {
		t.Errorf("the window is titled %q", doc)
	}
	for testid, want := range map[string]string{"campaign-status": "Active", "campaign-page-goal": "500 new members",
		"campaign-touchpoint-count": "2", "campaign-touch-count": "3", "campaign-people-count": "2", "people-reached-total": "2"} {
		if got := text(testid); got != want {
			t.Errorf("%s says %q, want %q", testid, got, want)
		}
	}
	listed := read(t, ctx, "the campaign's touchpoints", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="campaign-touchpoint"]')]
		.map((el) => el.dataset.touchpointId + ':' + el.querySelector('[data-testid="campaign-touchpoint-touches"]').textContent.trim())`))
	if want := []string{poster.ID + ":2", card.ID + ":1"}; !slices.Equal(listed, want) {
		t.Errorf("the campaign's touchpoints card lists %v, want the poster then the card %v", listed, want)
	}
	if href := read(t, ctx, "all touchpoints", chromedp.Attributes(tid("campaign-all-touchpoints")))["href"]; !strings.HasSuffix(href, "/touchpoints?campaign="+campaign.ID) {
		t.Errorf("All touchpoints of this campaign links to %q", href)
	}
	do(t, ctx, "the chart counts the campaign's touches",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="touch-chart-total"]').textContent.includes("Last 30 days: 3 ")`),
	)

	// Each of the two once: both identified and reachable, both bought, Mei alone after her touch.
	stepCounts := func() map[string]string {
		return read(t, ctx, "the steps", chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll(
			'[data-testid="people-reached-step"]')].map((el) => [el.dataset.step, el.querySelector('[data-testid="people-reached-step-count"]').textContent.trim()]))`))
	}
	if got, want := stepCounts(), map[string]string{"identified": "2", "connected": "2", "activated": "0", "converted": "2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the people reached: steps %v, want %v", got, want)
	}
	if text := read(t, ctx, "converted", chromedp.Text(chromedp.CSS(`[data-testid="people-reached-step"][data-step="converted"]`))); !strings.Contains(text, "Convert") || !strings.Contains(text, "100%") {
		t.Errorf("the converted step says %q, want Convert and 100%% of the people reached", text)
	}
	after := read(t, ctx, "converted after", chromedp.Attributes(tid("people-reached-after")))
	if text := text("people-reached-after"); after["data-count"] != "1" || !strings.Contains(text, "converted after their touch (50% of the people reached)") ||
		!strings.Contains(after["title"], "converted before") {
		t.Errorf("the card says %q (%v), want 1 converted after their touch, 50%%, and a hint", text, after)
	}
	chips := func() []string {
		return read(t, ctx, "the people shown", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="people-reached-person"]')]
			.map((el) => el.dataset.profileId).sort()`))
	}
	if got, want := chips(), slices.Sorted(slices.Values([]string{li, mei})); !slices.Equal(got, want) {
		t.Errorf("the card shows %v, want Li and Mei %v", got, want)
	}

	// The people reached become a segment: the editor starts on the campaign, counting the card's two.
	total := text("people-reached-total")
	do(t, ctx, "make a segment of them",
		chromedp.Click(tid("people-reached-segment")),
		chromedp.WaitVisible(tid("segment-rule")),
		chromedp.Poll[chromedp.Void](`(() => { const c = document.querySelector('[data-testid="segment-count"]');
			return !!c && c.dataset.state === 'done' && c.dataset.size === '`+total+`' })()`),
	)
	condition := read(t, ctx, "the condition", chromedp.Evaluate[[]string](`['rb-type', 'rb-touch-by', 'rb-campaign']
		.map((id) => document.querySelector('[data-testid="' + id + '"]').value)`))
	if want := []string{"touched", "campaign", campaign.ID}; !slices.Equal(condition, want) {
		t.Errorf("the segment starts with type, by and campaign %v, want %v", condition, want)
	}
	if sentence := text("rb-sentence"); !strings.Contains(sentence, "touched a touchpoint of campaign Singles' Day") {
		t.Errorf("the condition says %q", sentence)
	}
	do(t, ctx, "the segment's name", chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="segment-name"]').value !== ''`))
	if name := read(t, ctx, "the name", chromedp.Value(tid("segment-name"))); name != "Reached by Singles' Day" {
		t.Errorf("the segment from the campaign is named %q", name)
	}
	if read(t, ctx, "unsaved", chromedp.Evaluate[bool](`document.querySelector('[data-testid="segment-savebar"]').classList.contains('dirty')`)) {
		t.Error("the segment from the campaign counts as an unsaved change before any edit")
	}
	if n := count(t, ctx, `[data-testid="segment-sample-person"]`); n != 2 {
		t.Errorf("the live count shows %d people, want 2", n)
	}

	do(t, ctx, "back to the campaign; a person's chip opens their page",
		chromedp.NavigateBack(),
		chromedp.WaitVisible(tid("people-reached-person")),
		chromedp.Click(chromedp.CSS(`[data-testid="people-reached-person"][data-profile-id="`+li+`"]`)),
		chromedp.WaitVisible(tid("person-title")),
		chromedp.Poll[chromedp.Void](`location.pathname.endsWith('/people/`+li+`')`),
	)
	if name := text("person-title"); name != "Li Lei" {
		t.Errorf("Li's chip opened %q", name)
	}
	// Her touches name the campaign, a link back to it.
	do(t, ctx, "from the person's touches to the campaign",
		chromedp.Click(tid("touch-row-campaign")),
		chromedp.WaitVisible(tid("campaign-title")),
		chromedp.Poll[chromedp.Void](`location.pathname.endsWith('/campaigns/`+campaign.ID+`')`),
	)

	// The poster's own people: the same two, its segment by the touchpoint.
	do(t, ctx, "the poster's page",
		chromedp.Navigate(s.base+"/console/touchpoints/"+poster.ID),
		chromedp.WaitVisible(tid("people-reached-total")),
	)
	if n := text("people-reached-total"); n != "2" {
		t.Errorf("the poster reached %q people, want 2", n)
	}
	if href := read(t, ctx, "segment link", chromedp.Attributes(tid("people-reached-segment")))["href"]; !strings.HasSuffix(href, "/segments/new?touchpoint="+poster.ID) {
		t.Errorf("the poster's Make a segment links to %q", href)
	}
	do(t, ctx, "the touchpoint's campaign link opens the campaign",
		chromedp.Click(tid("touchpoint-campaign-link")),
		chromedp.WaitVisible(tid("campaign-title")),
	)

	do(t, ctx, "pause the campaign",
		chromedp.Click(tid("campaign-pause")),
		chromedp.WaitVisible(tid("confirm-ok")),
		chromedp.Click(tid("confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="campaign-status"][data-status="paused"]`)),
		chromedp.WaitVisible(tid("campaign-hold")),
	)
	if hold := text("campaign-hold"); !strings.Contains(hold, "paused") {
		t.Errorf("a paused campaign says %q", hold)
	}
	do(t, ctx, "resume it",
		chromedp.Click(tid("campaign-resume")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="campaign-status"][data-status="active"]`)),
		chromedp.WaitNotPresent(tid("campaign-hold")),
	)
	do(t, ctx, "edit its goal",
		chromedp.Click(tid("campaign-edit")),
		chromedp.WaitVisible(tid("campaign-goal")),
		// Empties the field as a person does, so that the form hears it.
		chromedp.Poll[chromedp.Void](`(() => { const el = document.querySelector('[data-testid="campaign-goal"]');
			el.value = ''; el.dispatchEvent(new Event('input')); return true })()`),
		chromedp.SendKeys(tid("campaign-goal"), "800 new members"),
		chromedp.Click(tid("campaign-save")),
		chromedp.WaitNotPresent(tid("campaign-goal")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="campaign-page-goal"]').textContent.trim() === '800 new members'`),
	)

	// The home screen charts the whole brand's touches: the campaign's three and the one elsewhere.
	do(t, ctx, "the brand's touches on the home screen",
		chromedp.Click(tid("nav-home")),
		chromedp.WaitVisible(tid("touch-chart-card")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="touch-chart-total"]').textContent.includes('Last 30 days: 4 (and 0 by bots)')`),
	)
	do(t, ctx, "back to the campaign",
		chromedp.Navigate(s.base+"/console/campaigns/"+campaign.ID),
		chromedp.WaitVisible(tid("people-reached-card")),
	)
	do(t, ctx, "in Chinese",
		chromedp.Click(tid("user-menu")),
		chromedp.WaitVisible(tid("lang-zh-CN")),
		chromedp.Click(tid("lang-zh-CN")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"]`)), // once its messages are loaded
	)
	cardText := read(t, ctx, "the card in Chinese", chromedp.Text(tid("people-reached-card")))
	for _, want := range []string{"覆盖的客户", "只计一次", "建分群", "其中包括：", "识别", "转化", "人在触达后转化（占覆盖客户的 50%）"} {
		if !strings.Contains(cardText, want) {
			t.Errorf("the people reached card in Chinese lacks %q: %q", want, cardText)
		}
	}
	if got := stepCounts(); got["identified"] != "2" || got["converted"] != "2" {
		t.Errorf("the steps in Chinese: %v", got)
	}
	if status := text("campaign-status"); status != "进行中" {
		t.Errorf("the campaign's status in Chinese is %q, want 进行中", status)
	}
	if all := text("campaign-all-touchpoints"); all != "该活动的全部触点" {
		t.Errorf("the link to all its touchpoints in Chinese is %q", all)
	}

	do(t, ctx, "phone width",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(tid("campaign-title")),
		chromedp.WaitVisible(tid("people-reached-total")),
		chromedp.WaitVisible(tid("campaign-touchpoint")),
	)
	if over := read(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); over {
		t.Error("the campaign's page is wider than a phone")
	}
}
