package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// postTracking sends a body to the tracking API with a source's write key, as an SDK does, and returns
// the decoded answer after checking its status.
func postTracking(t *testing.T, base, writeKey, call, body string, wantStatus int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/"+call, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("POST /v1/%s: status %d, want %d: %s", call, resp.StatusCode, wantStatus, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST /v1/%s: %v in %s", call, err, raw)
	}
	return out
}

// A marketer installing a source watches its page: a track event sent from outside shows up in the live
// debugger with its payload a click away, a refused batch event shows up under Refused with its reason,
// nothing new shows while the debugger is paused, and the sources list and the checklist count the events:
// on SQLite and on PostgreSQL.
func TestBrowserDebugger(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { testBrowserDebugger(t, engine) })
	}
}

func testBrowserDebugger(t *testing.T, engine string) {
	cfg := browserConfig(t, engine)
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	base, _ := startForBrowser(t, cfg)
	ctx := browser(t)

	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/console/sources"),
		chromedp.WaitVisible(tid("login-form")),
		chromedp.SendKeys(tid("login-email"), "admin@example.com"),
		chromedp.SendKeys(tid("login-password"), "a long admin password"),
		chromedp.Click(tid("login-submit")),
		chromedp.WaitVisible(tid("create-source")),
	)
	do(t, ctx, "create a source and land on its page",
		chromedp.Click(tid("create-source")),
		chromedp.WaitVisible(tid("source-name")),
		chromedp.SendKeys(tid("source-name"), "Checkout service"),
		chromedp.SetValue(tid("source-kind"), "server"),
		chromedp.Click(tid("source-save")),
		chromedp.WaitVisible(tid("source-title")),
		chromedp.WaitVisible(tid("event-debugger")),
		chromedp.WaitVisible(tid("debugger-empty")), // the first read is done: listening, with the curl snippet
	)
	key := read(t, ctx, "write key", chromedp.Value(tid("write-key")))
	if snippet := read(t, ctx, "snippet", chromedp.Text(tid("debugger-snippet"))); !strings.Contains(snippet, key) {
		t.Errorf("the empty debugger's snippet lacks the write key %q: %q", key, snippet)
	}

	const messageID = "debugger-test-0001"
	res := postTracking(t, base, key, "track", `{"messageId":"`+messageID+`","userId":"user-42","event":"Debugger Test Event","properties":{"plan":"pro"}}`, http.StatusOK)
	if res["accepted"] != 1.0 {
		t.Fatalf("track answer %v, want 1 accepted", res)
	}
	res = postTracking(t, base, key, "batch", `{"batch":[{"type":"track","userId":"user-42"}]}`, http.StatusOK)
	if rej, _ := res["rejected"].([]any); len(rej) != 1 {
		t.Fatalf("batch answer %v, want 1 rejected", res)
	}

	row := chromedp.CSS(`[data-testid="event-row"][data-message-id="` + messageID + `"]`)
	do(t, ctx, "the event arrives",
		chromedp.WaitVisible(row),
		chromedp.Click(row),
		chromedp.WaitVisible(tid("event-payload")),
	)
	if typ := read(t, ctx, "event type", chromedp.Attributes(row))["data-event-type"]; typ != "track" {
		t.Errorf("event row's type = %q, want track", typ)
	}
	if payload := read(t, ctx, "payload", chromedp.Text(tid("event-payload"))); !strings.Contains(payload, `"event": "Debugger Test Event"`) ||
		!strings.Contains(payload, `"plan": "pro"`) {
		t.Errorf("expanded payload lacks the event's name or properties: %q", payload)
	}

	do(t, ctx, "the refusal is listed with its reason",
		chromedp.Click(tid("rejected-tab")),
		chromedp.WaitVisible(tid("rejected-row")),
	)
	if reason := read(t, ctx, "reason", chromedp.Text(tid("rejected-reason"))); !strings.Contains(reason, "event is required") {
		t.Errorf("refusal reason = %q, want it to say that event is required", reason)
	}
	// The counters come from the source's stats, refreshed every few seconds.
	do(t, ctx, "the counters catch up",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="debugger-accepted"]').textContent.trim() === '1' &&
			document.querySelector('[data-testid="rejected-count"]').textContent.trim() === '1'`, chromedp.WithPollingTimeout(15*time.Second)),
	)

	const pausedID = "debugger-test-0002"
	pausedRow := chromedp.CSS(`[data-testid="event-row"][data-message-id="` + pausedID + `"]`)
	do(t, ctx, "pause",
		chromedp.Click(tid("events-tab")),
		chromedp.Click(tid("debugger-pause")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="debugger-pause"][aria-pressed="true"]`)),
	)
	postTracking(t, base, key, "track", `{"messageId":"`+pausedID+`","anonymousId":"anon-7","event":"While Paused"}`, http.StatusOK)
	do(t, ctx, "nothing new while paused", chromedp.Sleep(2500*time.Millisecond))
	if n := read(t, ctx, "rows while paused", chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="event-row"][data-message-id="`+pausedID+`"]').length`)); n != 0 {
		t.Errorf("an event sent while paused is shown before resuming")
	}
	do(t, ctx, "resume", chromedp.Click(tid("debugger-pause")), chromedp.WaitVisible(pausedRow))

	do(t, ctx, "the sources list counts the events",
		chromedp.Click(tid("nav-sources")),
		chromedp.WaitVisible(tid("source-accepted-count")),
	)
	if n := read(t, ctx, "accepted count", chromedp.Text(tid("source-accepted-count"))); strings.TrimSpace(n) != "2" {
		t.Errorf("sources list: accepted %q, want 2", n)
	}
	if n := read(t, ctx, "refused count", chromedp.Attributes(tid("source-rejected-count")))["data-rejected"]; n != "1" {
		t.Errorf("sources list: refused %q, want 1", n)
	}
	do(t, ctx, "the checklist ticks the first event",
		chromedp.Click(tid("nav-home")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="step-first-event"][data-done="true"]`)),
	)
}

// An engineer limits a flooding source from its page: the limit is kept, a batch beyond it is refused with a
// 429, the debugger says how many events the limit refused, and clearing the field gives the server's default
// (none here) back.
func TestBrowserSourceRateLimit(t *testing.T) {
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	base, _ := startForBrowser(t, cfg)
	ctx := browser(t)

	signIn(t, ctx, base, "/sources", "admin@example.com", "a long admin password", tid("create-source"))
	do(t, ctx, "create a source",
		chromedp.Click(tid("create-source")),
		chromedp.WaitVisible(tid("source-name")),
		chromedp.SendKeys(tid("source-name"), "Kiosk app"),
		chromedp.SetValue(tid("source-kind"), "app"),
		chromedp.Click(tid("source-save")),
		chromedp.WaitVisible(tid("source-rate-limit")),
	)
	if ph := read(t, ctx, "placeholder", chromedp.Attributes(tid("source-rate-limit")))["placeholder"]; ph != "Server default: no limit" {
		t.Errorf("rate limit placeholder %q, want the server's default", ph)
	}
	do(t, ctx, "refuse a number that is not a rate",
		chromedp.SendKeys(tid("source-rate-limit"), "-3"),
		chromedp.Click(tid("source-rename-save")),
		chromedp.WaitVisible(tid("source-settings-error")),
	)
	do(t, ctx, "limit the source to one event a second",
		chromedp.SetValue(tid("source-rate-limit"), ""),
		chromedp.SendKeys(tid("source-rate-limit"), "1"),
		chromedp.Click(tid("source-rename-save")),
		chromedp.WaitNotPresent(tid("source-settings-error")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="source-rename-save"]').disabled`),
		chromedp.Reload(),
		chromedp.WaitVisible(tid("source-rate-limit")),
	)
	if v := read(t, ctx, "rate limit", chromedp.Value(tid("source-rate-limit"))); v != "1" {
		t.Fatalf("rate limit after a reload %q, want 1", v)
	}

	key := read(t, ctx, "write key", chromedp.Value(tid("write-key")))
	// The quickstart shows each way to send, with this source's key and Hearth's address.
	if code := read(t, ctx, "quickstart", chromedp.Text(tid("source-snippet"))); !strings.Contains(code, "curl -X POST "+base+"/v1/track") {
		t.Errorf("an app source's quickstart begins with %q, want the HTTP call", code)
	}
	do(t, ctx, "pick Segment's analytics.js", chromedp.Click(tid("quickstart-segment")))
	if code := read(t, ctx, "quickstart", chromedp.Text(tid("source-snippet"))); !strings.Contains(code, "writeKey: '"+key+"'") || !strings.Contains(code, "cdnURL: '"+base+"'") {
		t.Errorf("analytics.js quickstart %q, want the key and cdnURL", code)
	}
	if hint := read(t, ctx, "hint", chromedp.Text(tid("quickstart-hint"))); !strings.Contains(hint, "https://cdn.segment.com") {
		t.Errorf("analytics.js hint %q, want how to change the classic snippet", hint)
	}
	batch := func(n int) string {
		events := make([]string, n)
		for i := range events {
			events[i] = `{"type":"track","userId":"kiosk-1","event":"Tapped"}`
		}
		return `{"batch":[` + strings.Join(events, ",") + `]}`
	}
	postTracking(t, base, key, "batch", batch(1000), http.StatusOK) // as many as a source limited so may send at once
	res := postTracking(t, base, key, "batch", batch(1001), http.StatusTooManyRequests)
	if msg, _ := res["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "rate limit of 1 events a second") {
		t.Errorf("429 answer %v, want it to say the limit", res)
	}
	// Counted within a few seconds, read by the debugger's refresh.
	do(t, ctx, "the debugger tells what the limit refused",
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="debugger-throttled"]') !== null`, chromedp.WithPollingTimeout(15*time.Second)),
	)
	if note := read(t, ctx, "note", chromedp.Text(tid("debugger-throttled"))); !strings.Contains(note, "1,001 events were refused") || !strings.Contains(note, "(1 a second)") {
		t.Errorf("throttled note %q, want the count and the limit", note)
	}

	do(t, ctx, "the sources list marks the source rate limited",
		chromedp.Click(tid("nav-sources")),
		chromedp.WaitVisible(tid("source-throttled")),
		chromedp.NavigateBack(),
		chromedp.WaitVisible(tid("source-rate-limit")),
	)
	do(t, ctx, "clear the limit",
		chromedp.SetValue(tid("source-rate-limit"), ""),
		chromedp.SendKeys(tid("source-rate-limit"), " "),
		chromedp.Click(tid("source-rename-save")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="source-rate-limit"]').placeholder === 'Server default: no limit'`),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="debugger-throttled"]').textContent.includes('It has no limit now')`,
			chromedp.WithPollingTimeout(10*time.Second)),
	)
	postTracking(t, base, key, "batch", batch(1001), http.StatusOK)
}
