package app

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// A marketer looks for people. Ada opens the shop's app, signs up with her name, email and phone, looks at 60
// products, subscribes with the email she gave on her tablet, and is seen by a store's staff at a poster; Grace
// signs up too; Lin buys in January with only her member id. The app's profile processor makes them three
// people. On the people screen, searching by the start of Ada's email finds her alone, and so does the start
// of Grace's name; Ada's page shows her identities grouped by type, her lifecycle, the poster she touched, and
// one timeline of her events, the latest 50 first, then the rest with "Load more", down to the page view she
// started with and the stage changes between; the merge of her tablet's profile is in her history, and a link
// to that profile leads to her. Lin's lifecycle shows her converted and not connected. It reads well at phone
// width and in Chinese.
func TestBrowserPeople(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	ctx := context.Background()

	// An app's events: a website's from Go's HTTP client would be a bot's, which is never a person.
	src, err := s.app.sources.Create(ctx, "Shop app", collect.KindApp)
	if err != nil {
		t.Fatal(err)
	}
	track := func(call, body string) { postTracking(t, s.base, src.WriteKey, call, body, http.StatusOK) }
	track("page", `{"anonymousId":"a1","name":"Spring collection"}`)
	track("identify", `{"anonymousId":"a1","traits":{"name":"Ada Lovelace","email":"Ada@Example.com","phone":"139 1234 5678","city":"Shanghai"}}`)
	var batch []string
	for i := range 60 {
		batch = append(batch, fmt.Sprintf(`{"type":"track","anonymousId":"a1","event":"Product Viewed","properties":{"sku":"SKU-%03d"}}`, i))
	}
	track("batch", `{"batch":[`+strings.Join(batch, ",")+`]}`)
	// Ada on her tablet gives another email, then subscribes from her phone with it: one person, merged.
	track("identify", `{"anonymousId":"a3","traits":{"email":"countess@example.org"}}`)
	track("track", `{"anonymousId":"a1","event":"Newsletter Subscribed","context":{"traits":{"email":"countess@example.org"}}}`)
	// Lin, in January, buys with her member id and gives no way to reach her: converted, not connected.
	track("identify", `{"userId":"lin-0042","traits":{"name":"Lin Wei"},"timestamp":"2026-01-10T09:00:00Z"}`)
	track("track", `{"userId":"lin-0042","event":"Order Completed","properties":{"total":399},"timestamp":"2026-01-10T09:05:00Z"}`)
	track("identify", `{"anonymousId":"g1","traits":{"name":"Grace Hopper","email":"grace@example.com"}}`)
	// Bo browses a product, then days later signs up with his email: activated first, identified and
	// connected after, with no change of stage to date those.
	track("track", `{"anonymousId":"b1","event":"Product Viewed","timestamp":"2026-02-01T10:00:00Z"}`)
	track("identify", `{"anonymousId":"b1","traits":{"name":"Bo Chen","email":"bo@example.com"},"timestamp":"2026-02-03T08:30:00Z"}`)

	// Staff at the Jing'an store record Ada at the poster, through the admin API.
	tp, err := s.app.touch.CreateTouchpoint(ctx, touchpoint.Touchpoint{Name: "Jing'an window poster", Channel: touchpoint.ChannelPoster,
		DestinationURL: "https://shop.example/spring"})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := s.app.auth.CreateAPIKey(ctx, "staff app", hearth.RoleMarketer)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"touchpoint_id": tp.ID, "email": "ada@example.com"})
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/touches", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("record a touch: %s", resp.Status)
	}

	// The app's profile processor follows the log about once a second: wait until it has read all 70 events.
	deadline := time.Now().Add(20 * time.Second)
	for {
		off, err := s.app.db.ConsumerOffset(ctx, profile.Consumer)
		if err != nil {
			t.Fatal(err)
		}
		if off >= 70 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the profile processor read %d of 70 events in 20 s", off)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ada, err := s.app.db.ProfileByIdentifier(ctx, identity.Email, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	grace, err := s.app.db.ProfileByIdentifier(ctx, identity.Email, "grace@example.com")
	if err != nil {
		t.Fatal(err)
	}

	bctx := browser(t)
	signIn(t, bctx, s.base, "/people", "admin@example.com", "a long admin password", tid("people-table"))
	row := func(id string) chromedp.CSS {
		return chromedp.CSS(`[data-testid="person-row"][data-profile-id="` + id + `"]`)
	}
	if n := count(t, bctx, `[data-testid="person-row"]`); n != 4 {
		t.Errorf("the people screen lists %d people at first, want 4", n)
	}
	// Grace signed up last, but Ada was seen last: the touch at the poster.
	if first := read(t, bctx, "first row", chromedp.Attributes(tid("person-row")))["data-profile-id"]; first != ada.ID {
		t.Errorf("the first row is %s, want Ada (%s), the most recently active", first, ada.ID)
	}

	onlyRow := func(id string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`(() => { const rows = document.querySelectorAll('[data-testid="person-row"]');
			return rows.length === 1 && rows[0].dataset.profileId === '` + id + `' })()`)
	}
	do(t, bctx, "search by the start of an email",
		chromedp.SendKeys(tid("people-search"), "ada@ex"),
		onlyRow(ada.ID),
	)
	if text := read(t, bctx, "Ada's row", chromedp.Text(row(ada.ID))); !strings.Contains(text, "Ada Lovelace") ||
		!strings.Contains(text, "ada@example.com") || !strings.Contains(text, "Activated") {
		t.Errorf("Ada's row says %q", text)
	}
	// Empties the search box as a person does, so that the page hears it.
	clearSearch := func() {
		read(t, bctx, "clear the search", chromedp.Evaluate[bool](`(() => { const el = document.querySelector('[data-testid="people-search"]');
			el.value = ''; el.dispatchEvent(new Event('input')); return true })()`))
	}
	clearSearch()
	do(t, bctx, "search by the start of a name",
		chromedp.SendKeys(tid("people-search"), "grace h"),
		onlyRow(grace.ID),
	)
	clearSearch()
	do(t, bctx, "search for no one",
		chromedp.SendKeys(tid("people-search"), "zz"),
		chromedp.WaitVisible(tid("people-none")),
	)
	clearSearch()
	do(t, bctx, "search by the start of a phone number, without the country code",
		chromedp.SendKeys(tid("people-search"), "139 123"),
		onlyRow(ada.ID),
	)

	do(t, bctx, "open Ada",
		chromedp.Click(chromedp.CSS(`[data-testid="person-row"][data-profile-id="`+ada.ID+`"] [data-testid="person-link"]`)),
		chromedp.WaitVisible(tid("person-title")),
		chromedp.WaitVisible(tid("timeline-more")),
	)
	if title := read(t, bctx, "title", chromedp.Text(tid("person-title"))); title != "Ada Lovelace" {
		t.Errorf("the person's title is %q", title)
	}
	if stage := read(t, bctx, "stage", chromedp.Attributes(tid("person-stage")))["data-stage"]; stage != "activated" {
		t.Errorf("Ada's stage is %q, want activated", stage)
	}
	if reached := count(t, bctx, `[data-testid="lifecycle"] [data-reached="true"]`); reached != 3 {
		t.Errorf("the lifecycle shows %d steps reached, want 3 (identify, connect, activate)", reached)
	}
	for typ, want := range map[string]string{"email": "ada@example.com", "phone": "+8613912345678", "anonymous_id": "a1"} {
		got := read(t, bctx, typ, chromedp.Text(chromedp.CSS(`[data-testid="identity-group"][data-type="`+typ+`"]`)))
		if !strings.Contains(got, want) {
			t.Errorf("the %s identities say %q, want %s in them", typ, got, want)
		}
	}
	if city := read(t, bctx, "trait", chromedp.Text(chromedp.CSS(`[data-testid="trait"][data-name="city"]`))); !strings.Contains(city, "Shanghai") ||
		!strings.Contains(city, "Shop app") {
		t.Errorf("the city trait says %q, want its value and its source", city)
	}
	if touch := read(t, bctx, "touchpoints", chromedp.Text(tid("touches"))); !strings.Contains(touch, "Jing'an window poster") {
		t.Errorf("the touchpoints card says %q", touch)
	}
	if first := read(t, bctx, "first touch", chromedp.Text(tid("person-first-touch"))); !strings.Contains(first, "Jing'an window poster") {
		t.Errorf("the first touch says %q", first)
	}

	events := `[data-testid="timeline-item"]:not([data-kind="stage"])`
	if n := count(t, bctx, events); n != 50 {
		t.Errorf("the timeline shows %d events at first, want 50", n)
	}
	if kind := read(t, bctx, "newest", chromedp.Attributes(tid("timeline-item")))["data-kind"]; kind != "touch" {
		t.Errorf("the newest row is a %s, want the touch", kind)
	}
	do(t, bctx, "load the rest of the timeline",
		chromedp.Click(tid("timeline-more")),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('`+events+`').length === 65`),
	)
	if n := count(t, bctx, `[data-testid="timeline-more"]`); n != 0 {
		t.Error(`"Load more" is still there with the whole timeline shown`)
	}
	if kind := read(t, bctx, "oldest", chromedp.Evaluate[string](`[...document.querySelectorAll('[data-testid="timeline-item"]')].pop().dataset.kind`)); kind != "page" {
		t.Errorf("the oldest row is a %s, want the page view", kind)
	}
	// The stage changes sit above the events that caused them: connected by the identify, activated by the
	// first product view.
	if stages := read(t, bctx, "stage rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="timeline-item"]')]
		.flatMap((el, i, all) => el.dataset.kind === 'stage' ? [all[i + 1].dataset.kind] : [])`)); strings.Join(stages, ",") != "track,identify" {
		t.Errorf("the stage changes sit above %v, want the track and the identify", stages)
	}
	do(t, bctx, "open an event",
		chromedp.Click(chromedp.CSS(`[data-testid="timeline-item"][data-kind="touch"] [data-testid="timeline-event"]`)),
		chromedp.WaitVisible(tid("timeline-payload")),
	)
	if payload := read(t, bctx, "payload", chromedp.Text(tid("timeline-payload"))); !strings.Contains(payload, `"touchpoint": "Jing'an window poster"`) {
		t.Errorf("the touch's payload: %q", payload)
	}

	tablet := profile.ProfileID(63)
	if from := read(t, bctx, "merge", chromedp.Attributes(tid("merge-row")))["data-from"]; from != tablet {
		t.Errorf("the merge history names %s, want the tablet's profile %s", from, tablet)
	}
	if merge := read(t, bctx, "merge", chromedp.Text(tid("merge-row"))); !strings.Contains(merge, "countess@example.org") || !strings.Contains(merge, "#64") {
		t.Errorf("the merge says %q, want the email and the event that merged", merge)
	}
	do(t, bctx, "a link to the tablet's profile",
		chromedp.Navigate(s.base+"/console/people/"+tablet),
		chromedp.WaitVisible(tid("person-absorbed")),
	)
	if title, url := read(t, bctx, "title", chromedp.Text(tid("person-title"))), read(t, bctx, "location", chromedp.Location()); title != "Ada Lovelace" ||
		!strings.Contains(url, "/console/people/"+ada.ID) {
		t.Errorf("the tablet's profile shows %q at %s, want Ada at her own address", title, url)
	}

	// The admin splits the tablet off again: its email goes back with it, Ada keeps her own.
	do(t, bctx, "unmerge the tablet",
		chromedp.Click(tid("unmerge")),
		chromedp.WaitVisible(tid("confirm-dialog")),
		chromedp.Click(tid("confirm-ok")),
		chromedp.WaitVisible(tid("merges-none")),
		chromedp.WaitVisible(tid("unmerged")),
	)
	if ids := read(t, bctx, "Ada's identities", chromedp.Text(tid("identities"))); strings.Contains(ids, "countess@example.org") {
		t.Errorf("after the unmerge Ada still holds the tablet's email: %q", ids)
	}
	do(t, bctx, "open the tablet's person",
		chromedp.Click(chromedp.CSS(`[data-testid="unmerged"] a`)),
		chromedp.WaitVisible(tid("merges-none")),
	)
	if ids, url := read(t, bctx, "tablet identities", chromedp.Text(tid("identities"))), read(t, bctx, "location", chromedp.Location()); !strings.Contains(ids, "countess@example.org") ||
		!strings.Contains(url, "/console/people/"+tablet) {
		t.Errorf("the tablet's person at %s holds %q, want the countess email", url, ids)
	}

	// Lin's lifecycle shows each step's rule on its own: she converted without ever being reachable.
	lin, err := s.app.db.ProfileByIdentifier(ctx, identity.UserID, "lin-0042")
	if err != nil {
		t.Fatal(err)
	}
	do(t, bctx, "open Lin", chromedp.Navigate(s.base+"/console/people/"+lin.ID), chromedp.WaitVisible(tid("lifecycle")))
	steps := read(t, bctx, "Lin's steps", chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll(
		'[data-testid="lifecycle"] [data-step]')].map((el) => [el.dataset.step, el.dataset.reached]))`))
	if want := map[string]string{"identified": "true", "connected": "false", "activated": "false", "converted": "true"}; fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("Lin's lifecycle steps reached: %v, want %v", steps, want)
	}
	if when := read(t, bctx, "Lin's conversion", chromedp.Attributes(chromedp.CSS(`[data-step="converted"] time`)))["datetime"]; !strings.HasPrefix(when, "2026-01-10T09:05:00") {
		t.Errorf("Lin's conversion is dated %q, want her order's time", when)
	}
	if when := read(t, bctx, "Lin's identification", chromedp.Attributes(chromedp.CSS(`[data-step="identified"] time`)))["datetime"]; !strings.HasPrefix(when, "2026-01-10T09:00:00") {
		t.Errorf("Lin is identified on %q, want her first identify's time", when)
	}

	// Bo's identify and connect are dated by the event that brought his email, though his stage (activated)
	// did not change then.
	bo, err := s.app.db.ProfileByIdentifier(ctx, identity.Email, "bo@example.com")
	if err != nil {
		t.Fatal(err)
	}
	do(t, bctx, "open Bo", chromedp.Navigate(s.base+"/console/people/"+bo.ID), chromedp.WaitVisible(tid("lifecycle")))
	for _, step := range []string{"identified", "connected"} {
		if when := read(t, bctx, "Bo's "+step, chromedp.Evaluate[string](`document.querySelector('[data-step="`+step+`"] time')?.dateTime ?? ''`)); !strings.HasPrefix(when, "2026-02-03T08:30:00") {
			t.Errorf("Bo's %s step is dated %q, want his sign-up's time", step, when)
		}
	}

	// The home screen's lifecycle: at each step, the people who meet that step's rule, whatever the steps
	// before, five since the unmerge. All five are identified; all but Lin, who bought with only her member id,
	// are reachable (the tablet's countess too); Ada and Bo viewed products (the countess's newsletter is no
	// activation, and Lin only bought); Lin alone converted. Everyone meets some step.
	do(t, bctx, "home", chromedp.Navigate(s.base+"/console/"), chromedp.WaitVisible(tid("lifecycle-funnel-step")))
	reached := read(t, bctx, "the lifecycle's steps", chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll(
		'[data-testid="lifecycle-funnel-step"]')].map((el) => [el.dataset.step, el.dataset.reached]))`))
	if want := map[string]string{"identified": "5", "connected": "4", "activated": "2", "converted": "1"}; fmt.Sprint(reached) != fmt.Sprint(want) {
		t.Errorf("the home screen's lifecycle: %v, want %v", reached, want)
	}
	if text := read(t, bctx, "activated", chromedp.Text(chromedp.CSS(`[data-testid="lifecycle-funnel-step"][data-step="activated"]`))); !strings.Contains(text, "40%") ||
		strings.Contains(text, "step before") {
		t.Errorf("the activated step says %q, want 40%% of everyone and no share of the step before", text)
	}
	if text := read(t, bctx, "the lifecycle's text", chromedp.Text(chromedp.CSS(`[data-testid="lifecycle-funnel"] .card-head p`))); !strings.Contains(text, "whether or not they met the steps before") {
		t.Errorf("the lifecycle's text says %q", text)
	}
	if text := read(t, bctx, "no step", chromedp.Text(tid("lifecycle-funnel-anonymous"))); !strings.HasPrefix(text, "At no step yet: 0 (0%)") {
		t.Errorf("the lifecycle's foot line says %q", text)
	}
	// A step's people become a segment: the editor opens on the condition, untouched, counting the connected
	// (four: by stage, "at least connected", Lin would be a fifth).
	do(t, bctx, "a segment of the connected",
		chromedp.Click(chromedp.CSS(`[data-step="connected"] [data-testid="lifecycle-funnel-segment"]`)),
		chromedp.WaitVisible(tid("segment-rule")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="segment-count-value"]')?.textContent === '4'`),
	)
	condition := read(t, bctx, "the condition", chromedp.Evaluate[[]string](`['rb-type', 'rb-stage-op', 'rb-stage']
		.map((id) => document.querySelector('[data-testid="' + id + '"]').value)`))
	if want := []string{"stage", "reached", "connected"}; fmt.Sprint(condition) != fmt.Sprint(want) {
		t.Errorf("the segment from the lifecycle starts with type, op and step %v, want %v", condition, want)
	}
	unsaved := `document.querySelector('[data-testid="segment-savebar"]').classList.contains('dirty')`
	if read(t, bctx, "unsaved", chromedp.Evaluate[bool](unsaved)) {
		t.Error("the segment from the lifecycle counts as an unsaved change before any edit")
	}
	if text := read(t, bctx, "the condition's sentence", chromedp.Text(tid("rb-sentence"))); !strings.Contains(text, "has reached the Connect step") {
		t.Errorf("the condition says %q", text)
	}
	do(t, bctx, "the segment's name", chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="segment-name"]').value === 'Connected people'`))
	// Who the count is: the four people it matches, not Lin, each a link to their page.
	shown := read(t, bctx, "the people shown", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="segment-sample-person"]')]
		.map((el) => el.dataset.profileId)`))
	if len(shown) != 4 || slices.Contains(shown, lin.ID) || !slices.Contains(shown, ada.ID) {
		t.Errorf("the count shows %v, want the four connected people, Ada among them and not Lin (%s)", shown, lin.ID)
	}
	// Anonymous is no step: choosing "has reached" with it picks the first step, which everyone has reached.
	pick := func(testid, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`(() => { const el = document.querySelector('[data-testid="` + testid + `"]');
			el.value = '` + value + `'; el.dispatchEvent(new Event('change', { bubbles: true })); return el.value === '` + value + `' })()`)
	}
	do(t, bctx, "reached, from anonymous",
		pick("rb-stage-op", "is"),
		pick("rb-stage", "anonymous"),
		pick("rb-stage-op", "reached"),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="rb-stage"]').value === 'identified' &&
			![...document.querySelectorAll('[data-testid="rb-stage"] option')].some((o) => o.value === 'anonymous')`),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="segment-count-value"]')?.textContent === '5'`),
		// Back to the step's rule: nothing to save, so the page is left without asking.
		pick("rb-stage", "connected"),
		chromedp.Poll[chromedp.Void](`!`+unsaved),
	)
	do(t, bctx, "from the count to a person",
		chromedp.Click(chromedp.CSS(`[data-testid="segment-sample-person"][data-profile-id="`+ada.ID+`"]`)),
		chromedp.WaitVisible(tid("person-title")),
		chromedp.Poll[chromedp.Void](`location.pathname.endsWith('/people/`+ada.ID+`')`),
	)
	do(t, bctx, "from the lifecycle to the people",
		chromedp.Navigate(s.base+"/console/"),
		chromedp.WaitVisible(tid("lifecycle-funnel-step")),
		chromedp.Click(chromedp.CSS(`[data-testid="lifecycle-funnel"] .card-head a`)),
		chromedp.WaitVisible(tid("people-table")),
	)
	// A step's people are listed too: Lin alone converted; the connected are everyone but her; a search
	// narrows the step's people.
	rows := func(n int) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelectorAll('[data-testid="person-row"]').length === %d`, n))
	}
	do(t, bctx, "the converted people",
		chromedp.Navigate(s.base+"/console/"),
		chromedp.WaitVisible(tid("lifecycle-funnel-step")),
		chromedp.Click(chromedp.CSS(`[data-step="converted"] [data-testid="lifecycle-funnel-people"]`)),
		onlyRow(lin.ID),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="people-step"]').value === 'converted' && location.search === '?step=converted'`),
	)
	do(t, bctx, "the connected people", pick("people-step", "connected"), rows(4),
		chromedp.Poll[chromedp.Void](`![...document.querySelectorAll('[data-testid="person-row"]')].some((el) => el.dataset.profileId === '`+lin.ID+`')`))
	do(t, bctx, "connected, by name", chromedp.SendKeys(tid("people-search"), "lin"), chromedp.WaitVisible(tid("people-none")))
	if text := read(t, bctx, "no one", chromedp.Text(tid("people-none"))); !strings.Contains(text, "Clear search") {
		t.Errorf("a search of a step that finds no one says %q", text)
	}
	do(t, bctx, "everyone again", chromedp.Click(chromedp.CSS(`[data-testid="people-none"] button`)), rows(5),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="people-step"]').value === '' && location.search === ''`))

	do(t, bctx, "back to Ada", chromedp.Navigate(s.base+"/console/people/"+ada.ID), chromedp.WaitVisible(tid("timeline-more")))

	do(t, bctx, "phone width",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(tid("person-title")),
		chromedp.WaitVisible(tid("timeline-more")),
	)
	if over := read(t, bctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); over {
		t.Error("the person's page is wider than a phone")
	}
	do(t, bctx, "desktop width, in Chinese",
		chromedp.EmulateViewport(1280, 800),
		chromedp.Click(tid("user-menu")),
		chromedp.WaitVisible(tid("lang-zh-CN")),
		chromedp.Click(tid("lang-zh-CN")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"]`)), // once its messages are loaded
		chromedp.Click(tid("nav-people")),
		chromedp.WaitVisible(tid("people-table")),
	)
	if h := read(t, bctx, "heading", chromedp.Text(tid("people-title"))); h != "客户" {
		t.Errorf("the people screen in Chinese is headed %q, want 客户", h)
	}
	if stage := read(t, bctx, "stage", chromedp.Text(chromedp.CSS(`[data-testid="person-row"][data-profile-id="`+ada.ID+`"] [data-testid="person-row-stage"]`))); stage != "已激活" {
		t.Errorf("Ada's stage in Chinese is %q, want 已激活", stage)
	}
	do(t, bctx, "home, in Chinese", chromedp.Click(tid("nav-home")), chromedp.WaitVisible(tid("lifecycle-funnel-step")))
	if text := read(t, bctx, "the lifecycle in Chinese", chromedp.Text(tid("lifecycle-funnel"))); !strings.Contains(text, "生命周期") ||
		!strings.Contains(text, "不论是否满足前面的步骤") || !strings.Contains(text, "0 人（0%）尚未达到任何一步") {
		t.Errorf("the home screen's lifecycle in Chinese says %q", text)
	}
}
