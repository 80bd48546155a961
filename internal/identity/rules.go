package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/nyaruka/phonenumbers"
)

// Settings are the identity rules as an admin edits them (in settings, later in the console). NewRules
// checks and compiles them into Rules.
type Settings struct {
	// Types are the types of identifier that Hearth reads, in priority order: the first is the strongest.
	// A built-in type left out is not read at all.
	Types []TypeRule
	// PhoneRegion is the region (ISO 3166 code, such as CN) of phone numbers written without a country code.
	PhoneRegion string
}

// TypeRule is what the rules say of one type.
type TypeRule struct {
	Type Type
	// Limit is how many identifiers of the type one profile may hold.
	Limit int
	// Junk are values that are never identifiers of the type, matched without regard to case against the
	// value as written (trimmed) and as normalised, so that a phone entry 13800138000 also refuses
	// +86 138 0013 8000. "*" in an entry matches any run of characters in the normalised value (noreply@*,
	// +86170*); the entry {repeated} matches a value that is one character repeated, such as 0000 (separators
	// aside), or a phone number whose digits after the country code are all one digit.
	Junk []string
	// Fields are where in an event the type's values are, as dotted paths under traits, context or
	// properties, such as traits.member_no. Built-in types are read from their own places (see FromEvent)
	// and from these as well. Every type is also read from context.externalIds entries of its name.
	Fields []string
}

// The limits of the rules themselves.
const (
	maxTypes      = 32
	maxLimit      = 10_000
	maxJunk       = 1000
	maxJunkLen    = 255
	maxFields     = 16
	maxFieldDepth = 6
	maxNameLen    = 64
	repeatedEntry = "{repeated}"
)

// commonJunk are the values that are junk whatever the type: what forms, SDKs and spreadsheets send when
// they have nothing.
var commonJunk = []string{"", "null", "nil", "undefined", "none", "0", "-1", "anonymous", "unknown", "test", "n/a",
	"[object object]", "nan", "true", "false", "guest", "00000000-0000-0000-0000-000000000000"}

// typeJunk are the junk values of each built-in type besides the common ones.
var typeJunk = map[Type][]string{
	Email: {"test@test.com", "a@a.com", "aa@aa.com", "abc@abc.com", "x@x.com", "xxx@xxx.com", "email@email.com",
		"user@domain.com", "name@domain.com", "your@email.com", "youremail@*", "noreply@*", "no-reply@*", "no_reply@*",
		"donotreply@*", "do-not-reply@*", "test@*", "*@test.com", "*.test", "*.invalid", "*.example", "*.localhost"},
	// 13800138000 is the number Chinese forms and documents give as an example, as 555 numbers are in the US.
	Phone:         {repeatedEntry, "13800138000"},
	AnonymousID:   {repeatedEntry},
	WeChatOpenID:  {repeatedEntry},
	WeChatUnionID: {repeatedEntry},
	// 9774d56d682e549c is the ANDROID_ID that many devices of Android 2.2 share.
	DeviceID: {repeatedEntry, "9774d56d682e549c"},
}

// defaultLimits are the built-in types' limits in one profile.
var defaultLimits = map[Type]int{UserID: 1, WeChatUnionID: 1, Email: 5, Phone: 5, WeChatOpenID: 5, DeviceID: 10, AnonymousID: 100}

// DefaultPhoneRegion is the default region of phone numbers without a country code.
const DefaultPhoneRegion = "CN"

// DefaultJunk returns the default junk list of a type: the common junk values and the type's own.
func DefaultJunk(t Type) []string {
	return slices.Concat(commonJunk, typeJunk[t])
}

// DefaultSettings returns the default rules: the built-in types in the default priority order, with their
// default limits and junk lists, and phone numbers in China by default.
func DefaultSettings() Settings {
	s := Settings{PhoneRegion: DefaultPhoneRegion}
	for _, t := range builtinTypes {
		s.Types = append(s.Types, TypeRule{Type: t, Limit: defaultLimits[t], Junk: DefaultJunk(t)})
	}
	return s
}

// Problem is one thing wrong with rules: the setting, and what is wrong with it in words for the admin.
type Problem struct {
	Field string // such as types[2].limit
	Msg   string
}

func (p Problem) Error() string { return p.Field + ": " + p.Msg }

// Problems returns the problems that an error of Validate, NewRules or ParseRules lists.
func Problems(err error) []Problem {
	var ps problemList
	if errors.As(err, &ps) {
		return slices.Clone(ps)
	}
	return nil
}

// problemList is the operator's side of the error that lists problems: they are in its message already.
type problemList []Problem

func (ps problemList) Error() string { return fmt.Sprintf("%d problems", len(ps)) }

const opRules = "identity.rules"

// invalid returns the one error that lists the problems, an Invalid *hearth.Error, or nil for none.
func invalid(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return &hearth.Error{Kind: hearth.Invalid, Op: opRules, Code: "invalid_identity_rules",
		Msg: "The identity rules are not valid: " + strings.Join(msgs, "; ") + ".", Err: problemList(ps)}
}

var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// fieldRoots are where custom fields may be.
var fieldRoots = []string{"traits", "context", "properties"}

// Validate reports every problem of the rules at once, as one Invalid *hearth.Error; Problems lists them.
func (s Settings) Validate() error {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(s.Types) == 0 {
		add("types", "list at least one type of identifier")
	}
	if len(s.Types) > maxTypes {
		add("types", "at most %d types of identifier may be listed (got %d)", maxTypes, len(s.Types))
	}
	// Where each path is read: the built-in places, then each type's fields.
	type reader struct{ path, by string } // a lower-cased path, and what reads it
	var paths []reader
	for _, src := range builtinSources {
		by := "the built-in " + string(src.typ)
		if src.typ == "" {
			by = "the built-in external ids"
		}
		paths = append(paths, reader{strings.ToLower(src.path), by})
	}
	seen := map[Type]int{}
	for i, tr := range s.Types {
		at := fmt.Sprintf("types[%d]", i)
		switch {
		case tr.Type == "":
			add(at+".type", "name the type")
		case len(tr.Type) > maxNameLen || !typeName.MatchString(string(tr.Type)):
			add(at+".type", "%q is not a type name: lower-case letters, digits and _, starting with a letter, at most %d characters", clip(string(tr.Type)), maxNameLen)
		default:
			if j, dup := seen[tr.Type]; dup {
				add(at+".type", "%s is listed twice (also as types[%d])", tr.Type, j)
			} else {
				seen[tr.Type] = i
			}
		}
		if tr.Type != "" {
			at = fmt.Sprintf("types[%d] (%s)", i, clip(string(tr.Type)))
		}
		if tr.Limit < 1 || tr.Limit > maxLimit {
			add(at+".limit", "the limit per profile must be from 1 to %d (got %d)", maxLimit, tr.Limit)
		}
		if len(tr.Junk) > maxJunk {
			add(at+".junk", "at most %d junk values may be listed (got %d)", maxJunk, len(tr.Junk))
		}
		for j, v := range tr.Junk {
			switch {
			case utf8.RuneCountInString(v) > maxJunkLen || !utf8.ValidString(v) || hasControl(v):
				add(fmt.Sprintf("%s.junk[%d]", at, j), "a junk value must be text of at most %d characters without control characters", maxJunkLen)
			case v != "" && strings.Trim(v, "*") == "":
				add(fmt.Sprintf("%s.junk[%d]", at, j), "%q would make every value junk", v)
			}
		}
		if len(tr.Fields) > maxFields {
			add(at+".fields", "at most %d fields may be listed (got %d)", maxFields, len(tr.Fields))
		}
		for j, f := range tr.Fields {
			field := fmt.Sprintf("%s.fields[%d]", at, j)
			if msg := checkPath(f); msg != "" {
				add(field, "%s", msg)
				continue
			}
			lower := strings.ToLower(f)
			clash := false
			for _, p := range paths {
				switch {
				case p.path == lower:
					add(field, "%s is already read, by %s", clip(f), p.by)
				case strings.HasPrefix(p.path, lower+".") || strings.HasPrefix(lower, p.path+"."):
					add(field, "%s overlaps %s, read by %s", clip(f), p.path, p.by)
				default:
					continue
				}
				clash = true
				break
			}
			if !clash {
				paths = append(paths, reader{lower, at})
			}
		}
	}
	if s.PhoneRegion == "" {
		add("phone_region", "name the region of phone numbers written without a country code, such as CN")
	} else if !phonenumbers.GetSupportedRegions()[s.PhoneRegion] {
		add("phone_region", "%q is not a region phone numbers are known for: give an ISO 3166 code in capitals, such as CN", clip(s.PhoneRegion))
	}
	return invalid(ps)
}

// checkPath checks a field path, and says what is wrong with it.
func checkPath(p string) string {
	parts := strings.Split(p, ".")
	if len(parts) < 2 || len(parts) > maxFieldDepth || !slices.Contains(fieldRoots, parts[0]) {
		return fmt.Sprintf("%q is not a field path: 2 to %d names joined by dots, starting with traits, context or properties, such as traits.member_no", clip(p), maxFieldDepth)
	}
	for _, part := range parts[1:] {
		if part == "" || len(part) > maxNameLen || !utf8.ValidString(part) || hasControl(part) || strings.ContainsAny(part, `*"\`) {
			return fmt.Sprintf("%q is not a field path: each name must be 1 to %d characters, without * \" \\ or control characters", clip(p), maxNameLen)
		}
	}
	return ""
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// clip shortens what an admin wrote for a message.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}

// Rules are the identity rules, checked and compiled: what Normalize and FromEvent apply. A Rules is
// immutable and safe for concurrent use. The zero Rules has no types: it finds no identifiers.
type Rules struct{ c *compiled }

// NewRules checks the settings and compiles them.
func NewRules(s Settings) (Rules, error) {
	if err := s.Validate(); err != nil {
		return Rules{}, err
	}
	return Rules{compile(s)}, nil
}

// DefaultRules returns the rules of DefaultSettings.
func DefaultRules() Rules {
	return Rules{compile(DefaultSettings())}
}

// Settings returns the settings the rules were made from.
func (r Rules) Settings() Settings {
	if r.c == nil {
		return Settings{}
	}
	s := r.c.settings
	s.Types = slices.Clone(s.Types)
	for i := range s.Types {
		s.Types[i].Junk = slices.Clone(s.Types[i].Junk)
		s.Types[i].Fields = slices.Clone(s.Types[i].Fields)
	}
	return s
}

// Types returns the rules' types in priority order, the strongest first.
func (r Rules) Types() []Type {
	if r.c == nil {
		return nil
	}
	ts := make([]Type, len(r.c.types))
	for i, tr := range r.c.types {
		ts[i] = tr.typ
	}
	return ts
}

// Priority returns the rank of a type in the priority order: 0 for the strongest; -1 for a type the rules
// do not have.
func (r Rules) Priority(t Type) int {
	if r.c == nil {
		return -1
	}
	if i, ok := r.c.index[t]; ok {
		return i
	}
	return -1
}

// Limit returns how many identifiers of a type one profile may hold; 0 for a type the rules do not have.
func (r Rules) Limit(t Type) int {
	if i := r.Priority(t); i >= 0 {
		return r.c.types[i].limit
	}
	return 0
}

// The rules in JSON, as settings keep them:
//
//	{"phone_region": "CN", "types": [{"type": "user_id", "limit": 1, "junk": ["null", …], "fields": [ … ]}, …]}
//
// Absent members take their defaults: types the built-in ones; a built-in type's limit and junk its
// defaults, a custom type's junk the common junk values; phone_region CN. A custom type must give a limit.
type rulesJSON struct {
	PhoneRegion *string        `json:"phone_region,omitempty"`
	Types       []typeRuleJSON `json:"types,omitempty"`
}

type typeRuleJSON struct {
	Type   string    `json:"type"`
	Limit  *int      `json:"limit,omitempty"`
	Junk   *[]string `json:"junk,omitempty"`
	Fields []string  `json:"fields,omitempty"`
}

// ParseRules reads rules in JSON (see MarshalJSON) and checks them; the error is an Invalid *hearth.Error
// that lists every problem.
func ParseRules(data []byte) (Rules, error) {
	var in rulesJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Rules{}, invalid([]Problem{{Field: "rules", Msg: "not valid JSON of identity rules: " + JSONProblem(err)}})
	}
	if dec.More() {
		return Rules{}, invalid([]Problem{{Field: "rules", Msg: "not valid JSON of identity rules: data after the rules"}})
	}
	s := DefaultSettings()
	if in.PhoneRegion != nil {
		s.PhoneRegion = *in.PhoneRegion
	}
	var ps []Problem
	if in.Types != nil {
		s.Types = make([]TypeRule, len(in.Types))
		for i, t := range in.Types {
			tr := TypeRule{Type: Type(t.Type), Fields: t.Fields}
			_, builtin := defaultLimits[tr.Type]
			switch {
			case t.Limit != nil:
				tr.Limit = *t.Limit
			case builtin:
				tr.Limit = defaultLimits[tr.Type]
			default:
				ps = append(ps, Problem{Field: fmt.Sprintf("types[%d] (%s).limit", i, clip(t.Type)), Msg: "a custom type must give its limit per profile"})
				tr.Limit = 1
			}
			if t.Junk != nil {
				tr.Junk = *t.Junk
			} else {
				tr.Junk = DefaultJunk(tr.Type)
			}
			s.Types[i] = tr
		}
	}
	if err := s.Validate(); err != nil {
		ps = append(ps, Problems(err)...)
	}
	if err := invalid(ps); err != nil {
		return Rules{}, err
	}
	return Rules{compile(s)}, nil
}

// JSONProblem words a JSON decoding error without Go's type names, for the settings that people write.
func JSONProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("a syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return typ.Field + " has the wrong type"
		}
		return "it must be a JSON object"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown member " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "the JSON ends too early"
}

// MarshalJSON writes the rules as ParseRules reads them, every member given.
func (r Rules) MarshalJSON() ([]byte, error) {
	s := r.Settings()
	out := rulesJSON{PhoneRegion: &s.PhoneRegion, Types: make([]typeRuleJSON, len(s.Types))}
	for i, tr := range s.Types {
		junk := tr.Junk
		if junk == nil {
			junk = []string{}
		}
		out.Types[i] = typeRuleJSON{Type: string(tr.Type), Limit: &tr.Limit, Junk: &junk, Fields: tr.Fields}
	}
	return json.Marshal(out)
}
