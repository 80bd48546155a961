package identity

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/hearth-cdp/hearth"
	"github.com/nyaruka/phonenumbers"
)

// builtinSources are where the built-in types are read from an event, in the order of precedence: when an
// event holds more values of a type than its limit, the first ones are kept. The external ids (type "")
// are each of the type they name.
var builtinSources = []struct {
	path string
	typ  Type
}{
	{"userId", UserID},
	{"anonymousId", AnonymousID},
	{"traits.email", Email},
	{"traits.phone", Phone},
	{"traits.mobile", Phone},
	{"context.traits.email", Email},
	{"context.traits.phone", Phone},
	{"context.traits.mobile", Phone},
	{"context.externalIds", ""},
	{"context.device.id", DeviceID},
}

// externalAliases are other names that context.externalIds entries give the built-in types.
var externalAliases = map[string]Type{"userid": UserID, "anonymousid": AnonymousID, "deviceid": DeviceID, "mobile": Phone}

// maxExternalIDs is how many entries of context.externalIds are read; the rest are ignored.
const maxExternalIDs = 32

// compiled is what Rules hold: the settings made ready for use.
type compiled struct {
	settings     Settings
	types        []typeRule // in priority order
	index        map[Type]int
	region       string
	cnMobile     *cnMobile // when the region is CN
	callingCodes map[int]bool
	root         node
	slotTypes    []int // the type of each slot: the index in types; -1 for the external ids
	extTypes     map[string]int
}

// node is a member of an event that is read: an object whose members are read, or a value read into a slot.
type node struct {
	name []byte
	kids []node
	slot int // -1 for an object
}

// find finds the member whose name is a JSON string, matched without regard to ASCII case.
func (n *node) find(quoted []byte, scratch []byte) *node {
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		name, _ = jsontext.AppendUnquote(scratch[:0], quoted)
	}
	for i := range n.kids {
		if equalFoldASCII(n.kids[i].name, name) {
			return &n.kids[i]
		}
	}
	return nil
}

func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x != y {
			if 'A' <= x && x <= 'Z' {
				x += 'a' - 'A'
			}
			if 'A' <= y && y <= 'Z' {
				y += 'a' - 'A'
			}
			if x != y {
				return false
			}
		}
	}
	return true
}

// add adds the path of a slot.
func (n *node) add(path string, slot int) {
	name, rest, more := strings.Cut(path, ".")
	var kid *node
	for i := range n.kids {
		if equalFoldASCII(n.kids[i].name, []byte(name)) {
			kid = &n.kids[i]
		}
	}
	if kid == nil {
		n.kids = append(n.kids, node{name: []byte(name), slot: -1})
		kid = &n.kids[len(n.kids)-1]
	}
	if more {
		kid.add(rest, slot)
	} else {
		kid.slot = slot
	}
}

// compile makes valid settings ready for use.
func compile(s Settings) *compiled {
	c := &compiled{index: map[Type]int{}, region: s.PhoneRegion, extTypes: map[string]int{}, root: node{slot: -1},
		callingCodes: phonenumbers.GetSupportedCallingCodes()}
	c.settings = Rules{&compiled{settings: s}}.Settings() // a copy
	if s.PhoneRegion == "CN" {
		c.cnMobile = newCNMobile()
	}
	for i, tr := range s.Types {
		c.index[tr.Type] = i
		c.extTypes[string(tr.Type)] = i
		c.types = append(c.types, typeRule{typ: tr.Type, limit: tr.Limit, kind: kindOf(tr.Type), junk: map[string]struct{}{}})
	}
	for alias, t := range externalAliases {
		if i, ok := c.index[t]; ok {
			c.extTypes[alias] = i
		}
	}
	for i, tr := range s.Types {
		ct := &c.types[i]
		for _, j := range tr.Junk {
			j = strings.ToLower(string(trim([]byte(j))))
			switch {
			case j == repeatedEntry:
				ct.repeated = true
			case strings.Contains(j, "*"):
				ct.globs = append(ct.globs, strings.Split(j, "*"))
			default:
				ct.junk[j] = struct{}{}
			}
		}
		// An entry is also matched as it normalises, so that 138 0013 8000 matches 13800138000.
		for _, j := range tr.Junk {
			if strings.Contains(j, "*") || j == repeatedEntry {
				continue
			}
			if v := trim([]byte(j)); len(v) > 0 && clean(v) {
				if v, ok := c.appendValue(nil, ct.kind, v); ok {
					ct.junk[string(appendLower(nil, v))] = struct{}{}
				}
			}
		}
	}
	// The slots, in the order of precedence: the built-in places, then each type's fields.
	for _, src := range builtinSources {
		ti := -1
		if src.typ != "" {
			var ok bool
			if ti, ok = c.index[src.typ]; !ok {
				continue
			}
		}
		c.root.add(src.path, len(c.slotTypes))
		c.slotTypes = append(c.slotTypes, ti)
	}
	for i, tr := range s.Types {
		for _, f := range tr.Fields {
			c.root.add(f, len(c.slotTypes))
			c.slotTypes = append(c.slotTypes, i)
		}
	}
	return c
}

// Extraction is what an event holds of identifiers: those it has, and the values it has that are not.
// Extract reuses its slices.
type Extraction struct {
	// Identifiers are the event's identifiers, normalised, each once, in priority order of their types and
	// in the order of precedence of where they were read within a type.
	Identifiers []Identifier
	// Refused are the values that are not identifiers, for counting: never the values themselves.
	// Empty values and nulls are absent, not refused.
	Refused []Refusal
}

// Refusal is a value of an event that is not an identifier, and why.
type Refusal struct {
	Type   Type
	Reason Reason
}

// FromEvent returns the identifiers of an event, a payload in Segment's shape as the event log keeps it
// (see Extract).
func (r Rules) FromEvent(payload []byte) ([]Identifier, error) {
	var x Extraction
	err := r.extract(&x, payload, false)
	return x.Identifiers, err
}

// Extract reads the identifiers of an event, a payload in Segment's shape as the event log keeps it, into
// x, and the values that are not identifiers. It reads, of the rules' types:
//
//   - userId as user_id, anonymousId as anonymous_id;
//   - traits.email, then context.traits.email as email;
//   - traits.phone, traits.mobile, then context.traits.phone and context.traits.mobile as phone;
//   - context.externalIds, [{"type": "wechat_openid", "id": "…"}, …]: each as the type it names (a type of
//     the rules, or userId, anonymousId, deviceId or mobile, without regard to case);
//   - context.device.id as device_id;
//   - then each type's fields.
//
// Member names are matched without regard to ASCII case; where a name repeats, the last one counts. Ids may
// be JSON strings or numbers. A type's values beyond its limit are refused (OverLimit), the first kept. The
// error, for a payload that is not a JSON object, is an Invalid *hearth.Error; x then holds nothing.
func (r Rules) Extract(x *Extraction, payload []byte) error {
	return r.extract(x, payload, true)
}

func (r Rules) extract(x *Extraction, payload []byte, refusals bool) error {
	x.Identifiers, x.Refused = x.Identifiers[:0], x.Refused[:0]
	if r.c == nil {
		return nil
	}
	w := walkers.Get().(*walker)
	defer walkers.Put(w)
	if err := w.read(r.c, payload); err != nil {
		return &hearth.Error{Kind: hearth.Invalid, Op: "identity.extract", Msg: "The event is not a JSON object.", Err: err}
	}
	w.identify(r.c, x, refusals)
	return nil
}

// span is where a value lies in a payload, payload[start:end]; the zero span is none.
type span struct{ start, end int }

// external is an entry of context.externalIds: its type (an index in the rules' types) and its id.
type external struct {
	ti int
	id span
}

// found is an identifier found: its type, and where its value lies in the walker's out.
type found struct {
	ti         int
	start, end int
}

// walker reads events. Walkers are recycled, with their buffers.
type walker struct {
	dec       jsontext.Decoder
	buf       bytes.Buffer
	data      []byte
	slots     []span
	externals []external
	scratch   []byte
	out       []byte
	found     []found
}

var walkers = sync.Pool{New: func() any { return new(walker) }}

var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// read reads a payload, finding the values in the slots.
func (w *walker) read(c *compiled, data []byte) error {
	w.data = data
	w.buf = *bytes.NewBuffer(data) // the decoder reads a bytes.Buffer in place, without copying
	w.dec.Reset(&w.buf, decodeOptions...)
	w.slots = append(w.slots[:0], make([]span, len(c.slotTypes))...)
	w.externals = w.externals[:0]
	if w.dec.PeekKind() != '{' {
		if _, err := w.dec.ReadValue(); err != nil {
			return err
		}
		return errNotObject
	}
	if err := w.object(c, &c.root); err != nil {
		return err
	}
	if _, err := w.dec.ReadToken(); err != io.EOF {
		return errTrailing
	}
	return nil
}

type walkError string

func (e walkError) Error() string { return string(e) }

const (
	errNotObject walkError = "identity: the event is not a JSON object"
	errTrailing  walkError = "identity: data after the event"
)

// value reads the next value and returns where it lies.
func (w *walker) value() (span, error) {
	v, err := w.dec.ReadValue()
	if err != nil {
		return span{}, err
	}
	end := int(w.dec.InputOffset())
	return span{end - len(v), end}, nil
}

// object reads the next value, an object whose members n names; anything else is skipped.
func (w *walker) object(c *compiled, n *node) error {
	if w.dec.PeekKind() != '{' {
		return w.dec.SkipValue()
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return err
	}
	for w.dec.PeekKind() != '}' {
		name, err := w.dec.ReadValue()
		if err != nil {
			return err
		}
		kid := n.find(name, w.scratch)
		switch {
		case kid == nil:
			err = w.dec.SkipValue()
		case kid.slot < 0:
			err = w.object(c, kid)
		case c.slotTypes[kid.slot] < 0:
			err = w.externalIDs(c)
		default:
			w.slots[kid.slot], err = w.value()
		}
		if err != nil {
			return err
		}
	}
	_, err := w.dec.ReadToken()
	return err
}

// externalIDs reads the next value, an array of {"type": …, "id": …}; anything else is skipped.
func (w *walker) externalIDs(c *compiled) error {
	if w.dec.PeekKind() != '[' {
		return w.dec.SkipValue()
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return err
	}
	for w.dec.PeekKind() != ']' {
		if w.dec.PeekKind() != '{' || len(w.externals) == maxExternalIDs {
			if err := w.dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		if _, err := w.dec.ReadToken(); err != nil {
			return err
		}
		var typ, id span
		for w.dec.PeekKind() != '}' {
			name, err := w.dec.ReadValue()
			if err != nil {
				return err
			}
			var dst *span
			n := name[1 : len(name)-1]
			if bytes.IndexByte(n, '\\') >= 0 {
				w.scratch, _ = jsontext.AppendUnquote(w.scratch[:0], name)
				n = w.scratch
			}
			switch {
			case equalFoldASCII(n, []byte("type")):
				dst = &typ
			case equalFoldASCII(n, []byte("id")):
				dst = &id
			default:
				if err := w.dec.SkipValue(); err != nil {
					return err
				}
				continue
			}
			if *dst, err = w.value(); err != nil {
				return err
			}
		}
		if _, err := w.dec.ReadToken(); err != nil {
			return err
		}
		if typ == (span{}) || id == (span{}) || w.data[typ.start] != '"' {
			continue
		}
		var lower [maxNameLen]byte
		t := w.data[typ.start+1 : typ.end-1]
		if len(t) > len(lower) || bytes.IndexByte(t, '\\') >= 0 {
			continue // no type's name is so long, or escaped
		}
		if ti, ok := c.extTypes[string(appendLower(lower[:0], t))]; ok {
			w.externals = append(w.externals, external{ti, id})
		}
	}
	_, err := w.dec.ReadToken()
	return err
}

// identify normalises the values found into x, in order of precedence.
func (w *walker) identify(c *compiled, x *Extraction, refusals bool) {
	w.out, w.found = w.out[:0], w.found[:0]
	for slot, ti := range c.slotTypes {
		if ti < 0 {
			for _, e := range w.externals {
				w.take(c, x, e.ti, e.id, refusals)
			}
			continue
		}
		if s := w.slots[slot]; s != (span{}) {
			w.take(c, x, ti, s, refusals)
		}
	}
	// In priority order of types, keeping the order of precedence within a type.
	f := w.found
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j].ti < f[j-1].ti; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
	if len(f) == 0 {
		return
	}
	values := string(w.out)
	x.Identifiers = slices.Grow(x.Identifiers, len(f))
	for _, id := range f {
		x.Identifiers = append(x.Identifiers, Identifier{Type: c.types[id.ti].typ, Value: values[id.start:id.end]})
	}
}

// take normalises a value found, a JSON value, as an identifier of the ti'th type.
func (w *walker) take(c *compiled, x *Extraction, ti int, s span, refusals bool) {
	raw := w.data[s.start:s.end]
	var reason Reason
	switch raw[0] {
	case 'n': // null
		return
	case '"':
		text := raw[1 : len(raw)-1]
		if bytes.IndexByte(text, '\\') >= 0 || !utf8.Valid(text) {
			text, _ = jsontext.AppendUnquote(w.scratch[:0], raw) // invalid UTF-8 becomes U+FFFD
			w.scratch = text
		}
		reason = w.normalize(c, ti, text)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if c.types[ti].kind == kindEmail {
			reason = Malformed
		} else {
			reason = w.normalize(c, ti, raw)
		}
	default:
		reason = Malformed
	}
	if reason != 0 && reason != reasonEmpty && refusals {
		x.Refused = append(x.Refused, Refusal{Type: c.types[ti].typ, Reason: reason})
	}
}

// normalize appends the normalised value to out and notes it as found, unless it is not an identifier, or
// found already, or one over the type's limit.
func (w *walker) normalize(c *compiled, ti int, text []byte) Reason {
	start := len(w.out)
	var reason Reason
	if w.out, reason = c.appendNormalized(w.out, ti, text); reason != 0 {
		return reason
	}
	v := w.out[start:]
	n := 0
	for _, f := range w.found {
		if f.ti == ti {
			if string(w.out[f.start:f.end]) == string(v) {
				w.out = w.out[:start]
				return 0
			}
			n++
		}
	}
	if n >= c.types[ti].limit {
		w.out = w.out[:start]
		return OverLimit
	}
	w.found = append(w.found, found{ti, start, len(w.out)})
	return 0
}
