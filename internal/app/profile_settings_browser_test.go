package app

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
)

// An admin opens Profile settings under Data, maps a WeChat source with the one-click example (nickname → name,
// sex 1/2/0 → gender, headimgurl → avatar), lowers the phone limit, adds a rule that the CRM's name wins, and
// swaps the conversion event. Saving a source-priority rule without sources is refused with the server's message
// naming the place; with the CRM listed it saves, with a toast. After a reload the page shows it all, and the
// API answers the same document. A marketer sees the same screen read-only: a note, no Save, nothing to edit.
func TestBrowserProfileSettings(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	s := startApp(t, cfg)
	bg := context.Background()
	wechat, err := s.app.sources.Create(bg, "Brand service account", collect.KindWeChat)
	if err != nil {
		t.Fatal(err)
	}
	crm, err := s.app.sources.Create(bg, "CRM", collect.KindServer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.auth.CreateUser(bg, auth.NewUser{Email: "marketer@example.com", Name: "Mei Chen",
		Role: hearth.RoleMarketer, Password: "a long marketer password"}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)

	signIn(t, ctx, s.base, "/", "admin@example.com", "a long admin password", tid("home-title"))
	do(t, ctx, "open Profile settings from the navigation",
		chromedp.Click(tid("nav-profile-settings")),
		chromedp.WaitVisible(tid("ps-identity")),
	)
	types := read(t, ctx, "types", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid="ps-type"]')].map(e => e.dataset.type)`))
	if want := []string{"user_id", "wechat_unionid", "email", "phone", "wechat_openid", "device_id", "anonymous_id"}; !cmp.Equal(types, want) {
		t.Errorf("identifier types shown %v, want the defaults in priority order %v", types, want)
	}
	if region := read(t, ctx, "phone region", chromedp.Value(tid("ps-phone-region"))); region != "CN" {
		t.Errorf("the default phone region is %q, want CN", region)
	}
	if n := count(t, ctx, `[data-testid="ps-save"]:disabled`); n != 1 {
		t.Error("Save is enabled before anything changed")
	}

	wechatMapping := `[data-testid="ps-mapping"][data-source-id="` + wechat.ID + `"]`
	do(t, ctx, "map the WeChat source with the example",
		chromedp.SetValue(tid("ps-mapping-source"), wechat.ID),
		chromedp.Click(tid("ps-mapping-add")),
		chromedp.WaitVisible(chromedp.CSS(wechatMapping)),
		chromedp.Click(chromedp.CSS(wechatMapping+` [data-testid="ps-mapping-example"]`)),
		chromedp.WaitVisible(chromedp.CSS(wechatMapping+` [data-testid="ps-field"][data-from="sex"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="ps-status"][data-dirty="true"]`)),
	)
	// Typed over: the box's value replaced, as selecting it and typing does.
	read(t, ctx, "lower the phone limit", chromedp.Evaluate[bool](`(() => {
		const el = document.querySelector('[data-type="phone"] [data-testid="ps-type-limit"]')
		el.value = '3'
		el.dispatchEvent(new Event('input', { bubbles: true }))
		return true
	})()`))
	do(t, ctx, "the CRM's name wins: first without the CRM",
		chromedp.Click(tid("ps-trait-add")),
		chromedp.WaitVisible(tid("ps-trait-name")),
		chromedp.SendKeys(tid("ps-trait-name"), "name"),
		chromedp.Click(tid("ps-trait-0-precedence-source_priority")),
		chromedp.WaitVisible(tid("ps-trait-source-select")),
	)
	do(t, ctx, "swap the conversion event",
		chromedp.SendKeys(tid("ps-conversion-input"), "Subscription Started\r"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="ps-conversion-tag"][data-value="Subscription Started"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="ps-conversion-tag"][data-value="Order Completed"] [data-testid="ps-conversion-remove"]`)),
	)

	do(t, ctx, "saving a source priority without sources is refused",
		chromedp.Click(tid("ps-save")),
		chromedp.WaitVisible(tid("ps-error")),
	)
	if msg := read(t, ctx, "refusal", chromedp.Text(tid("ps-error"))); !strings.Contains(msg, "traits[0].sources") {
		t.Errorf("the refusal says %q, want the server's message naming traits[0].sources", msg)
	}
	do(t, ctx, "list the CRM and save",
		chromedp.SetValue(tid("ps-trait-source-select"), crm.ID),
		chromedp.Click(tid("ps-trait-source-add")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="ps-trait-source"][data-source-id="`+crm.ID+`"]`)),
		chromedp.Click(tid("ps-save")),
		chromedp.WaitVisible(tid("toast")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="ps-status"][data-dirty="false"]`)),
	)
	if toast := read(t, ctx, "toast", chromedp.Text(tid("toast"))); toast != "Profile settings saved" {
		t.Errorf("after saving the page says %q", toast)
	}
	if n := count(t, ctx, `[data-testid="ps-error"]`); n != 0 {
		t.Error("the refusal is still shown after saving")
	}

	do(t, ctx, "reload",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(wechatMapping)),
	)
	fields := read(t, ctx, "mapped fields", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('`+wechatMapping+` [data-testid="ps-field"]')].map(e => e.dataset.from + '>' + e.dataset.to)`))
	if want := []string{"nickname>name", "sex>gender", "headimgurl>avatar"}; !cmp.Equal(fields, want) {
		t.Errorf("after a reload the WeChat mapping is %v, want %v", fields, want)
	}
	if v := read(t, ctx, "sex values", chromedp.Text(chromedp.CSS(wechatMapping+` [data-testid="ps-field"][data-from="sex"] [data-testid="ps-field-values-toggle"]`))); v != "3 values" {
		t.Errorf("the sex field's value map says %q, want 3 values", v)
	}
	if limit := read(t, ctx, "phone limit", chromedp.Value(chromedp.CSS(`[data-type="phone"] [data-testid="ps-type-limit"]`))); limit != "3" {
		t.Errorf("after a reload the phone limit is %s, want 3", limit)
	}
	if n := count(t, ctx, `[data-testid="ps-trait"][data-name="name"] [data-testid="ps-trait-source"][data-source-id="`+crm.ID+`"]`); n != 1 {
		t.Error("after a reload the rule for name does not list the CRM")
	}
	conversion := read(t, ctx, "conversion events", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid="ps-conversion-tag"]')].map(e => e.dataset.value)`))
	if want := []string{"Subscription Started"}; !cmp.Equal(conversion, want) {
		t.Errorf("after a reload the conversion events are %v, want %v", conversion, want)
	}

	// The API answers what was stored.
	key, _, err := s.app.auth.CreateAPIKey(bg, "reader", hearth.RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Identity struct {
			Types []struct {
				Type  string `json:"type"`
				Limit int    `json:"limit"`
			} `json:"types"`
		} `json:"identity"`
		Mappings []struct {
			SourceID string `json:"source_id"`
			Fields   []struct {
				From   string         `json:"from"`
				To     string         `json:"to"`
				Type   string         `json:"type"`
				Values map[string]any `json:"values"`
			} `json:"fields"`
		} `json:"mappings"`
		Traits []struct {
			Name       string   `json:"name"`
			Precedence string   `json:"precedence"`
			Sources    []string `json:"sources"`
		} `json:"traits"`
		Lifecycle struct {
			ConversionEvents []string `json:"conversion_events"`
		} `json:"lifecycle"`
	}
	if code := s.call(t, key, "GET", "/api/v1/settings/profiles", nil, &doc); code != 200 {
		t.Fatalf("GET /api/v1/settings/profiles: %d", code)
	}
	for _, tr := range doc.Identity.Types {
		if tr.Type == "phone" && tr.Limit != 3 {
			t.Errorf("stored phone limit %d, want 3", tr.Limit)
		}
	}
	if len(doc.Mappings) != 1 || doc.Mappings[0].SourceID != wechat.ID || len(doc.Mappings[0].Fields) != 3 {
		t.Fatalf("stored mappings %+v, want the WeChat source's three fields", doc.Mappings)
	}
	if sex := doc.Mappings[0].Fields[1]; sex.From != "sex" || sex.To != "gender" ||
		!cmp.Equal(sex.Values, map[string]any{"1": "male", "2": "female", "0": "unknown"}) {
		t.Errorf("stored sex mapping %+v, want 1/2/0 onto male/female/unknown", sex)
	}
	if len(doc.Traits) != 1 || doc.Traits[0].Name != "name" || doc.Traits[0].Precedence != "source_priority" ||
		!cmp.Equal(doc.Traits[0].Sources, []string{crm.ID}) {
		t.Errorf("stored trait rules %+v, want name by source priority, the CRM first", doc.Traits)
	}
	if !cmp.Equal(doc.Lifecycle.ConversionEvents, []string{"Subscription Started"}) {
		t.Errorf("stored conversion events %v", doc.Lifecycle.ConversionEvents)
	}

	do(t, ctx, "sign out",
		chromedp.Click(tid("user-menu")),
		chromedp.WaitVisible(tid("sign-out")),
		chromedp.Click(tid("sign-out")),
		chromedp.WaitVisible(tid("login-form")),
	)
	signIn(t, ctx, s.base, "/settings/profiles", "marketer@example.com", "a long marketer password", tid("ps-readonly"))
	do(t, ctx, "a marketer sees the settings", chromedp.WaitVisible(chromedp.CSS(wechatMapping)))
	for _, id := range []string{"ps-save", "ps-savebar", "ps-discard", "ps-mapping-add", "ps-mapping-remove", "ps-field-add",
		"ps-trait-add", "ps-trait-remove", "ps-add-type", "ps-type-up", "ps-conversion-input", "ps-conversion-remove"} {
		if n := count(t, ctx, `[data-testid="`+id+`"]`); n != 0 {
			t.Errorf("a marketer sees %s", id)
		}
	}
	if n := count(t, ctx, `[data-testid="ps-field-from"]:not(:disabled), [data-testid="ps-type-limit"]:not(:disabled)`); n != 0 {
		t.Errorf("a marketer can type into %d fields", n)
	}
	if n := count(t, ctx, `[data-testid="ps-conversion-tag"][data-value="Subscription Started"]`); n != 1 {
		t.Error("a marketer does not see the conversion event")
	}
}
