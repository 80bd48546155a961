package segment

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/identity"
)

// FuzzParseRule checks that reading a rule never panics, that a refusal is an Invalid error naming where it
// failed, and that a rule it accepts is within the limits and reads back from its JSON as the same rule.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		`{"trait": {"name": "city", "op": "equals", "value": "上海"}}`,
		`{"trait": {"name": "city", "op": "in", "values": ["Beijing", "Shenzhen", 3]}}`,
		`{"trait": {"name": "score", "op": "gt", "value": 50}}`,
		`{"trait": {"name": "vip", "op": "exists"}}`,
		`{"trait": {"name": "birthday", "op": "within_last_days", "days": 14}}`,
		`{"trait": {"name": "birthday", "op": "before", "value": "2026-02-30"}}`,
		`{"event": {"name": "Order Completed", "count": {"op": "at_least", "value": 2}, "within_last_days": 30}}`,
		`{"event": {"name": "Order Completed", "where": [{"property": "amount", "op": "gte", "value": 500}, {"property": "sku", "op": "in", "values": ["tea"]}]}}`,
		`{"event": {"name": "Signed Up", "between": {"from": "2026-01-01", "to": "2026-03-31"}}}`,
		`{"touched": {"campaign_id": "c0", "within_last_days": 20}}`,
		`{"touched": {"channel": "ad", "touchpoint_id": "tp"}}`,
		`{"stage": {"op": "at_least", "value": "activated"}}`,
		`{"stage": {"op": "reached", "value": "identified"}}`, `{"stage": {"op": "reached", "value": "anonymous"}}`,
		`{"reachable": {"channel": "any"}}`,
		`{"segment": {"id": "seg_1"}}`,
		`{"and": [{"not": {"reachable": {"channel": "email"}}}, {"or": [{"stage": {"op": "is", "value": "converted"}}, {"segment": {"id": "s"}}]}]}`,
		`{"and": []}`, `{"not": null}`, `{"trait": {"name": "x", "op": "equals", "value": 1e999}}`, `[]`, `{}`, `null`, `{"and": [{"and": [{"and": [{"and": [{"and": [{"and": [{"and": [{"and": [{"and": [{"and": [{"and": [{"segment": {"id": "deep"}}]}]}]}]}]}]}]}]}]}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRule(data)
		if err != nil {
			if hearth.KindOf(err) != hearth.Invalid || !strings.HasPrefix(err.Error(), "segment.rule: rule") {
				t.Fatalf("ParseRule(%q): %v, want an Invalid error with the path of the bad part", data, err)
			}
			return
		}
		nodes, depth := 0, 0
		r.walkPaths("rule", func(_ Rule, path string) {
			nodes++
			depth = max(depth, strings.Count(path, ".and[")+strings.Count(path, ".or[")+strings.Count(path, ".not")+1)
		})
		if nodes > maxNodes || depth > maxDepth {
			t.Fatalf("ParseRule(%q) accepted %d conditions %d deep", data, nodes, depth)
		}
		out, err := marshalRule(r)
		if err != nil {
			t.Fatalf("marshalRule of %q: %v", data, err)
		}
		again, err := ParseRule(out)
		if err != nil {
			t.Fatalf("ParseRule(%q) accepted it, but not its own JSON %s: %v", data, out, err)
		}
		if out2, _ := marshalRule(again); string(out2) != string(out) {
			t.Fatalf("%q reads back differently:\n%s\n%s", data, out, out2)
		}
	})
}

// FuzzReadList checks that reading an uploaded list never panics, and that what it keeps are normalised email
// addresses and phone numbers, each once, with every rejected line named within the upload.
func FuzzReadList(f *testing.F) {
	for _, s := range []string{"li.lei@example.com\n13812345678\n", "\uFEFFEmail,Mobile,Name\nA@QQ.com,+86 138 1234 5678,李雷\n,,x\n",
		"phone\n010-6552 9988\nnot a phone\n", "\"a@b.cn\",\"x\"\"y\n", "a\"b@c.cn\n", "email;phone\r\na@b.cn;1\r\n", "\n\n", ""} {
		f.Add([]byte(s))
	}
	rules := identity.DefaultRules()
	f.Fuzz(func(t *testing.T, data []byte) {
		items, res, err := readList(data, rules)
		if err != nil {
			if hearth.KindOf(err) != hearth.Invalid {
				t.Fatalf("readList(%q): %v, want an Invalid error", data, err)
			}
			return
		}
		if res.Items != len(items) {
			t.Fatalf("readList(%q) reports %d items and returns %d", data, res.Items, len(items))
		}
		seen := map[identity.Identifier]bool{}
		for _, id := range items {
			if id.Type != identity.Email && id.Type != identity.Phone {
				t.Fatalf("readList(%q) kept %v", data, id)
			}
			if again, ok := rules.Normalize(id.Type, id.Value); !ok || again != id || seen[id] {
				t.Fatalf("readList(%q) kept %v, not normalised or twice", data, id)
			}
			seen[id] = true
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, r := range res.Rejected {
			if r.Line < 1 || r.Line > lines || r.Reason == "" {
				t.Fatalf("readList(%q) rejects line %d of %d: %q", data, r.Line, lines, r.Reason)
			}
		}
	})
}
