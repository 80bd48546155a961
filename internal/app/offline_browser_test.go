package app

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// Store staff's touches reach Hearth two ways. A marketer opens Import offline touches from the touchpoints,
// uploads a CSV file with Chinese headers, one good row and one without anyone in it, read in UTC: the page
// says 1 imported, lists the bad row by its line with the reason, and names the column it ignored; the same
// file again imports nothing twice. On the touchpoint page a member of staff records one more touch by email,
// and the touch counter, the chart of touches over time, the people reached and the last 14 days in the
// touchpoints and the campaigns lists show all of them; the touchpoints list sorts by touches and by name.
func TestBrowserOfflineTouches(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	campaign, err := s.app.touch.CreateCampaign(context.Background(), touchpoint.Campaign{Name: "Store visits"})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := s.app.touch.CreateTouchpoint(context.Background(), touchpoint.Touchpoint{Name: "Jing'an counter",
		Channel: touchpoint.ChannelStore, DestinationURL: "https://shop.example/store", CampaignID: campaign.ID})
	if err != nil {
		t.Fatal(err)
	}
	// Another, newer, that nobody touches: the list puts it first, unless sorted by touches.
	other, err := s.app.touch.CreateTouchpoint(context.Background(), touchpoint.Touchpoint{Name: "Anting counter",
		Channel: touchpoint.ChannelStore, DestinationURL: "https://shop.example/store"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.app.touch.IssueToken(tp, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04")
	csv := filepath.Join(t.TempDir(), "门店到访.csv")
	if err := os.WriteFile(csv, []byte("token,手机号,邮箱,时间,备注\n"+
		token+",13800138000,,"+at+",VIP\n"+
		token+",,,"+at+",nobody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)

	signIn(t, ctx, s.base, "/touchpoints", "admin@example.com", "a long admin password", tid("touchpoints-table"))
	do(t, ctx, "open the import from the touchpoints",
		chromedp.Click(tid("import-touches-link")),
		chromedp.WaitVisible(tid("import-card")),
		chromedp.WaitVisible(tid("import-columns")),
	)
	if zone := read(t, ctx, "time zone", chromedp.Value(tid("import-timezone"))); zone != "Asia/Shanghai" {
		t.Errorf("the time zone is %q at first, want Asia/Shanghai", zone)
	}
	do(t, ctx, "choose the file and UTC, and import",
		chromedp.SetUploadFiles(tid("import-file"), []string{csv}),
		chromedp.WaitVisible(tid("import-file-name")),
		chromedp.SetValue(tid("import-timezone"), "UTC"),
		chromedp.Click(tid("import-submit")),
		chromedp.WaitVisible(tid("import-result")),
	)
	if summary := read(t, ctx, "summary", chromedp.Text(tid("import-summary"))); !strings.HasPrefix(summary, "1 imported of 2 rows") {
		t.Errorf("the import says %q, want 1 imported of 2 rows", summary)
	}
	if n := read(t, ctx, "rejected", chromedp.Text(tid("import-rejected-count"))); n != "1" {
		t.Errorf("%s rows rejected, want 1", n)
	}
	row := read(t, ctx, "rejected row", chromedp.Attributes(tid("rejected-row")))
	reason := read(t, ctx, "reason", chromedp.Text(chromedp.CSS(`[data-testid="rejected-row"] .reason-cell`)))
	if row["data-line"] != "3" || !strings.Contains(reason, "identifier") {
		t.Errorf("rejected row: line %q, reason %q; want line 3, for want of an identifier", row["data-line"], reason)
	}
	if ignored := read(t, ctx, "ignored columns", chromedp.Text(tid("import-ignored"))); !strings.Contains(ignored, "备注") {
		t.Errorf("ignored columns %q, want 备注", ignored)
	}

	do(t, ctx, "the same file again records nothing twice",
		chromedp.Click(tid("import-submit")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="import-duplicates"]')?.textContent.trim() === "1"`),
	)
	if n := read(t, ctx, "imported again", chromedp.Text(tid("import-imported"))); n != "0" {
		t.Errorf("importing the file again imported %s, want 0", n)
	}

	do(t, ctx, "record a touch on the touchpoint page",
		chromedp.Navigate(s.base+"/console/touchpoints/"+tp.ID),
		chromedp.WaitVisible(tid("record-touch")),
		chromedp.SendKeys(tid("record-who"), "li.lei@example.com"),
		chromedp.Click(tid("record-submit")),
		chromedp.WaitVisible(tid("toast")),
	)
	if toast := read(t, ctx, "toast", chromedp.Text(tid("toast"))); toast != "Touch recorded" {
		t.Errorf("after recording a touch the page says %q", toast)
	}
	if who := read(t, ctx, "phone or email", chromedp.Value(tid("record-who"))); who != "" {
		t.Errorf("the form keeps %q after recording", who)
	}
	do(t, ctx, "the counter shows the imported and the recorded touch",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="touch-count-people"]').textContent.trim() === "2"`),
	)
	// Of the two, only the touch recorded by email is a person (13800138000 is an example number, no one's): the
	// people reached read again once the counter moved, and count them when the profiles have caught up.
	do(t, ctx, "the people reached count the person recorded",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="people-reached-total"]')?.textContent.trim() === "1"`),
	)
	// The chart of touches over time read its days again once the counter moved: both touches, by day.
	do(t, ctx, "the chart counts both touches over the last 30 days",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="touch-chart-total"]').textContent.includes("Last 30 days: 2 ")`),
		chromedp.WaitVisible(tid("touch-chart")),
	)
	do(t, ctx, "and over the last 7",
		chromedp.Click(tid("touch-days-7")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="touch-chart-total"]').textContent.includes("Last 7 days: 2 ")`),
	)
	if pressed := read(t, ctx, "7 days", chromedp.Attributes(tid("touch-days-7"))); pressed["aria-pressed"] != "true" {
		t.Errorf("the 7 days button is not pressed: %v", pressed)
	}
	tpSpark := `[data-testid="touchpoint-row"][data-touchpoint-id="` + tp.ID + `"] [data-testid="touch-sparkline"]`
	do(t, ctx, "the touchpoints list draws its last 14 days",
		chromedp.Click(tid("nav-touchpoints")),
		chromedp.WaitVisible(tid("touchpoints-table")),
		chromedp.WaitVisible(chromedp.CSS(tpSpark+`[data-loaded="true"] svg`)),
	)
	spark := read(t, ctx, "sparkline", chromedp.Attributes(chromedp.CSS(tpSpark)))
	if spark["data-total"] != "2" || spark["title"] != "2 touches by people in the last 14 days" {
		t.Errorf("the list's sparkline: total %q, title %q; want both touches", spark["data-total"], spark["title"])
	}
	if bars := count(t, ctx, tpSpark+` rect`); bars != 14 {
		t.Errorf("%d bars, want one a day for 14 days", bars)
	}
	firstRow := func() string {
		return read(t, ctx, "first row", chromedp.Attributes(tid("touchpoint-row")))["data-touchpoint-id"]
	}
	if first := firstRow(); first != other.ID {
		t.Errorf("newest first, the first row is %s, want the newer touchpoint", first)
	}
	do(t, ctx, "sort by touches", chromedp.Click(tid("sort-touches")),
		chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="descending"] [data-testid="sort-touches"]`)))
	if first := firstRow(); first != tp.ID {
		t.Errorf("by touches, the first row is %s, want the touched one", first)
	}
	if loc := read(t, ctx, "address", chromedp.Evaluate[string](`location.search`)); !strings.Contains(loc, "sort=touches") {
		t.Errorf("the address %q does not keep the order", loc)
	}
	do(t, ctx, "sort by name", chromedp.Click(tid("sort-name")),
		chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="ascending"] [data-testid="sort-name"]`)))
	if first := firstRow(); first != other.ID {
		t.Errorf("by name, the first row is %s, want Anting counter", first)
	}
	campaignSpark := chromedp.CSS(`[data-testid="campaign-row"][data-campaign-id="` + campaign.ID + `"] [data-testid="touch-sparkline"]`)
	do(t, ctx, "and so does the campaigns list, for the touchpoint's campaign",
		chromedp.Click(tid("nav-campaigns")),
		chromedp.WaitVisible(tid("campaigns-table")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="campaign-row"] [data-testid="touch-sparkline"][data-loaded="true"] svg`)),
	)
	if total := read(t, ctx, "campaign sparkline", chromedp.Attributes(campaignSpark))["data-total"]; total != "2" {
		t.Errorf("the campaign's last 14 days count %q touches, want 2", total)
	}

	// A WeChat follower recorded by openid alone is a WeChat user among the people reached, not an anonymous one.
	staff, _, err := s.app.auth.CreateAPIKey(context.Background(), "staff app", hearth.RoleMarketer)
	if err != nil {
		t.Fatal(err)
	}
	if code := s.call(t, staff, "POST", "/api/v1/touches", map[string]string{"touchpoint_id": tp.ID, "wechat_openid": "oWx9-bmjrPTlm6_2sgVt7hMXy7Q"}, nil); code != http.StatusCreated {
		t.Fatalf("record a touch by openid: %d", code)
	}
	do(t, ctx, "the people reached show the WeChat user",
		chromedp.Navigate(s.base+"/console/touchpoints/"+tp.ID),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="people-reached-total"]')?.textContent.trim() === "2"`),
	)
	chips := read(t, ctx, "the people", chromedp.Text(tid("people-reached-sample")))
	if !strings.Contains(chips, "WeChat user ·Xy7Q") || strings.Contains(chips, "Anonymous") {
		t.Errorf("the people reached show %q, want the WeChat user", chips)
	}
}
