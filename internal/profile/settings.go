package profile

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/identity"
)

// Settings are what an admin configures of profiles beyond identity resolution: how each source's fields map
// onto traits, which value of a trait wins, and the lifecycle rules (docs/identity.md).
type Settings struct {
	Mappings  []Mapping   `json:"mappings"`
	Traits    []TraitRule `json:"traits"`
	Lifecycle Lifecycle   `json:"lifecycle"`
}

// Mapping says how one source's raw fields become traits. A field not mapped becomes the trait of its own
// name, unless Only is set.
type Mapping struct {
	SourceID string     `json:"source_id"`
	Fields   []FieldMap `json:"fields"`
	Only     bool       `json:"only,omitempty"` // keep only mapped fields
}

// FieldMap maps one raw field onto a trait.
type FieldMap struct {
	// From is a dotted path in the event's traits (an identify's traits, or any event's context.traits),
	// such as nickname or address.city; or in its properties, written properties.mobile.
	From string `json:"from"`
	// To is the trait; empty drops the field.
	To string `json:"to,omitempty"`
	// Type coerces the value: string, number, boolean or date (written YYYY-MM-DD); empty keeps it as sent.
	// A value that does not convert is not kept.
	Type string `json:"type,omitempty"`
	// Values maps raw values (written as text: 1, true, M) onto the trait's value, such as WeChat's sex 1
	// and 2 onto male and female. A raw value not listed is kept as sent.
	Values map[string]any `json:"values,omitempty"`
}

// TraitRule says which value of a trait wins when events disagree.
type TraitRule struct {
	Name       string     `json:"name"`
	Precedence Precedence `json:"precedence"`
	Sources    []string   `json:"sources,omitempty"` // for source_priority: the source ids, strongest first
}

// Precedence is how a trait's winning value is chosen.
type Precedence string

const (
	MostRecent     Precedence = "most_recent"     // the value of the latest event (the default)
	FirstSeen      Precedence = "first_seen"      // the value of the earliest event
	SourcePriority Precedence = "source_priority" // the value of the strongest source, the latest of it
)

// Lifecycle are the rules of the stages beyond identified and connected, which are fixed: identified is an
// identifier beyond an anonymous or device id; connected, a reachable channel.
type Lifecycle struct {
	// ActivationEvents are the track events that make a person activated: their engagement.
	ActivationEvents []string `json:"activation_events"`
	// ConversionEvents are the track events that make a person converted.
	ConversionEvents []string `json:"conversion_events"`
}

// DefaultSettings are the settings of a new Hearth: no mappings (every field is the trait of its name),
// the most recent value wins, and Segment's e-commerce events for activation and conversion.
func DefaultSettings() Settings {
	return Settings{Lifecycle: Lifecycle{
		ActivationEvents: []string{"Product Viewed", "Product Added", "Checkout Started", "Form Submitted", "Signed Up"},
		ConversionEvents: []string{"Order Completed"},
	}}
}

// The limits of settings and of what one event may set.
const (
	maxMappings        = 200
	maxFieldMaps       = 200
	maxTraitRules      = 500
	maxLifecycleEvents = 100
	maxTraitName       = 64
	maxPathDepth       = 6
	maxTraitsPerEvent  = 100
	maxTraitValue      = 4096 // bytes of JSON
)

// consent traits say that a person opted out of a channel when false.
const (
	EmailSubscribed  = "email_subscribed"
	SMSSubscribed    = "sms_subscribed"
	WeChatSubscribed = "wechat_subscribed"
)

// Validate reports every problem of the settings at once, each naming its place.
func (s Settings) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(s.Mappings) > maxMappings {
		add("mappings: at most %d sources", maxMappings)
	}
	seen := map[string]bool{}
	for i, m := range s.Mappings {
		where := fmt.Sprintf("mappings[%d]", i)
		if m.SourceID == "" {
			add("%s.source_id: required", where)
		} else if seen[m.SourceID] {
			add("%s.source_id: %q is mapped twice", where, m.SourceID)
		}
		seen[m.SourceID] = true
		if len(m.Fields) > maxFieldMaps {
			add("%s.fields: at most %d", where, maxFieldMaps)
		}
		for j, f := range m.Fields {
			fw := fmt.Sprintf("%s.fields[%d]", where, j)
			if msg := checkFieldPath(f.From); msg != "" {
				add("%s.from: %s", fw, msg)
			}
			if f.To != "" && !validTraitName(f.To) {
				add("%s.to: %q is not a trait name (1 to %d bytes, no dots or control characters)", fw, f.To, maxTraitName)
			}
			switch f.Type {
			case "", "string", "number", "boolean", "date":
			default:
				add("%s.type: %q is none of string, number, boolean, date", fw, f.Type)
			}
			for k, v := range f.Values {
				if b, err := json.Marshal(v); err != nil || len(b) > maxTraitValue {
					add("%s.values[%q]: not a JSON value of at most %d bytes", fw, k, maxTraitValue)
				}
			}
		}
	}
	if len(s.Traits) > maxTraitRules {
		add("traits: at most %d", maxTraitRules)
	}
	names := map[string]bool{}
	for i, t := range s.Traits {
		where := fmt.Sprintf("traits[%d]", i)
		if !validTraitName(t.Name) {
			add("%s.name: %q is not a trait name", where, t.Name)
		} else if names[t.Name] {
			add("%s.name: %q has two rules", where, t.Name)
		}
		names[t.Name] = true
		switch t.Precedence {
		case MostRecent, FirstSeen:
		case SourcePriority:
			if len(t.Sources) == 0 {
				add("%s.sources: source_priority needs the sources, strongest first", where)
			}
		default:
			add("%s.precedence: %q is none of most_recent, first_seen, source_priority", where, t.Precedence)
		}
	}
	for _, l := range []struct {
		name   string
		events []string
	}{{"activation_events", s.Lifecycle.ActivationEvents}, {"conversion_events", s.Lifecycle.ConversionEvents}} {
		if len(l.events) > maxLifecycleEvents {
			add("lifecycle.%s: at most %d", l.name, maxLifecycleEvents)
		}
		for i, e := range l.events {
			if strings.TrimSpace(e) == "" || len(e) > 200 {
				add("lifecycle.%s[%d]: an event name of 1 to 200 characters", l.name, i)
			}
		}
	}
	if len(problems) > 0 {
		return &hearth.Error{Kind: hearth.Invalid, Op: "profile.settings", Code: "invalid_profile_settings",
			Msg: fmt.Sprintf("The profile settings are not valid: %s.", strings.Join(problems, "; "))}
	}
	return nil
}

// validTraitName: 1 to 64 bytes of printable text without dots, which separate the parts of a path. Names
// in any script are fine (昵称).
func validTraitName(s string) bool {
	if s == "" || len(s) > maxTraitName || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if r == '.' || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func checkFieldPath(p string) string {
	if p == "" {
		return "required"
	}
	parts := strings.Split(p, ".")
	if len(parts) > maxPathDepth {
		return fmt.Sprintf("at most %d levels", maxPathDepth)
	}
	if parts[0] == "properties" && len(parts) == 1 {
		return "properties needs a field: properties.NAME"
	}
	if slices.Contains(parts, "") {
		return fmt.Sprintf("%q has an empty part", p)
	}
	return ""
}

// ParseSettings reads settings as JSON and checks them; absent members take their defaults.
func ParseSettings(data []byte) (Settings, error) {
	s := DefaultSettings()
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return s, &hearth.Error{Kind: hearth.Invalid, Op: "profile.settings", Code: "invalid_profile_settings",
			Msg: fmt.Sprintf("The profile settings are not valid JSON of the expected shape: %s.", identity.JSONProblem(err)), Err: err}
	}
	return s, s.Validate()
}
