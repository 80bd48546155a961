package collect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/hearth-cdp/hearth"
)

// Event is one interaction, normalised, as the event log keeps it. Payload is the whole event in Segment's
// shape (the fields below included), so that consumers and exports see what integrators sent.
type Event struct {
	Seq         int64 // position in the event log, assigned on append
	SourceID    string
	MessageID   string
	Type        string // identify, track, page, screen, group, alias
	Name        string // the track event, or the page or screen name
	UserID      string
	AnonymousID string
	Timestamp   time.Time // when it happened, corrected for the client's clock skew
	ReceivedAt  time.Time
	Bot         bool // sent by a known bot or link scanner: kept, never counted as a person
	Payload     []byte
}

// MaxFuture is how far after its receivedAt an event may be dated, skew corrected, for clocks a little
// ahead. Later, the client's clock or time zone is wrong (a Beijing time sent as UTC is 8 hours ahead): the
// event is dated when it was received, and the client's time kept as originalTimestamp. A future time would
// put the person's last visit ahead of every later one, and their events at the top of their timeline.
const MaxFuture = 5 * time.Minute

// The event types of the Segment spec.
var eventTypes = map[string]bool{"identify": true, "track": true, "page": true, "screen": true, "group": true, "alias": true}

// Request is what the ingestion endpoint knows of the HTTP request an event came in.
type Request struct {
	ReceivedAt time.Time
	IP         string
	UserAgent  string
	// Browser says the source's events come from browsers (the snippet), so that the request's user agent
	// is the person's device. A server or app SDK's own user agent says nothing of the person.
	Browser bool
	// SentAt, Context and Integrations of a batch apply to each of its events that lacks its own.
	SentAt       json.RawMessage
	Context      json.RawMessage
	Integrations json.RawMessage
}

// reject is the reason an event is refused, in words for the integrator.
type reject string

func (r reject) Error() string { return string(r) }

// Normalize validates one raw event (typ is the endpoint's type, or "" in a batch) and returns it normalised.
// The error, when not nil, is an Invalid *hearth.Error whose message says what is wrong.
func Normalize(raw []byte, typ string, req Request, newID func() string, isBot func(string) bool) (Event, error) {
	var d decoder
	var in rawEvent
	var err error
	if d.readEvent(raw, &in) != nil {
		err = reject(describeInvalid(raw))
	} else {
		batch := d.batchFieldsOf(req)
		var ev Event
		if ev, err = normalize(&in, raw, typ, req, &batch, newID, isBot); err == nil {
			return ev, nil
		}
	}
	return Event{}, &hearth.Error{Kind: hearth.Invalid, Op: "collect.normalize", Msg: err.Error()}
}

// Reading. A request is read in one pass of a JSON tokenizer, which validates each byte once and leaves
// what is passed through (properties, traits, context, integrations) as the raw JSON it is.

// The fields of an event that are kept as raw JSON until they are normalised. The first numIDs are the
// id-like fields, in the order they are checked and encoded.
const (
	fMessageID = iota
	fAnonymousID
	fUserID
	fPreviousID
	fGroupID
	fEvent
	fName
	fCategory
	fProperties
	fTraits
	fIntegrations
	fTimestamp
	fOriginalTimestamp
	fSentAt
	numFields

	numIDs    = fCategory + 1
	fType     = numFields + 1 // the fields below are read as they arrive
	fWriteKey = numFields + 2
	fContext  = numFields + 3
	fBatch    = numFields + 4
	fIP       = numFields + 5
	fUA       = numFields + 6
	fUnknown  = -1
)

// idNames are the id-like fields' names, as the payload spells them.
var idNames = [numIDs]string{"messageId", "anonymousId", "userId", "previousId", "groupId", "event", "name", "category"}

// The kinds of object whose members are read by name. Names are matched without regard to case, as
// encoding/json matches a struct's fields.
type object int

const (
	eventObject object = iota
	batchObject
	contextObject
)

// field finds a member by its name in lower case.
func (o object) field(name []byte) int {
	switch o {
	case eventObject:
		switch string(name) {
		case "messageid":
			return fMessageID
		case "anonymousid":
			return fAnonymousID
		case "userid":
			return fUserID
		case "previousid":
			return fPreviousID
		case "groupid":
			return fGroupID
		case "event":
			return fEvent
		case "name":
			return fName
		case "category":
			return fCategory
		case "properties":
			return fProperties
		case "traits":
			return fTraits
		case "integrations":
			return fIntegrations
		case "timestamp":
			return fTimestamp
		case "originaltimestamp":
			return fOriginalTimestamp
		case "sentat":
			return fSentAt
		case "type":
			return fType
		case "writekey":
			return fWriteKey
		case "context":
			return fContext
		}
	case batchObject:
		switch string(name) {
		case "batch":
			return fBatch
		case "context":
			return fContext
		case "integrations":
			return fIntegrations
		case "sentat":
			return fSentAt
		case "writekey":
			return fWriteKey
		}
	case contextObject:
		switch string(name) {
		case "ip":
			return fIP
		case "useragent":
			return fUA
		}
	}
	return fUnknown
}

// lookup finds a member by its name, a JSON string as sent, without regard to case; fUnknown when it is
// none of the object's.
func (o object) lookup(quoted []byte) int {
	var lower [24]byte // longer than any name read
	name := quoted[1 : len(quoted)-1]
	n := 0
	for i, c := range name {
		if c >= utf8.RuneSelf || c == '\\' {
			return o.lookupSlow(quoted)
		}
		if i == len(lower) {
			return fUnknown
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i], n = c, i+1
	}
	return o.field(lower[:n])
}

// lookupSlow finds a name with escapes, or with letters outside ASCII that match ASCII ones without regard
// to case (ſ matches s, K matches k), as encoding/json's case folding matches them.
func (o object) lookupSlow(quoted []byte) int {
	var lower []byte
	for _, r := range string(appendUnquoted(nil, quoted)) {
		f := r // the ASCII letter or digit among the runes that r matches, if any
		for f >= utf8.RuneSelf {
			if f = unicode.SimpleFold(f); f == r {
				return fUnknown
			}
		}
		lower = append(lower, byte(unicode.ToLower(f)))
	}
	return o.field(lower)
}

// span is where a value lies in the data read, data[start:end]; the zero span is none. Bodies are far
// smaller than 2 GiB, and a span is small: a batch of many tiny events holds one rawEvent for each.
type span struct{ start, end int32 }

func (s span) in(data []byte) []byte {
	if s.end == 0 {
		return nil
	}
	return data[s.start:s.end:s.end]
}

// rawEvent is an event taken apart: where each field it has lies, as raw JSON. When a name repeats, the
// last one counts, as with encoding/json.
type rawEvent struct {
	raw         span   // the whole event
	refused     string // why the event is refused as it is read: it is not an object, or a field has the wrong type
	badWriteKey bool   // writeKey is neither a string nor null
	typ         span   // a JSON string, or none
	writeKey    span   // a JSON string, or none
	fields      [numFields]span
	context     contextSpans
}

func (ev *rawEvent) refuse(reason string) {
	if ev.refused == "" { // encoding/json reports the first field of the wrong type
		ev.refused = reason
	}
}

// contextSpans is what the server reads of a context: the context, and the ip and userAgent it holds as
// JSON strings, none when absent or null.
type contextSpans struct {
	raw, ip, userAgent span
	invalid            bool // not an object, or an ip or userAgent that is not a string
}

// contextFields is a context read, as the raw JSON of its parts.
type contextFields struct {
	raw, ip, userAgent []byte
	invalid            bool
}

func (c contextSpans) in(data []byte) contextFields {
	return contextFields{raw: c.raw.in(data), ip: c.ip.in(data), userAgent: c.userAgent.in(data), invalid: c.invalid}
}

// batchFields are what a batch says of all its events; each applies to an event that lacks its own.
type batchFields struct {
	context             contextFields
	integrations        []byte
	integrationsInvalid bool // not JSON: only a Request made by hand can hold that
	// sentAt is read once for all the events
	sentAt    time.Time
	hasSentAt bool
	sentAtErr error
}

var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// errTooLarge refuses data that spans cannot point into.
var errTooLarge = errors.New("collect: 2 GiB or more of JSON")

// decoder reads request bodies with jsontext. It accepts what encoding/json accepts: names that repeat, and
// invalid UTF-8 in strings (kept as sent in passed-through JSON, read as U+FFFD in strings).
type decoder struct {
	dec    jsontext.Decoder
	buf    bytes.Buffer
	data   []byte
	events []rawEvent // kept from one batch to the next: a batch's events are read into it
}

// decoders are recycled, with room for the events of a batch.
var decoders = sync.Pool{New: func() any { return new(decoder) }}

func (d *decoder) reset(data []byte) error {
	if len(data) > math.MaxInt32 {
		return errTooLarge
	}
	d.data = data
	d.buf = *bytes.NewBuffer(data) // the decoder reads a bytes.Buffer in place, without copying
	d.dec.Reset(&d.buf, decodeOptions...)
	return nil
}

// value reads the next value or name, validated.
func (d *decoder) value() (span, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return span{}, err
	}
	end := int32(d.dec.InputOffset())
	return span{end - int32(len(v)), end}, nil
}

// kind is the first byte of a value read: '"', 'n', '{', '[', 't', 'f', or one of a number.
func (d *decoder) kind(s span) byte { return d.data[s.start] }

// beginObject reads the '{' that is next and returns its offset.
func (d *decoder) beginObject() (int32, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return 0, err
	}
	return int32(d.dec.InputOffset()) - 1, nil
}

// endObject reads the '}' that is next and returns the offset after it.
func (d *decoder) endObject() (int32, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return 0, err
	}
	return int32(d.dec.InputOffset()), nil
}

// name reads the next member's name and finds it among the object's; the value is left to read.
func (d *decoder) name(o object) (int, error) {
	quoted, err := d.value()
	if err != nil {
		return 0, err
	}
	return o.lookup(quoted.in(d.data)), nil
}

// end checks that nothing but whitespace follows the value read.
func (d *decoder) end() error {
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return errors.New("collect: data after the value")
	}
	return nil
}

// readEvent reads data that is one event.
func (d *decoder) readEvent(data []byte, ev *rawEvent) error {
	if err := d.reset(data); err != nil {
		return err
	}
	if err := d.event(ev); err != nil {
		return err
	}
	return d.end()
}

// event reads the next value, an event.
func (d *decoder) event(ev *rawEvent) error {
	*ev = rawEvent{}
	if d.dec.PeekKind() != '{' {
		v, err := d.value()
		if err != nil {
			return err
		}
		ev.raw = v
		if d.kind(v) != 'n' { // null is an empty event, as encoding/json reads it
			ev.refused = "an event must be a JSON object"
		}
		return nil
	}
	start, err := d.beginObject()
	if err != nil {
		return err
	}
	for d.dec.PeekKind() != '}' {
		f, err := d.name(eventObject)
		if err != nil {
			return err
		}
		switch f {
		case fUnknown:
			err = d.dec.SkipValue()
		case fContext:
			err = d.context(&ev.context)
		default:
			var v span
			if v, err = d.value(); err != nil {
				return err
			}
			switch f {
			case fType:
				switch d.kind(v) {
				case '"':
					ev.typ = v
				case 'n':
				default:
					ev.refuse("type has the wrong type")
				}
			case fWriteKey:
				switch d.kind(v) {
				case '"':
					ev.writeKey = v
				case 'n':
				default:
					ev.refuse("writeKey has the wrong type")
					ev.badWriteKey = true
				}
			default:
				ev.fields[f] = v
			}
		}
		if err != nil {
			return err
		}
	}
	end, err := d.endObject()
	ev.raw = span{start, end}
	return err
}

// context reads the next value, a context, and the ip and userAgent it holds.
func (d *decoder) context(c *contextSpans) error {
	*c = contextSpans{}
	if d.dec.PeekKind() != '{' {
		v, err := d.value()
		c.raw, c.invalid = v, err == nil && d.kind(v) != 'n'
		return err
	}
	start, err := d.beginObject()
	if err != nil {
		return err
	}
	for d.dec.PeekKind() != '}' {
		f, err := d.name(contextObject)
		if err != nil {
			return err
		}
		if f == fUnknown {
			if err := d.dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		v, err := d.value()
		if err != nil {
			return err
		}
		dst := &c.ip
		if f == fUA {
			dst = &c.userAgent
		}
		switch d.kind(v) {
		case '"':
			*dst = v
		case 'n':
			*dst = span{}
		default:
			c.invalid = true
		}
	}
	end, err := d.endObject()
	c.raw = span{start, end}
	return err
}

// readBatch reads a /v1/batch body into b. Like encoding/json, it reports the first field of the wrong
// type, once the whole body is known to be JSON.
func (d *decoder) readBatch(data []byte, b *requestBody) (refused string, err error) {
	if err := d.reset(data); err != nil {
		return "", err
	}
	refuse := func(reason string) {
		if refused == "" {
			refused = reason
		}
	}
	var writeKey, sentAt, integrations span
	var context contextSpans
	if d.dec.PeekKind() != '{' {
		v, err := d.value()
		if err != nil {
			return "", err
		}
		if d.kind(v) != 'n' {
			refuse("an event must be a JSON object")
		}
		return refused, d.end()
	}
	if _, err := d.beginObject(); err != nil {
		return "", err
	}
	for d.dec.PeekKind() != '}' {
		f, err := d.name(batchObject)
		if err != nil {
			return "", err
		}
		switch {
		case f == fContext:
			err = d.context(&context)
		case f == fBatch && d.dec.PeekKind() == '[':
			err = d.batchEvents(b)
		case f == fUnknown:
			err = d.dec.SkipValue()
		default:
			var v span
			if v, err = d.value(); err != nil {
				return "", err
			}
			switch f {
			case fBatch:
				if d.kind(v) == 'n' {
					b.events = b.events[:0]
				} else {
					refuse("batch has the wrong type")
				}
			case fIntegrations:
				integrations = v
			case fSentAt:
				sentAt = v
			case fWriteKey:
				switch d.kind(v) {
				case '"':
					writeKey = v
				case 'n':
				default:
					refuse("writeKey has the wrong type")
				}
			}
		}
		if err != nil {
			return "", err
		}
	}
	if _, err := d.endObject(); err != nil {
		return "", err
	}
	if err := d.end(); err != nil {
		return "", err
	}
	if writeKey != (span{}) {
		b.writeKey = unquote(writeKey.in(data))
	}
	b.batch.context, b.batch.integrations = context.in(data), integrations.in(data)
	b.batch.sentAt, b.batch.hasSentAt, b.batch.sentAtErr = timeField("sentAt", sentAt.in(data))
	return refused, nil
}

// batchEvents reads the array of a batch's events.
func (d *decoder) batchEvents(b *requestBody) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	b.events = b.events[:0]
	for d.dec.PeekKind() != ']' {
		b.events = append(b.events, rawEvent{})
		if err := d.event(&b.events[len(b.events)-1]); err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
}

// batchFieldsOf reads a Request's batch fields. They are read from a body already; they are checked again
// because a Request can be made by hand.
func (d *decoder) batchFieldsOf(req Request) batchFields {
	var b batchFields
	valid := func(raw json.RawMessage) ([]byte, bool) {
		if isNull(raw) {
			return nil, true
		}
		if d.reset(raw) == nil {
			if v, err := d.value(); err == nil && d.end() == nil {
				return v.in(raw), true
			}
		}
		return raw, false
	}
	if _, ok := valid(req.SentAt); ok {
		// As it is: timeField reads a string with spaces around as encoding/json does.
		b.sentAt, b.hasSentAt, b.sentAtErr = timeField("sentAt", req.SentAt)
	} else {
		b.sentAtErr = reject("sentAt must be an ISO 8601 date string")
	}
	var ok bool
	b.integrations, ok = valid(req.Integrations)
	b.integrationsInvalid = !ok
	if !isNull(req.Context) {
		var c contextSpans
		if d.reset(req.Context) != nil || d.context(&c) != nil || d.end() != nil {
			b.context = contextFields{raw: req.Context, invalid: true}
		} else {
			b.context = c.in(req.Context)
		}
	}
	return b
}

// appendUnquoted appends the text of a valid JSON string, read as encoding/json reads it: invalid UTF-8
// and lone surrogates become U+FFFD, and so does NUL, which PostgreSQL's text refuses (see StorableJSON).
func appendUnquoted(dst, quoted []byte) []byte {
	s := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) { // a raw NUL is not valid JSON: only \u0000 makes one
		return append(dst, s...)
	}
	n := len(dst)
	dst, _ = jsontext.AppendUnquote(dst, quoted) // the error says U+FFFD replaced something
	if bytes.IndexByte(dst[n:], 0) >= 0 {
		dst = append(dst[:n], bytes.ReplaceAll(dst[n:], []byte{0}, []byte(string(utf8.RuneError)))...)
	}
	return dst
}

func unquote(quoted []byte) string { return string(appendUnquoted(nil, quoted)) }

// describeInvalid words what is wrong with data the decoder refused, as encoding/json words it.
func describeInvalid(data []byte) string {
	var syntax *json.SyntaxError
	if err := json.Unmarshal(data, &struct{}{}); errors.As(err, &syntax) {
		return describeJSONError(err)
	}
	return "not valid JSON"
}

// Normalising.

// normalize validates an event read from data and builds its payload.
func normalize(in *rawEvent, data []byte, typ string, req Request, batch *batchFields, newID func() string, isBot func(string) bool) (Event, error) {
	if in.refused != "" {
		return Event{}, reject(in.refused)
	}
	field := func(f int) []byte { return in.fields[f].in(data) }
	inType := eventType(in.typ.in(data))
	if typ != "" && inType != "" && inType != typ {
		return Event{}, reject(fmt.Sprintf("type %q does not match the endpoint /v1/%s", inType, typ))
	}
	if typ == "" {
		typ = inType
	}
	if typ == "" {
		return Event{}, reject("type is missing")
	}
	if !eventTypes[typ] {
		return Event{}, reject(fmt.Sprintf("type %q is not one of identify, track, page, screen, group, alias", truncate(typ, 40)))
	}

	// The id-like fields, read into one string.
	var ids [numIDs]string
	var ends [numIDs]int
	text := make([]byte, 0, 256)
	for i := range ids {
		var err error
		if text, err = appendID(text, idNames[i], field(i)); err != nil {
			return Event{}, err
		}
		ends[i] = len(text)
	}
	all, start := string(text), 0
	for i, end := range ends {
		ids[i], start = all[start:end], end
	}
	messageID, anonymousID, userID := ids[fMessageID], ids[fAnonymousID], ids[fUserID]
	if userID == "" && anonymousID == "" {
		return Event{}, reject("userId or anonymousId is required")
	}
	switch typ {
	case "track":
		if ids[fEvent] == "" {
			return Event{}, reject("event is required for a track call")
		}
	case "group":
		if ids[fGroupID] == "" {
			return Event{}, reject("groupId is required for a group call")
		}
	case "alias":
		if ids[fPreviousID] == "" || userID == "" {
			return Event{}, reject("previousId and userId are required for an alias call")
		}
	}
	for _, o := range []struct {
		name string
		raw  []byte
	}{{"properties", field(fProperties)}, {"traits", field(fTraits)}, {"context", in.context.raw.in(data)}, {"integrations", field(fIntegrations)}} {
		if err := objectOrNull(o.name, o.raw); err != nil {
			return Event{}, err
		}
	}
	ctx := in.context.in(data)
	if isNull(ctx.raw) {
		ctx = batch.context
	}
	integrations, integrationsInvalid := field(fIntegrations), false
	if isNull(integrations) {
		integrations, integrationsInvalid = batch.integrations, batch.integrationsInvalid
	}

	// Clock skew: the client's clock may be wrong, but the time between its timestamp and its sentAt is not.
	original, hasOriginal, err := timeField("timestamp", field(fTimestamp))
	if err != nil {
		return Event{}, err
	}
	if !hasOriginal {
		if original, hasOriginal, err = timeField("originalTimestamp", field(fOriginalTimestamp)); err != nil {
			return Event{}, err
		}
	}
	sentAt, hasSentAt, err := batch.sentAt, batch.hasSentAt, batch.sentAtErr
	if raw := field(fSentAt); !isNull(raw) {
		sentAt, hasSentAt, err = timeField("sentAt", raw)
	}
	if err != nil {
		return Event{}, err
	}
	var timestamp time.Time
	switch {
	case hasOriginal && hasSentAt:
		timestamp = req.ReceivedAt.Add(-sentAt.Sub(original))
	case hasOriginal:
		timestamp = original
	default:
		timestamp = req.ReceivedAt
	}
	if timestamp.Sub(req.ReceivedAt) > MaxFuture {
		timestamp = req.ReceivedAt // the client's time stays as originalTimestamp
	}

	if messageID == "" {
		messageID = newID()
	}
	// The context, with the client's IP address and user agent unless it has them.
	if ctx.invalid {
		return Event{}, reject("context.ip and context.userAgent must be strings")
	}
	for _, o := range []struct {
		name string
		raw  []byte
	}{{"properties", field(fProperties)}, {"traits", field(fTraits)}, {"context", ctx.raw}, {"integrations", integrations}} {
		if o.name == "integrations" && integrationsInvalid {
			break // not JSON: refused below
		}
		if n := numberOutOfRange(o.raw); n != nil {
			return Event{}, reject(fmt.Sprintf("%s holds the number %s, out of range: at most %d digits before the decimal point and %d after",
				o.name, truncate(string(n), 40), maxIntegerDigits, maxDecimals))
		}
	}
	addIP := ctx.ip == nil && req.IP != ""
	addUA := ctx.userAgent == nil && req.Browser && req.UserAgent != ""
	var ua string
	if ctx.userAgent != nil {
		ua = unquote(ctx.userAgent)
	} else if req.Browser {
		ua = req.UserAgent
	}
	bot := isBot(ua)

	// The payload, in the order of the fields of Segment's spec.
	p := make([]byte, 0, int(in.raw.end-in.raw.start)+len(ctx.raw)+len(integrations)+len(req.IP)+len(req.UserAgent)+200)
	p = append(p, `{"type":`...)
	p = appendString(p, typ)
	p = append(p, `,"messageId":`...)
	p = appendString(p, messageID)
	for i := fAnonymousID; i < numIDs; i++ {
		if ids[i] != "" {
			p = append(p, ',', '"')
			p = append(p, idNames[i]...)
			p = append(p, '"', ':')
			p = appendString(p, ids[i])
		}
	}
	if raw := field(fProperties); !isNull(raw) {
		p = appendCompact(append(p, `,"properties":`...), raw)
	}
	if raw := field(fTraits); !isNull(raw) {
		p = appendCompact(append(p, `,"traits":`...), raw)
	}
	p = append(p, `,"context":`...)
	raw := ctx.raw
	if isNull(raw) {
		raw = emptyObject
	}
	if !addIP && !addUA {
		p = appendCompact(p, raw)
	} else {
		p = append(p, '{')
		if addIP {
			p = appendString(append(p, `"ip":`...), req.IP)
		}
		if addUA {
			if addIP {
				p = append(p, ',')
			}
			p = appendString(append(p, `"userAgent":`...), req.UserAgent)
		}
		brace := len(p)
		p = appendCompact(p, raw)
		if p[brace+1] == '}' { // the context was empty
			p = append(p[:brace], '}')
		} else {
			p[brace] = ','
		}
	}
	if !isNull(integrations) {
		if integrationsInvalid {
			_, err := json.Marshal(json.RawMessage(integrations))
			return Event{}, reject("the event cannot be encoded: " + err.Error())
		}
		p = appendCompact(append(p, `,"integrations":`...), integrations)
	}
	if p, err = appendTime(p, "timestamp", timestamp, false); err != nil {
		return Event{}, err
	}
	if hasOriginal {
		if p, err = appendTime(p, "originalTimestamp", original, true); err != nil {
			return Event{}, err
		}
	}
	if hasSentAt {
		if p, err = appendTime(p, "sentAt", sentAt, true); err != nil {
			return Event{}, err
		}
	}
	if p, err = appendTime(p, "receivedAt", req.ReceivedAt, false); err != nil {
		return Event{}, err
	}
	if bot {
		p = append(p, `,"bot":true`...)
	}
	p = append(p, '}')

	ev := Event{
		MessageID: messageID, Type: typ, UserID: userID, AnonymousID: anonymousID,
		Timestamp: timestamp, ReceivedAt: req.ReceivedAt, Bot: bot, Payload: p,
	}
	ev.Name = ids[fEvent]
	if typ == "page" || typ == "screen" {
		ev.Name = ids[fName]
	}
	return ev, nil
}

// eventType reads the type field, a JSON string or nil.
func eventType(raw []byte) string {
	if raw == nil {
		return ""
	}
	switch s := raw[1 : len(raw)-1]; string(s) { // the common types without allocating
	case "identify":
		return "identify"
	case "track":
		return "track"
	case "page":
		return "page"
	case "screen":
		return "screen"
	case "group":
		return "group"
	case "alias":
		return "alias"
	}
	return unquote(raw)
}

// appendID appends an id-like field: a string, or a number (some SDKs send numeric user ids), trimmed, at
// most 255 characters. Absent and null append nothing.
func appendID(dst []byte, name string, raw []byte) ([]byte, error) {
	if isNull(raw) {
		return dst, nil
	}
	n := len(dst)
	switch raw[0] {
	case '"':
		dst = appendUnquoted(dst, raw)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		dst = append(dst, raw...)
	default:
		return dst, reject(name + " must be a string")
	}
	s := dst[n:]
	trimmed := bytes.TrimSpace(s)
	if utf8.RuneCount(trimmed) > 255 {
		return dst, reject(name + " is longer than 255 characters")
	}
	if len(trimmed) != len(s) {
		dst = append(dst[:n], trimmed...) // moves the bytes left, within dst
	}
	return dst, nil
}

func isNull(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func objectOrNull(name string, raw []byte) error {
	if isNull(raw) || raw[0] == '{' {
		return nil
	}
	return reject(name + " must be an object")
}

// timeField parses an ISO 8601 time, valid JSON; absent, null and "" give false.
func timeField(name string, raw []byte) (time.Time, bool, error) {
	if isNull(raw) || string(raw) == `""` {
		return time.Time{}, false, nil
	}
	var buf [64]byte
	var s []byte
	if raw[0] == '"' && raw[len(raw)-1] == '"' {
		s = appendUnquoted(buf[:0], raw)
	} else if str, ok := unmarshalString(raw); ok { // with spaces around, from a Request made by hand
		s = append(buf[:0], str...)
	} else {
		return time.Time{}, false, reject(name + " must be an ISO 8601 date string")
	}
	t, err := parseTime(string(s))
	if err != nil {
		return time.Time{}, false, reject(fmt.Sprintf("%s %q is not an ISO 8601 date", name, truncate(string(s), 40)))
	}
	return t.UTC(), true, nil
}

func unmarshalString(raw []byte) (string, bool) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// parseTime accepts RFC 3339 with or without fractional seconds, and the common variants SDKs send: a space
// instead of T, a zone without a colon (+0800), no zone (taken as UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 1e11 && ms < 1e14 { // epoch milliseconds
		return time.UnixMilli(ms), nil
	}
	return time.Time{}, reject("not a date")
}

var emptyObject = []byte(`{}`)

// appendTime appends a member whose value is a time in RFC 3339, as encoding/json encodes a time.Time (or a
// *time.Time, which its error names).
func appendTime(dst []byte, name string, t time.Time, pointer bool) ([]byte, error) {
	dst = append(append(append(dst, ',', '"'), name...), `":"`...)
	dst, err := t.AppendText(dst)
	if err != nil { // a year outside 0 to 9999
		return dst, timeError(t, pointer)
	}
	return append(dst, '"'), nil
}

// timeError words why a time cannot be encoded as encoding/json words it.
func timeError(t time.Time, pointer bool) error {
	var v any = t
	if pointer {
		v = &t
	}
	_, err := json.Marshal(v)
	return reject("the event cannot be encoded: " + err.Error())
}

// appendString appends s as a JSON string, with U+FFFD for invalid UTF-8 and NUL (see StorableJSON).
func appendString(dst []byte, s string) []byte {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", string(utf8.RuneError))
	}
	dst, _ = jsontext.AppendQuote(dst, s) // the error says invalid UTF-8 became U+FFFD
	return dst
}

var compactOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true), jsontext.PreserveRawStrings(true)}

// appendCompact appends a valid JSON value without whitespace between its tokens, and with text that both
// engines can store (appendStorableJSON).
func appendCompact(dst, v []byte) []byte {
	if !StorableJSON(v) {
		v = appendStorableJSON(nil, v)
	}
	if isCompact(v) {
		return append(dst, v...)
	}
	dst, _ = jsontext.AppendFormat(dst, v, compactOptions...)
	return dst
}

// isCompact reports whether a valid JSON value has no whitespace outside its strings.
func isCompact(v []byte) bool {
	inString := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ', c == '\t', c == '\n', c == '\r':
			return false
		}
	}
	return true
}

// Text that PostgreSQL cannot store: its text and jsonb refuse NUL (\u0000 in JSON) and bytes that are not
// UTF-8, and jsonb refuses the \u escape of a lone UTF-16 surrogate. SDKs do send them (a form field pasted
// from a binary file, a string cut between the two halves of an emoji), and the rest of such an event is worth
// keeping: Hearth keeps it with U+FFFD in their place, on both engines alike.

// StorableJSON reports whether the strings of a valid JSON value hold only text that both engines store.
func StorableJSON(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for i := 0; ; {
		j := bytes.IndexByte(v[i:], '\\') // only in strings, and always the start of an escape
		if j < 0 {
			return true
		}
		i += j
		if i+1 < len(v) && v[i+1] != 'u' {
			i += 2
			continue
		}
		n, ok := unicodeEscape(v, i)
		if !ok {
			return false
		}
		i += n
	}
}

// appendStorableJSON appends a valid JSON value with U+FFFD for what StorableJSON refuses.
func appendStorableJSON(dst, v []byte) []byte {
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case c == '\\' && (i+1 == len(v) || v[i+1] == 'u'):
			n, ok := unicodeEscape(v, i)
			if ok {
				dst = append(dst, v[i:i+n]...)
			} else {
				dst = append(dst, `\ufffd`...)
			}
			i += n
		case c == '\\':
			dst = append(dst, v[i:i+2]...)
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(v[i:])
			if r == utf8.RuneError && n == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, v[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}

// unicodeEscape reads the \u escape at v[i] of a valid JSON value: its length (12 for a surrogate pair), and
// whether PostgreSQL stores it. What is cut short is not valid, and not stored.
func unicodeEscape(v []byte, i int) (int, bool) {
	if i+6 > len(v) {
		return len(v) - i, false
	}
	r := hex4(v[i+2 : i+6])
	switch {
	case r == 0:
		return 6, false
	case utf16.IsSurrogate(rune(r)):
		if r < 0xdc00 && i+12 <= len(v) && v[i+6] == '\\' && v[i+7] == 'u' {
			if low := hex4(v[i+8 : i+12]); 0xdc00 <= low && low < 0xe000 {
				return 12, true
			}
		}
		return 6, false
	}
	return 6, true
}

// The numbers an event may hold: a double's range and more. PostgreSQL's numeric refuses more than 131,072
// digits before the decimal point or 16,383 after, and renders 1e131071 as its 131,072 digits: an event of a
// few KiB of such numbers would be read back as gigabytes.
const (
	maxIntegerDigits = 309 // 1.8e308, the largest double, has 309
	maxDecimals      = 340 // the smallest double, 4.9e-324, needs 324
)

// numberOutOfRange returns the first number of a JSON value with more digits than that before or after the
// decimal point, once its exponent is applied; nil when there is none.
func numberOutOfRange(v []byte) []byte {
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case c == '"':
			i = stringEnd(v, i)
		case c == '-' || '0' <= c && c <= '9':
			j := i + 1
			for j < len(v) && (v[j] >= '0' && v[j] <= '9' || v[j] == '.' || v[j] == 'e' || v[j] == 'E' || v[j] == '+' || v[j] == '-') {
				j++
			}
			if !numberInRange(v[i:j]) {
				return v[i:j]
			}
			i = j
		default:
			i++
		}
	}
	return nil
}

// stringEnd returns the index after the string that starts at v[i].
func stringEnd(v []byte, i int) int {
	for i++; ; {
		j := bytes.IndexByte(v[i:], '"')
		if j < 0 {
			return len(v)
		}
		i += j + 1
		backslashes := 0
		for k := i - 2; k >= 0 && v[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return i
		}
	}
}

// numberInRange checks a JSON number's digits before and after the decimal point, its exponent applied.
func numberInRange(n []byte) bool {
	if len(n) <= 20 && bytes.IndexAny(n, "eE") < 0 {
		return true // the common case
	}
	n = bytes.TrimPrefix(n, []byte("-"))
	mantissa, exp, hasExp := bytes.Cut(n, []byte("e"))
	if !hasExp {
		mantissa, exp, _ = bytes.Cut(n, []byte("E"))
	}
	integer, fraction, _ := bytes.Cut(mantissa, []byte("."))
	integer = bytes.TrimLeft(integer, "0")
	e := 0
	if len(exp) > 0 {
		var err error
		if e, err = strconv.Atoi(string(bytes.TrimPrefix(exp, []byte("+")))); err != nil || e > 1e6 || e < -1e6 {
			return false
		}
	}
	return len(integer)+e <= maxIntegerDigits && len(fraction)-e <= maxDecimals
}

// hex4 reads the four hexadecimal digits of a valid \u escape.
func hex4(h []byte) uint16 {
	var r uint16
	for _, c := range h {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | uint16(c)
	}
	return r
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// describeJSONError words a JSON decoding error for an integrator.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax) && strings.Contains(syntax.Error(), "max depth"):
		return fmt.Sprintf("nested more than 10,000 deep (at byte %d)", syntax.Offset)
	case errors.As(err, &syntax):
		return fmt.Sprintf("not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s has the wrong type", typ.Field)
		}
		return "an event must be a JSON object"
	}
	return "not valid JSON"
}
