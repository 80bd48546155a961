// Package segment keeps groups of people current: rule segments, whose members are the profiles a rule
// matches, and list segments, whose members hold an identifier of an uploaded list (docs/segments.md).
package segment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// Rule is one node of a rule tree: exactly one of its fields is set. As JSON, {"and": [...]}, {"trait": {...}}
// and so on (docs/segments.md).
type Rule struct {
	And       []Rule     `json:"and,omitempty"`
	Or        []Rule     `json:"or,omitempty"`
	Not       *Rule      `json:"not,omitempty"`
	Trait     *Compare   `json:"trait,omitempty"`
	Event     *Event     `json:"event,omitempty"`
	Touched   *Touched   `json:"touched,omitempty"`
	Stage     *StageIs   `json:"stage,omitempty"`
	Reachable *Reachable `json:"reachable,omitempty"`
	Segment   *MemberOf  `json:"segment,omitempty"`

	list string // a list segment's own condition: holds an identifier of the list of this segment
}

// Compare compares a trait (Name) or an event property (Property) with a value.
type Compare struct {
	Name     string `json:"name,omitempty"`
	Property string `json:"property,omitempty"`
	Op       Op     `json:"op"`
	Value    any    `json:"value,omitempty"`  // a string, float64 or bool, as the op needs
	Values   []any  `json:"values,omitempty"` // for In: strings and float64s
	Days     int    `json:"days,omitempty"`   // for WithinLastDays
}

// Op is a comparison.
type Op string

const (
	Equals         Op = "equals"
	Contains       Op = "contains"
	In             Op = "in"
	Greater        Op = "gt"
	GreaterOrEqual Op = "gte"
	Less           Op = "lt"
	LessOrEqual    Op = "lte"
	Exists         Op = "exists"
	Before         Op = "before"
	After          Op = "after"
	WithinLastDays Op = "within_last_days"
)

// Event matches people by how many times they performed a track event.
type Event struct {
	Name           string    `json:"name"`
	Where          []Compare `json:"where,omitempty"`
	Count          *Count    `json:"count,omitempty"` // nil: at least once
	WithinLastDays int       `json:"within_last_days,omitempty"`
	Between        *Between  `json:"between,omitempty"`
}

// Count bounds a number of events.
type Count struct {
	Op    string `json:"op"` // at_least, at_most or exactly
	Value int    `json:"value"`
}

// Between is a span of days, both included.
type Between struct {
	From string `json:"from"` // YYYY-MM-DD
	To   string `json:"to"`
}

// Touched matches people who touched a touchpoint, a campaign's touchpoints, or a channel's.
type Touched struct {
	TouchpointID   string `json:"touchpoint_id,omitempty"`
	CampaignID     string `json:"campaign_id,omitempty"`
	Channel        string `json:"channel,omitempty"`
	WithinLastDays int    `json:"within_last_days,omitempty"` // the last touch was this recent
}

// StageIs matches a lifecycle stage (the furthest step a person meets), any from a stage on, or a step met on
// its own, whatever the steps before it (reached).
type StageIs struct {
	Op    string        `json:"op"` // is, at_least or reached
	Value profile.Stage `json:"value"`
}

// Reachable matches people reachable on a channel.
type Reachable struct {
	Channel string `json:"channel"` // email, sms, wechat or any
}

// MemberOf matches the members of another segment.
type MemberOf struct {
	ID string `json:"id"`
}

// Limits of a rule.
const (
	maxRuleBytes = 64 << 10
	maxDepth     = 10
	maxNodes     = 200
	maxIn        = 1000
	maxWhere     = 10
	maxDays      = 3650
	maxCount     = 1_000_000
)

// holds says whether a person who meets steps matches.
func (s StageIs) holds(steps profile.Steps) bool {
	switch s.Op {
	case "is":
		return steps.Stage() == s.Value
	case "at_least":
		return slices.Index(Stages, steps.Stage()) >= slices.Index(Stages, s.Value)
	}
	return steps.Bits()&profile.StepBit(s.Value) != 0 // reached
}

// Stages, in order.
var Stages = []profile.Stage{profile.Anonymous, profile.Identified, profile.Connected, profile.Activated, profile.Converted}

// Channels of touchpoints (touchpoint.Channels).
var channels = []string{"web_link", "qr_poster", "business_card", "product_pack", "store", "ad", "wechat_qr", "email", "sms", "other"}

var dayPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// ParseRule reads a rule as JSON and checks it. The error, Invalid with code invalid_rule, names the bad part
// as a path from the root ("rule.and[1].event.count.value: …").
func ParseRule(data []byte) (Rule, error) {
	var r Rule
	if len(data) > maxRuleBytes {
		return r, invalid("rule", "is larger than %d KB", maxRuleBytes>>10)
	}
	n := 0
	err := parseNode(data, "rule", 1, &n, &r)
	return r, err
}

func invalid(path, format string, args ...any) error {
	return &hearth.Error{Kind: hearth.Invalid, Op: "segment.rule", Code: "invalid_rule", Msg: path + ": " + fmt.Sprintf(format, args...)}
}

var nodeKeys = []string{"and", "or", "not", "trait", "event", "touched", "stage", "reachable", "segment"}

func parseNode(data []byte, path string, depth int, nodes *int, r *Rule) error {
	if *nodes++; *nodes > maxNodes {
		return invalid(path, "the rule has more than %d conditions", maxNodes)
	}
	if depth > maxDepth {
		return invalid(path, "the rule nests more than %d levels deep", maxDepth)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return invalid(path, "must be an object with one of %s", strings.Join(nodeKeys, ", "))
	}
	if len(obj) != 1 {
		return invalid(path, "must have exactly one of %s, not %d keys", strings.Join(nodeKeys, ", "), len(obj))
	}
	for key, raw := range obj {
		at := path + "." + key
		switch key {
		case "and", "or":
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				return invalid(at, "must be a list of rules")
			}
			if len(items) == 0 {
				return invalid(at, "must name at least one rule")
			}
			list := make([]Rule, len(items))
			for i, item := range items {
				if err := parseNode(item, fmt.Sprintf("%s[%d]", at, i), depth+1, nodes, &list[i]); err != nil {
					return err
				}
			}
			if key == "and" {
				r.And = list
			} else {
				r.Or = list
			}
		case "not":
			r.Not = &Rule{}
			return parseNode(raw, at, depth+1, nodes, r.Not)
		case "trait":
			r.Trait = &Compare{}
			if err := decodeStrict(raw, at, r.Trait); err != nil {
				return err
			}
			return r.Trait.check(at, true)
		case "event":
			r.Event = &Event{}
			if err := decodeStrict(raw, at, r.Event); err != nil {
				return err
			}
			return r.Event.check(at)
		case "touched":
			r.Touched = &Touched{}
			if err := decodeStrict(raw, at, r.Touched); err != nil {
				return err
			}
			return r.Touched.check(at)
		case "stage":
			r.Stage = &StageIs{}
			if err := decodeStrict(raw, at, r.Stage); err != nil {
				return err
			}
			if !slices.Contains([]string{"is", "at_least", "reached"}, r.Stage.Op) {
				return invalid(at+".op", "must be is, at_least or reached")
			}
			if !slices.Contains(Stages, r.Stage.Value) {
				return invalid(at+".value", "must be one of anonymous, identified, connected, activated, converted")
			}
			if r.Stage.Op == "reached" && r.Stage.Value == profile.Anonymous {
				return invalid(at+".value", "must be one of identified, connected, activated, converted: anonymous is no step to reach")
			}
		case "reachable":
			r.Reachable = &Reachable{}
			if err := decodeStrict(raw, at, r.Reachable); err != nil {
				return err
			}
			if !slices.Contains([]string{"email", "sms", "wechat", "any"}, r.Reachable.Channel) {
				return invalid(at+".channel", "must be email, sms, wechat or any")
			}
		case "segment":
			r.Segment = &MemberOf{}
			if err := decodeStrict(raw, at, r.Segment); err != nil {
				return err
			}
			if r.Segment.ID == "" {
				return invalid(at+".id", "must name a segment")
			}
		default:
			return invalid(path, "%q is not a condition; use one of %s", key, strings.Join(nodeKeys, ", "))
		}
	}
	return nil
}

// decodeStrict decodes a condition, refusing members it does not have.
func decodeStrict(raw json.RawMessage, path string, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return invalid(path, "has no member %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		case asType(err, &te) && te.Field != "":
			return invalid(path+"."+te.Field, "must be a %s", jsonKind(te.Type.Kind().String()))
		}
		return invalid(path, "must be an object")
	}
	return nil
}

func asType(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	*te = t
	return ok
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "text"
	case "int", "int64", "float64":
		return "number"
	case "slice":
		return "list"
	case "struct", "ptr":
		return "object"
	}
	return k
}

func (c *Compare) check(path string, trait bool) error {
	if trait {
		if c.Property != "" {
			return invalid(path, "has no member \"property\"; a trait is named by \"name\"")
		}
		if strings.TrimSpace(c.Name) == "" || len(c.Name) > 200 {
			return invalid(path+".name", "must name a trait")
		}
	} else {
		if c.Name != "" {
			return invalid(path, "has no member \"name\"; an event property is named by \"property\"")
		}
		if strings.TrimSpace(c.Property) == "" || len(c.Property) > 200 || strings.ContainsAny(c.Property, "\"\\") {
			return invalid(path+".property", "must name a property, without quotes or backslashes")
		}
	}
	needs := func(value, values, days bool) error {
		switch {
		case !value && c.Value != nil:
			return invalid(path+".value", "is not used by %s", c.Op)
		case !values && c.Values != nil:
			return invalid(path+".values", "is not used by %s", c.Op)
		case !days && c.Days != 0:
			return invalid(path+".days", "is not used by %s", c.Op)
		}
		return nil
	}
	switch c.Op {
	case Equals:
		switch c.Value.(type) {
		case string, float64, bool:
		default:
			return invalid(path+".value", "must be text, a number, true or false")
		}
		return needs(true, false, false)
	case Contains:
		if s, ok := c.Value.(string); !ok || s == "" {
			return invalid(path+".value", "must be some text")
		}
		return needs(true, false, false)
	case In:
		if len(c.Values) == 0 || len(c.Values) > maxIn {
			return invalid(path+".values", "must list 1 to %d values", maxIn)
		}
		for i, v := range c.Values {
			switch v.(type) {
			case string, float64:
			default:
				return invalid(fmt.Sprintf("%s.values[%d]", path, i), "must be text or a number")
			}
		}
		return needs(false, true, false)
	case Greater, GreaterOrEqual, Less, LessOrEqual:
		if f, ok := c.Value.(float64); !ok || math.IsInf(f, 0) {
			return invalid(path+".value", "must be a number")
		}
		return needs(true, false, false)
	case Exists:
		return needs(false, false, false)
	case Before, After:
		if s, ok := c.Value.(string); !ok || !isDay(s) {
			return invalid(path+".value", "must be a date, YYYY-MM-DD")
		}
		return needs(true, false, false)
	case WithinLastDays:
		if c.Days < 1 || c.Days > maxDays {
			return invalid(path+".days", "must be between 1 and %d", maxDays)
		}
		return needs(false, false, true)
	case "":
		return invalid(path+".op", "is missing")
	}
	return invalid(path+".op", "%q is not a comparison; use equals, contains, in, gt, gte, lt, lte, exists, before, after or within_last_days", c.Op)
}

func isDay(s string) bool {
	if !dayPattern.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func (e *Event) check(path string) error {
	if strings.TrimSpace(e.Name) == "" || len(e.Name) > 200 {
		return invalid(path+".name", "must name an event")
	}
	if len(e.Where) > maxWhere {
		return invalid(path+".where", "has more than %d filters", maxWhere)
	}
	for i := range e.Where {
		if err := e.Where[i].check(fmt.Sprintf("%s.where[%d]", path, i), false); err != nil {
			return err
		}
	}
	if c := e.Count; c != nil {
		if c.Op != "at_least" && c.Op != "at_most" && c.Op != "exactly" {
			return invalid(path+".count.op", "must be at_least, at_most or exactly")
		}
		if c.Value < 0 || c.Value > maxCount {
			return invalid(path+".count.value", "must be between 0 and %d", maxCount)
		}
	}
	if e.WithinLastDays != 0 && e.Between != nil {
		return invalid(path, "has both within_last_days and between; use one")
	}
	if e.WithinLastDays < 0 || e.WithinLastDays > maxDays {
		return invalid(path+".within_last_days", "must be between 1 and %d", maxDays)
	}
	if b := e.Between; b != nil {
		if !isDay(b.From) {
			return invalid(path+".between.from", "must be a date, YYYY-MM-DD")
		}
		if !isDay(b.To) {
			return invalid(path+".between.to", "must be a date, YYYY-MM-DD")
		}
		if b.To < b.From {
			return invalid(path+".between.to", "is before from")
		}
	}
	return nil
}

func (t *Touched) check(path string) error {
	set := 0
	for _, s := range []string{t.TouchpointID, t.CampaignID, t.Channel} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return invalid(path, "must name exactly one of touchpoint_id, campaign_id or channel")
	}
	if t.Channel != "" && !slices.Contains(channels, t.Channel) {
		return invalid(path+".channel", "must be one of %s", strings.Join(channels, ", "))
	}
	if t.WithinLastDays < 0 || t.WithinLastDays > maxDays {
		return invalid(path+".within_last_days", "must be between 1 and %d", maxDays)
	}
	return nil
}

// References returns the segments a rule uses, each once, in order.
func (r Rule) References() []string {
	var ids []string
	r.walk(func(n Rule) {
		if n.Segment != nil && !slices.Contains(ids, n.Segment.ID) {
			ids = append(ids, n.Segment.ID)
		}
	})
	return ids
}

// walk calls fn for every node of r, r first.
func (r Rule) walk(fn func(Rule)) {
	fn(r)
	for _, c := range r.And {
		c.walk(fn)
	}
	for _, c := range r.Or {
		c.walk(fn)
	}
	if r.Not != nil {
		r.Not.walk(fn)
	}
}

// walkPaths calls fn for every node of r with its path from the root, as errors name it.
func (r Rule) walkPaths(path string, fn func(n Rule, path string)) {
	fn(r, path)
	for i, c := range r.And {
		c.walkPaths(fmt.Sprintf("%s.and[%d]", path, i), fn)
	}
	for i, c := range r.Or {
		c.walkPaths(fmt.Sprintf("%s.or[%d]", path, i), fn)
	}
	if r.Not != nil {
		r.Not.walkPaths(path+".not", fn)
	}
}

// windowed reports whether a rule has a condition over the last so many days, whose truth changes with time.
func (r Rule) windowed() bool {
	found := false
	r.walk(func(n Rule) {
		switch {
		case n.Event != nil && n.Event.WithinLastDays > 0, n.Touched != nil && n.Touched.WithinLastDays > 0,
			n.Trait != nil && n.Trait.Op == WithinLastDays:
			found = true
		}
	})
	return found
}

func marshalRule(r Rule) ([]byte, error) { return json.Marshal(r) }

// listRule is the rule of a list segment.
func listRule(segment string) Rule { return Rule{list: segment} }

// dayStart is the start of the day (UTC) a date names.
func dayStart(day string) time.Time {
	t, _ := time.Parse(time.DateOnly, day)
	return t
}
