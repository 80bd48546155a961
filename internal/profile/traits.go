package profile

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
)

// config is Settings compiled for the processor.
type config struct {
	mappings   map[string]*Mapping       // by source id
	rules      map[string]TraitRule      // by trait
	rank       map[string]map[string]int // trait → source → rank, for source_priority
	activation map[string]bool           // event names
	conversion map[string]bool           // event names
	fromProps  map[string]bool           // sources with a mapping from properties
}

func compileSettings(s Settings) *config {
	c := &config{mappings: map[string]*Mapping{}, rules: map[string]TraitRule{}, rank: map[string]map[string]int{},
		activation: map[string]bool{}, conversion: map[string]bool{}, fromProps: map[string]bool{}}
	for i := range s.Mappings {
		m := &s.Mappings[i]
		c.mappings[m.SourceID] = m
		for _, f := range m.Fields {
			if strings.HasPrefix(f.From, "properties.") {
				c.fromProps[m.SourceID] = true
			}
		}
	}
	for _, t := range s.Traits {
		c.rules[t.Name] = t
		if t.Precedence == SourcePriority {
			c.rank[t.Name] = map[string]int{}
			for i, src := range t.Sources {
				if _, dup := c.rank[t.Name][src]; !dup {
					c.rank[t.Name][src] = i
				}
			}
		}
	}
	for _, e := range s.Lifecycle.ActivationEvents {
		c.activation[e] = true
	}
	for _, e := range s.Lifecycle.ConversionEvents {
		c.conversion[e] = true
	}
	return c
}

// eventFields are the parts of an event that traits come from.
type eventFields struct {
	Traits     map[string]json.RawMessage `json:"traits"`
	Properties map[string]json.RawMessage `json:"properties"`
	Context    struct {
		Traits map[string]json.RawMessage `json:"traits"`
	} `json:"context"`
}

// traitsOf returns the traits an event sets, mapped by its source's mapping, in a stable order: the
// identify's traits over context.traits for the same name, then the consent that WeChat follow events say.
func (c *config) traitsOf(e collect.Event) []Trait {
	m := c.mappings[e.SourceID]
	wantProps := c.fromProps[e.SourceID]
	consent := ""
	switch e.Name {
	case collect.WeChatFollowed:
		consent = "true"
	case collect.WeChatUnfollowed:
		consent = "false"
	}
	if !bytes.Contains(e.Payload, []byte(`"traits"`)) && !wantProps && consent == "" {
		return nil
	}
	var f eventFields
	if err := json.Unmarshal(e.Payload, &f); err != nil {
		return nil // the collector checked the payload; one it did not is no one's traits
	}
	raw := f.Context.Traits
	if raw == nil {
		raw = map[string]json.RawMessage{}
	}
	for k, v := range f.Traits {
		raw[k] = v
	}
	var out []Trait
	add := func(name string, v json.RawMessage) {
		if len(out) >= maxTraitsPerEvent || !validTraitName(name) {
			return
		}
		v = bytes.TrimSpace(v)
		if len(v) == 0 || len(v) > maxTraitValue || bytes.Equal(v, []byte("null")) {
			return // null says nothing: a trait is never removed by an event
		}
		out = append(out, Trait{Name: name, Value: v, SourceID: e.SourceID, Seq: e.Seq, At: e.Timestamp})
	}
	mapped := map[string]bool{}
	if m != nil {
		for _, fm := range m.Fields {
			var v json.RawMessage
			var ok bool
			if rest, isProp := strings.CutPrefix(fm.From, "properties."); isProp {
				v, ok = lookup(f.Properties, rest)
			} else {
				v, ok = lookup(raw, fm.From)
				mapped[strings.SplitN(fm.From, ".", 2)[0]] = true
			}
			if !ok || fm.To == "" {
				continue
			}
			if v, ok = convert(v, fm); ok {
				add(fm.To, v)
			}
		}
	}
	if m == nil || !m.Only {
		for _, k := range sortedNames(raw) {
			if !mapped[k] {
				add(k, raw[k])
			}
		}
	}
	if consent != "" {
		add(WeChatSubscribed, json.RawMessage(consent))
	}
	return out
}

func sortedNames(m map[string]json.RawMessage) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	// Insertion sort: an event has a handful of traits.
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	return names
}

// lookup finds a dotted path in an object.
func lookup(obj map[string]json.RawMessage, path string) (json.RawMessage, bool) {
	for {
		name, rest, nested := strings.Cut(path, ".")
		v, ok := obj[name]
		if !ok {
			return nil, false
		}
		if !nested {
			return v, true
		}
		obj = nil
		if json.Unmarshal(v, &obj) != nil || obj == nil {
			return nil, false
		}
		path = rest
	}
}

// convert applies a field map's value map and type to a raw value.
func convert(v json.RawMessage, fm FieldMap) (json.RawMessage, bool) {
	v = bytes.TrimSpace(v)
	if len(fm.Values) > 0 {
		if mv, ok := fm.Values[rawText(v)]; ok {
			b, err := json.Marshal(mv)
			if err != nil {
				return nil, false
			}
			v = b
		}
	}
	switch fm.Type {
	case "":
		return v, true
	case "string":
		if v[0] == '"' {
			return v, true
		}
		if v[0] == '{' || v[0] == '[' || string(v) == "null" {
			return nil, false
		}
		b, _ := json.Marshal(string(v))
		return b, true
	case "number":
		s := rawText(v)
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v[0] == '{' || v[0] == '[' {
			return nil, false
		}
		return json.RawMessage(strconv.FormatFloat(f, 'f', -1, 64)), true
	case "boolean":
		switch strings.ToLower(strings.TrimSpace(rawText(v))) {
		case "true", "1", "yes", "y", "on", "是":
			return json.RawMessage("true"), true
		case "false", "0", "no", "n", "off", "否":
			return json.RawMessage("false"), true
		}
		return nil, false
	case "date":
		if d, ok := parseDate(rawText(v)); ok {
			b, _ := json.Marshal(d)
			return b, true
		}
		return nil, false
	}
	return nil, false
}

// rawText is a JSON value as text: a string's contents, or the literal of a number or boolean.
func rawText(v json.RawMessage) string {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

// parseDate reads the dates forms and CRMs send, as YYYY-MM-DD.
func parseDate(s string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02", "2006/01/02", "2006.01.02", "20060102", "2006-1-2", "2006/1/2", "2006年1月2日"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("2006-01-02"), true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		if n > 1e11 { // milliseconds
			n /= 1000
		}
		return time.Unix(n, 0).UTC().Format("2006-01-02"), true
	}
	return "", false
}

// wins says whether a new value of a trait replaces the old under the trait's rule.
func (c *config) wins(old, new Trait) bool {
	rule := c.rules[new.Name]
	later := new.At.After(old.At) || new.At.Equal(old.At) && new.Seq >= old.Seq
	switch rule.Precedence {
	case FirstSeen:
		return !later
	case SourcePriority:
		ranks := c.rank[new.Name]
		rn, okn := ranks[new.SourceID]
		ro, oko := ranks[old.SourceID]
		switch {
		case okn && (!oko || rn < ro):
			return true
		case oko && (!okn || ro < rn):
			return false
		}
	}
	return later
}

// stepsOf is each lifecycle rule that a profile's facts meet.
func stepsOf(counts map[identity.Type]int, traits map[string]Trait, activatedAt, convertedAt time.Time) Steps {
	s := Steps{Activated: !activatedAt.IsZero(), Converted: !convertedAt.IsZero()}
	for t, n := range counts {
		if n > 0 {
			s.Identified = s.Identified || identifies(t)
			s.Connected = s.Connected || reaches(t, traits)
		}
	}
	return s
}

// identifies says whether an identifier of the type identifies a person: any beyond a device's.
func identifies(t identity.Type) bool { return t != identity.AnonymousID && t != identity.DeviceID }

// reaches says whether an identifier of the type is a channel to the person, given their consent traits
// (one false is an opt-out).
func reaches(t identity.Type, traits map[string]Trait) bool {
	var consent string
	switch t {
	case identity.Email:
		consent = EmailSubscribed
	case identity.Phone:
		consent = SMSSubscribed
	case identity.WeChatOpenID:
		consent = WeChatSubscribed
	default:
		return false
	}
	return !bytes.Equal(traits[consent].Value, []byte("false"))
}

// displayName is the name a profile is listed by: the name trait, or first and last names.
func displayName(traits map[string]Trait) string {
	text := func(name string) string {
		t, ok := traits[name]
		if !ok || len(t.Value) == 0 || t.Value[0] != '"' {
			return ""
		}
		return strings.TrimSpace(rawText(t.Value))
	}
	if n := text("name"); n != "" {
		return clipRunes(n, 200)
	}
	return clipRunes(strings.TrimSpace(text("first_name")+" "+text("last_name")), 200)
}

// NameKey folds a name for prefix search: lower case, without spaces.
func NameKey(name string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\u3000' {
			return -1
		}
		return r
	}, strings.ToLower(name))
}

func clipRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
