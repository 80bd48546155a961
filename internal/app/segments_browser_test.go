package app

import (
	"context"
	"database/sql"
	"encoding/csv"
	"net/http"
	"os"
	"path/filepath"
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

// A marketer builds a segment without writing JSON. Five people signed up in the shop's app: Ada, Bo, Mei and
// Grace in Shanghai, Lin in Beijing; all but Grace completed an order, and staff recorded Mei at the Jing'an
// poster. On Segments, New segment, the builder's first row says city is Shanghai (the live count: 4), a second
// row that they did Order Completed (3), a third that they touched the poster (1, Mei), then Exclude on it (2:
// Ada and Bo). Saved, the segment's page shows 2 people, the rule in words and Ada and Bo as members; Ada's page
// lists the segment and her timeline shows her entering it; the CSV export holds both with their emails. A list
// segment takes a CSV file: two good lines and one bad, which the page names by its line; its size follows the
// list. Deleting a segment another one uses is refused with the server's reason. At phone width, the editor
// opens the saved rule whole, every row complete, nothing wider than the screen; making the segment use the one
// that uses it is refused on save, in the server's words, and the editor stays.
func TestBrowserSegments(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	bg := context.Background()

	src, err := s.app.sources.Create(bg, "Shop app", collect.KindApp)
	if err != nil {
		t.Fatal(err)
	}
	track := func(call, body string) { postTracking(t, s.base, src.WriteKey, call, body, http.StatusOK) }
	track("identify", `{"userId":"ada","traits":{"name":"Ada Lovelace","email":"ada@example.com","city":"Shanghai"}}`)
	track("identify", `{"userId":"bo","traits":{"name":"Bo Li","email":"bo@example.com","city":"Shanghai"}}`)
	track("identify", `{"userId":"mei","traits":{"name":"Mei Chen","phone":"139 1234 5678","city":"Shanghai"}}`)
	track("identify", `{"userId":"grace","traits":{"name":"Grace Hopper","email":"grace@example.com","city":"Shanghai"}}`)
	track("identify", `{"userId":"lin","traits":{"name":"Lin Wei","email":"lin@example.com","city":"Beijing"}}`)
	for _, who := range []string{"ada", "ada", "bo", "mei", "lin"} {
		track("track", `{"userId":"`+who+`","event":"Order Completed","properties":{"amount":600}}`)
	}
	tp, err := s.app.touch.CreateTouchpoint(bg, touchpoint.Touchpoint{Name: "Jing'an window poster", Channel: touchpoint.ChannelPoster,
		DestinationURL: "https://shop.example/spring"})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := s.app.auth.CreateAPIKey(bg, "staff app", hearth.RoleMarketer)
	if err != nil {
		t.Fatal(err)
	}
	if code := s.call(t, key, "POST", "/api/v1/touches", map[string]string{"touchpoint_id": tp.ID, "phone": "13912345678"}, nil); code != http.StatusCreated {
		t.Fatalf("record Mei's touch: %d", code)
	}

	// The profile processor follows the log about once a second: wait until it has read all 11 events.
	deadline := time.Now().Add(20 * time.Second)
	for {
		off, err := s.app.db.ConsumerOffset(bg, profile.Consumer)
		if err != nil {
			t.Fatal(err)
		}
		if off >= 11 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the profile processor read %d of 11 events in 20 s", off)
		}
		time.Sleep(100 * time.Millisecond)
	}
	person := func(email string) string {
		t.Helper()
		p, err := s.app.db.ProfileByIdentifier(bg, identity.Email, email)
		if err != nil {
			t.Fatalf("the profile of %s: %v", email, err)
		}
		return p.ID
	}
	ada, bo := person("ada@example.com"), person("bo@example.com")

	ctx := browser(t)
	signIn(t, ctx, s.base, "/", "admin@example.com", "a long admin password", tid("home-title"))
	do(t, ctx, "open Segments from the navigation: none yet",
		chromedp.Click(tid("nav-segments")),
		chromedp.WaitVisible(tid("segments-empty")),
	)

	// item is a selector within the n-th row (from 0) of the builder's top group.
	item := func(n, testid string) chromedp.CSS {
		return chromedp.CSS(`[data-testid="rb-group"][data-depth="0"] > .rb-items > [data-testid="rb-item"][data-index="` + n + `"] [data-testid="` + testid + `"]`)
	}
	// pick chooses an option of a select as a person does: the value changes, and the page hears it.
	pick := func(sel chromedp.CSS, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`(() => { const el = document.querySelector(` + "`" + string(sel) + "`" + `);
			if (!el) return false; el.value = '` + value + `'; el.dispatchEvent(new Event('change', { bubbles: true })); return el.value === '` + value + `' })()`)
	}
	// liveCount waits for the editor's live count to settle on want.
	liveCount := func(step string, want string) {
		t.Helper()
		waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		_, err := chromedp.Run(waitCtx, chromedp.Poll[bool](`(() => { const c = document.querySelector('[data-testid="segment-count"]');
			return !!c && c.dataset.state === 'done' && c.dataset.size === '`+want+`' })()`))
		if err != nil {
			got := read(t, ctx, "count", chromedp.Evaluate[map[string]string](`(() => { const c = document.querySelector('[data-testid="segment-count"]');
				return { state: c?.dataset.state ?? 'missing', size: c?.dataset.size ?? '', text: c?.parentElement?.parentElement?.innerText ?? '' } })()`))
			screenshot(t, ctx)
			t.Fatalf("%s: the live count is %s (%s), want %s: %q", step, got["size"], got["state"], want, got["text"])
		}
	}

	do(t, ctx, "New segment",
		chromedp.Click(tid("segments-new")),
		chromedp.WaitVisible(tid("segment-editor")),
		chromedp.WaitVisible(item("0", "rb-trait-name")),
	)
	if state := read(t, ctx, "count", chromedp.Attributes(tid("segment-count")))["data-state"]; state != "idle" {
		t.Errorf("with no condition filled in the count is %s, want idle", state)
	}
	do(t, ctx, "name it, and say the city is Shanghai",
		chromedp.SendKeys(tid("segment-name"), "Shanghai buyers"),
		chromedp.SendKeys(item("0", "rb-trait-name"), "city"),
		chromedp.SendKeys(item("0", "rb-value"), "Shanghai"),
	)
	liveCount("city is Shanghai", "4")
	if sentence := read(t, ctx, "row 0", chromedp.Text(item("0", "rb-sentence"))); sentence != "city is “Shanghai”" {
		t.Errorf("the first row reads %q", sentence)
	}

	do(t, ctx, "a second row: they did Order Completed",
		chromedp.Click(chromedp.CSS(`[data-testid="rb-group"][data-depth="0"] > .rb-group-foot [data-testid="rb-add"]`)),
		chromedp.WaitVisible(item("1", "rb-type")),
		pick(item("1", "rb-type"), "event"),
		chromedp.WaitVisible(item("1", "rb-event-name")),
	)
	// While the row lacks its event's name it is left out of the count and says so.
	if lacking := read(t, ctx, "row 1", chromedp.Text(item("1", "rb-lacking"))); !strings.Contains(lacking, "Name the event") {
		t.Errorf("the empty event row says %q", lacking)
	}
	do(t, ctx, "name the event", chromedp.SendKeys(item("1", "rb-event-name"), "Order Completed"))
	liveCount("city is Shanghai and did Order Completed", "3")

	do(t, ctx, "a third row: they touched the poster",
		chromedp.Click(chromedp.CSS(`[data-testid="rb-group"][data-depth="0"] > .rb-group-foot [data-testid="rb-add"]`)),
		chromedp.WaitVisible(item("2", "rb-type")),
		pick(item("2", "rb-type"), "touched"),
		pick(item("2", "rb-touchpoint"), tp.ID),
	)
	liveCount("… and touched the poster", "1")
	do(t, ctx, "exclude the people who touched it", chromedp.Click(item("2", "rb-not")))
	liveCount("… and not touched the poster", "2")
	if sentence := read(t, ctx, "row 2", chromedp.Text(item("2", "rb-sentence"))); sentence != "has not touched Jing'an window poster" {
		t.Errorf("the excluded row reads %q", sentence)
	}

	do(t, ctx, "save: the segment's page",
		chromedp.Click(tid("segment-save")),
		chromedp.WaitVisible(tid("segment-title")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="segment-status"][data-status="ready"]`)),
		chromedp.WaitVisible(tid("members-table")),
	)
	segURL := read(t, ctx, "location", chromedp.Location())
	segID := segURL[strings.LastIndex(segURL, "/")+1:]
	if title := read(t, ctx, "title", chromedp.Text(tid("segment-title"))); title != "Shanghai buyers" {
		t.Errorf("the segment's page is titled %q", title)
	}
	if size := read(t, ctx, "size", chromedp.Text(tid("segment-size"))); size != "2" {
		t.Errorf("the segment's size is %q, want 2", size)
	}
	members := read(t, ctx, "members", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid="member-row"]')].map(r => r.dataset.profileId)`))
	slices.Sort(members)
	if want := []string{ada, bo}; !slices.Equal(members, slices.Sorted(slices.Values(want))) {
		t.Errorf("members %v, want Ada and Bo %v", members, want)
	}
	rule := read(t, ctx, "rule", chromedp.Text(tid("segment-rule")))
	for _, want := range []string{"All of these", "city is “Shanghai”", "performed Order Completed at least once", "has not touched Jing'an window poster"} {
		if !strings.Contains(rule, want) {
			t.Errorf("the rule in words lacks %q: %q", want, rule)
		}
	}
	if n := read(t, ctx, "chart", chromedp.Attributes(tid("segment-chart")))["data-points"]; n == "" || n == "0" {
		t.Errorf("the growth chart has %q points", n)
	}
	// Pointing at the chart's right end shows the size now.
	do(t, ctx, "hover the growth chart",
		chromedp.Poll[chromedp.Void](`(() => { const svg = document.querySelector('[data-testid="segment-chart"] svg'); if (!svg) return false;
			svg.scrollIntoView({ block: 'center' }); const r = svg.getBoundingClientRect();
			svg.dispatchEvent(new PointerEvent('pointermove', { clientX: r.right - 2, clientY: r.top + r.height / 2, bubbles: true }));
			return !!document.querySelector('[data-testid="chart-tooltip"]') })()`),
	)
	if tip := read(t, ctx, "tooltip", chromedp.Text(chromedp.CSS(`[data-testid="chart-tooltip"] strong`))); tip != "2" {
		t.Errorf("the chart's tooltip at its end says %q, want 2", tip)
	}
	do(t, ctx, "the last 7 days",
		chromedp.Click(tid("growth-days-7")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="growth-days-7"][aria-pressed="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="segment-chart"] svg`)),
	)

	// The export is a link the session cookie authorises, as the numbered codes' ZIP is.
	href := read(t, ctx, "export link", chromedp.Attributes(tid("segment-export")))["href"]
	if href != "/api/v1/segments/"+segID+"/members.csv" {
		t.Errorf("the export link is %q", href)
	}
	export := read(t, ctx, "the export", chromedp.Evaluate[map[string]string](`fetch(document.querySelector('[data-testid="segment-export"]').href)
		.then(async r => ({ status: String(r.status), type: r.headers.get('Content-Type'), disposition: r.headers.get('Content-Disposition'), body: await r.text() }))`,
		chromedp.EvalAwaitPromise))
	if export["status"] != "200" || !strings.HasPrefix(export["type"], "text/csv") || !strings.HasPrefix(export["disposition"], "attachment;") {
		t.Errorf("following the export link: %s %s %s", export["status"], export["type"], export["disposition"])
	}
	records, err := csv.NewReader(strings.NewReader(export["body"])).ReadAll()
	if err != nil || len(records) != 3 || strings.Join(records[0], ",") != "profile_id,name,stage,email,phone,since" {
		t.Fatalf("the export is %q (%v), want a header and 2 members", export["body"], err)
	}
	emails := []string{records[1][3], records[2][3]}
	slices.Sort(emails)
	if !slices.Equal(emails, []string{"ada@example.com", "bo@example.com"}) {
		t.Errorf("the export holds %v, want Ada's and Bo's emails", emails)
	}

	do(t, ctx, "open Ada from the members",
		chromedp.Click(chromedp.CSS(`[data-testid="member-row"][data-profile-id="`+ada+`"] [data-testid="member-link"]`)),
		chromedp.WaitVisible(tid("person-title")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="person-segment"][data-segment-id="`+segID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="timeline-item"][data-kind="segment"]`)),
	)
	if entered := read(t, ctx, "timeline", chromedp.Text(chromedp.CSS(`[data-testid="timeline-item"][data-kind="segment"]`))); !strings.Contains(entered, "Entered Shanghai buyers") {
		t.Errorf("Ada's timeline says %q, want her entering the segment", entered)
	}
	do(t, ctx, "the segment from Ada's page",
		chromedp.Click(chromedp.CSS(`[data-testid="person-segment"][data-segment-id="`+segID+`"] a`)),
		chromedp.WaitVisible(tid("segment-title")),
	)

	// A list segment: an email, a phone number, and a line that is neither.
	list := filepath.Join(t.TempDir(), "trade-show.csv")
	if err := os.WriteFile(list, []byte("email,phone\nada@example.com,\n,139 1234 5678\nhello,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "New list",
		chromedp.Click(tid("segment-back")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="segment-row"][data-segment-id="`+segID+`"]`)),
		// Its row draws the segment's size over the last 30 days once it is in view.
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="segment-row"][data-segment-id="`+segID+`"] [data-testid="sparkline"][data-loaded="true"] svg`)),
		chromedp.Click(tid("segments-new-list")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="segment-editor"][data-kind="list"]`)),
		chromedp.SendKeys(tid("segment-name"), "Trade show leads"),
		chromedp.Click(tid("segment-save")),
		chromedp.WaitVisible(tid("segment-list")),
	)
	if size := read(t, ctx, "size", chromedp.Text(tid("segment-size"))); size != "0" {
		t.Errorf("a new list segment holds %q people", size)
	}
	do(t, ctx, "upload the list",
		chromedp.SetUploadFiles(tid("list-file"), []string{list}),
		chromedp.WaitVisible(tid("list-file-name")),
		chromedp.Click(tid("list-submit")),
		chromedp.WaitVisible(tid("list-result")),
	)
	if items := read(t, ctx, "items", chromedp.Text(tid("list-items"))); items != "2" {
		t.Errorf("the upload read %q items, want 2", items)
	}
	if line := read(t, ctx, "rejected", chromedp.Attributes(tid("list-rejected-row")))["data-line"]; line != "4" {
		t.Errorf("the rejected line is %q, want 4", line)
	}
	if reason := read(t, ctx, "reason", chromedp.Text(chromedp.CSS(`[data-testid="list-rejected-row"] .reason-cell`))); !strings.Contains(reason, "email address") {
		t.Errorf("line 4 was rejected because %q", reason)
	}
	do(t, ctx, "the list segment holds Ada and Mei",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="segment-size"]').dataset.size === '2'`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid="member-row"]').length === 2`),
	)

	// Another segment uses the first: deleting the first is refused with the server's reason.
	var other struct {
		ID string `json:"id"`
	}
	if code := s.call(t, key, "POST", "/api/v1/segments", map[string]any{"name": "Buyers not at the trade show",
		"rule": map[string]any{"and": []any{map[string]any{"segment": map[string]string{"id": segID}}}}}, &other); code != http.StatusCreated {
		t.Fatalf("create a segment that uses the first: %d", code)
	}
	do(t, ctx, "deleting a segment in use is refused",
		chromedp.Navigate(s.base+"/console/segments/"+segID),
		chromedp.WaitVisible(tid("segment-delete")),
		chromedp.Click(tid("segment-delete")),
		chromedp.WaitVisible(tid("confirm-dialog")),
		chromedp.Click(tid("confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="confirm-dialog"] .alert-error`)),
	)
	if refusal := read(t, ctx, "refusal", chromedp.Text(chromedp.CSS(`[data-testid="confirm-dialog"] .alert-error`))); !strings.Contains(refusal, "Buyers not at the trade show") {
		t.Errorf("the refusal says %q, want the server's reason, naming the segment that uses it", refusal)
	}
	do(t, ctx, "cancel", chromedp.Click(tid("confirm-cancel")), chromedp.WaitNotVisible(tid("confirm-dialog")))

	do(t, ctx, "the editor at phone width opens the saved rule",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Navigate(s.base+"/console/segments/"+segID+"/edit"),
		chromedp.WaitVisible(item("2", "rb-not")),
		chromedp.WaitVisible(tid("segment-save")),
	)
	rows := read(t, ctx, "rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="rb-cond"]')]
		.map(r => r.dataset.type + ':' + r.dataset.complete + ':' + r.querySelector('[data-testid="rb-not"]').getAttribute('aria-pressed'))`))
	if want := []string{"trait:true:false", "event:true:false", "touched:true:true"}; !slices.Equal(rows, want) {
		t.Errorf("the editor shows the rows %v, want %v", rows, want)
	}
	if name := read(t, ctx, "name", chromedp.Value(tid("segment-name"))); name != "Shanghai buyers" {
		t.Errorf("the editor names the segment %q", name)
	}
	if over := read(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); over {
		t.Error("the segment editor is wider than a phone")
	}
	liveCount("the saved rule, at phone width", "2")

	// The first segment cannot use the one that uses it: saving says why, in the server's words.
	do(t, ctx, "use the segment that uses this one, and save",
		chromedp.Click(chromedp.CSS(`[data-testid="rb-group"][data-depth="0"] > .rb-group-foot [data-testid="rb-add"]`)),
		chromedp.WaitVisible(item("3", "rb-type")),
		pick(item("3", "rb-type"), "segment"),
		pick(item("3", "rb-segment"), other.ID),
		chromedp.WaitVisible(item("3", "rb-sentence")),
	)
	// Counting alone knows nothing of the segment being edited: the other segment holds this one's members.
	liveCount("… and in the segment that uses this one", "2")
	do(t, ctx, "save is refused",
		chromedp.Click(tid("segment-save")),
		chromedp.WaitVisible(tid("segment-error")),
	)
	if refusal := read(t, ctx, "refusal", chromedp.Text(tid("segment-error"))); !strings.Contains(refusal, "circle") {
		t.Errorf("saving a circle of segments says %q", refusal)
	}
	if url := read(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(url, "/segments/"+segID+"/edit") {
		t.Errorf("after a refused save the page is %s, want the editor still", url)
	}
}

// A segment whose evaluation fails again and again (here a fault the database raises on its members' rows)
// says so on its page and in the list, with the reason and when Hearth tries again, rather than "evaluating"
// for ever.
func TestBrowserSegmentEvaluationFails(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	bg := context.Background()
	src, err := s.app.sources.Create(bg, "Shop app", collect.KindApp)
	if err != nil {
		t.Fatal(err)
	}
	postTracking(t, s.base, src.WriteKey, "identify", `{"userId":"ada","traits":{"city":"Shanghai"}}`, http.StatusOK)
	caughtUpHead(t, s)
	db, err := sql.Open("sqlite", filepath.Join(cfg.Data, "hearth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER injected_fault BEFORE INSERT ON segment_members BEGIN SELECT RAISE(ABORT, 'injected fault'); END`); err != nil {
		t.Fatal(err)
	}
	key, _, err := s.app.auth.CreateAPIKey(bg, "ops", hearth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	var seg struct{ ID string }
	if code := s.call(t, key, "POST", "/api/v1/segments", map[string]any{"name": "Shanghai",
		"rule": map[string]any{"trait": map[string]any{"name": "city", "op": "equals", "value": "Shanghai"}}}, &seg); code != http.StatusCreated {
		t.Fatalf("create the segment: %d", code)
	}

	ctx := browser(t)
	signIn(t, ctx, s.base, "/segments/"+seg.ID, "admin@example.com", "a long admin password", tid("segment-title"))
	do(t, ctx, "the page says the evaluation fails",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="segment-evaluation-failed"]') !== null`, chromedp.WithPollingTimeout(20*time.Second)),
	)
	text := read(t, ctx, "failure", chromedp.Text(tid("segment-evaluation-failed")))
	for _, want := range []string{"could not work out", "failed 3 times running", "tries again in 1 minute", "injected fault"} {
		if !strings.Contains(text, want) {
			t.Errorf("failure notice %q lacks %q", text, want)
		}
	}
	if n := count(t, ctx, `[data-testid="segment-evaluating"]`); n != 0 {
		t.Error("the page also says the segment is being evaluated")
	}
	if n := count(t, ctx, `[data-testid="segment-status"][data-status="failing"]`); n != 1 {
		t.Error("the page's badge does not say the segment is retrying")
	}
	do(t, ctx, "the list says it too",
		chromedp.Click(tid("nav-segments")),
		chromedp.WaitVisible(tid("segment-row-status")),
	)
	if badge := read(t, ctx, "badge", chromedp.Text(tid("segment-row-status"))); strings.TrimSpace(badge) != "Retrying" {
		t.Errorf("list badge %q, want Retrying", badge)
	}
}
