package collect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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

// The event types of the Segment spec.
var eventTypes = map[string]bool{"identify": true, "track": true, "page": true, "screen": true, "group": true, "alias": true}

// rawEvent is an event as it arrives. Objects stay raw: they are validated as objects and passed through.
type rawEvent struct {
	Type              string          `json:"type"`
	MessageID         json.RawMessage `json:"messageId"`
	AnonymousID       json.RawMessage `json:"anonymousId"`
	UserID            json.RawMessage `json:"userId"`
	PreviousID        json.RawMessage `json:"previousId"`
	GroupID           json.RawMessage `json:"groupId"`
	Event             json.RawMessage `json:"event"`
	Name              json.RawMessage `json:"name"`
	Category          json.RawMessage `json:"category"`
	Properties        json.RawMessage `json:"properties"`
	Traits            json.RawMessage `json:"traits"`
	Context           json.RawMessage `json:"context"`
	Integrations      json.RawMessage `json:"integrations"`
	Timestamp         json.RawMessage `json:"timestamp"`
	OriginalTimestamp json.RawMessage `json:"originalTimestamp"`
	SentAt            json.RawMessage `json:"sentAt"`
	WriteKey          string          `json:"writeKey"`
}

// outEvent is the normalised payload.
type outEvent struct {
	Type              string          `json:"type"`
	MessageID         string          `json:"messageId"`
	AnonymousID       string          `json:"anonymousId,omitempty"`
	UserID            string          `json:"userId,omitempty"`
	PreviousID        string          `json:"previousId,omitempty"`
	GroupID           string          `json:"groupId,omitempty"`
	Event             string          `json:"event,omitempty"`
	Name              string          `json:"name,omitempty"`
	Category          string          `json:"category,omitempty"`
	Properties        json.RawMessage `json:"properties,omitempty"`
	Traits            json.RawMessage `json:"traits,omitempty"`
	Context           json.RawMessage `json:"context"`
	Integrations      json.RawMessage `json:"integrations,omitempty"`
	Timestamp         time.Time       `json:"timestamp"`
	OriginalTimestamp *time.Time      `json:"originalTimestamp,omitempty"`
	SentAt            *time.Time      `json:"sentAt,omitempty"`
	ReceivedAt        time.Time       `json:"receivedAt"`
	Bot               bool            `json:"bot,omitempty"`
}

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
	ev, err := normalize(raw, typ, req, newID, isBot)
	if err != nil {
		return Event{}, &hearth.Error{Kind: hearth.Invalid, Op: "collect.normalize", Msg: err.Error()}
	}
	return ev, nil
}

func normalize(raw []byte, typ string, req Request, newID func() string, isBot func(string) bool) (Event, error) {
	var in rawEvent
	if err := json.Unmarshal(raw, &in); err != nil {
		return Event{}, reject(describeJSONError(err))
	}
	if typ != "" && in.Type != "" && in.Type != typ {
		return Event{}, reject(fmt.Sprintf("type %q does not match the endpoint /v1/%s", in.Type, typ))
	}
	if typ == "" {
		typ = in.Type
	}
	if typ == "" {
		return Event{}, reject("type is missing")
	}
	if !eventTypes[typ] {
		return Event{}, reject(fmt.Sprintf("type %q is not one of identify, track, page, screen, group, alias", truncate(typ, 40)))
	}
	out := outEvent{Type: typ, ReceivedAt: req.ReceivedAt}
	var err error
	fields := []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{
		{"messageId", in.MessageID, &out.MessageID},
		{"anonymousId", in.AnonymousID, &out.AnonymousID},
		{"userId", in.UserID, &out.UserID},
		{"previousId", in.PreviousID, &out.PreviousID},
		{"groupId", in.GroupID, &out.GroupID},
		{"event", in.Event, &out.Event},
		{"name", in.Name, &out.Name},
		{"category", in.Category, &out.Category},
	}
	for _, f := range fields {
		if *f.dst, err = idString(f.name, f.raw); err != nil {
			return Event{}, err
		}
	}
	if out.UserID == "" && out.AnonymousID == "" {
		return Event{}, reject("userId or anonymousId is required")
	}
	switch typ {
	case "track":
		if out.Event == "" {
			return Event{}, reject("event is required for a track call")
		}
	case "group":
		if out.GroupID == "" {
			return Event{}, reject("groupId is required for a group call")
		}
	case "alias":
		if out.PreviousID == "" || out.UserID == "" {
			return Event{}, reject("previousId and userId are required for an alias call")
		}
	}
	for _, o := range []struct {
		name string
		raw  *json.RawMessage
	}{{"properties", &in.Properties}, {"traits", &in.Traits}, {"context", &in.Context}, {"integrations", &in.Integrations}} {
		if err := objectOrNull(o.name, *o.raw); err != nil {
			return Event{}, err
		}
	}
	if isNull(in.Context) {
		in.Context = req.Context
	}
	if isNull(in.Integrations) {
		in.Integrations = req.Integrations
	}
	out.Properties, out.Traits, out.Integrations = nonNull(in.Properties), nonNull(in.Traits), nonNull(in.Integrations)

	// Clock skew: the client's clock may be wrong, but the time between its timestamp and its sentAt is not.
	original, err := timeField("timestamp", in.Timestamp)
	if err != nil {
		return Event{}, err
	}
	if original == nil {
		if original, err = timeField("originalTimestamp", in.OriginalTimestamp); err != nil {
			return Event{}, err
		}
	}
	sentRaw := in.SentAt
	if isNull(sentRaw) {
		sentRaw = req.SentAt
	}
	sentAt, err := timeField("sentAt", sentRaw)
	if err != nil {
		return Event{}, err
	}
	switch {
	case original != nil && sentAt != nil:
		out.Timestamp = req.ReceivedAt.Add(-sentAt.Sub(*original))
	case original != nil:
		out.Timestamp = *original
	default:
		out.Timestamp = req.ReceivedAt
	}
	out.OriginalTimestamp, out.SentAt = original, sentAt

	if out.MessageID == "" {
		out.MessageID = newID()
	}
	ctx, ua, err := withRequestContext(in.Context, req)
	if err != nil {
		return Event{}, err
	}
	out.Context = ctx
	out.Bot = isBot(ua)

	payload, err := json.Marshal(out)
	if err != nil {
		return Event{}, reject("the event cannot be encoded: " + err.Error())
	}
	ev := Event{
		MessageID: out.MessageID, Type: typ, UserID: out.UserID, AnonymousID: out.AnonymousID,
		Timestamp: out.Timestamp, ReceivedAt: req.ReceivedAt, Bot: out.Bot, Payload: payload,
	}
	ev.Name = out.Event
	if typ == "page" || typ == "screen" {
		ev.Name = out.Name
	}
	return ev, nil
}

// idString reads an id-like field: a string, or a number (some SDKs send numeric user ids), at most 255
// characters. Absent and null give "".
func idString(name string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", reject(name + " is not a valid string")
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", reject(name + " is not a valid number")
		}
		s = n.String()
	default:
		return "", reject(name + " must be a string")
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > 255 {
		return "", reject(name + " is longer than 255 characters")
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func nonNull(raw json.RawMessage) json.RawMessage {
	if isNull(raw) {
		return nil
	}
	return raw
}

func objectOrNull(name string, raw json.RawMessage) error {
	if isNull(raw) || raw[0] == '{' {
		return nil
	}
	return reject(name + " must be an object")
}

// timeField parses an ISO 8601 time; absent, null and "" give nil.
func timeField(name string, raw json.RawMessage) (*time.Time, error) {
	if isNull(raw) || string(raw) == `""` {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, reject(name + " must be an ISO 8601 date string")
	}
	t, err := parseTime(s)
	if err != nil {
		return nil, reject(fmt.Sprintf("%s %q is not an ISO 8601 date", name, truncate(s, 40)))
	}
	t = t.UTC()
	return &t, nil
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

// requestContext is the part of an event's context that the server fills in when the client did not.
type requestContext struct {
	IP        *string `json:"ip"`
	UserAgent *string `json:"userAgent"`
}

// withRequestContext adds the client's IP address and user agent to the event's context unless it has them,
// and returns the user agent the event claims.
func withRequestContext(ctx json.RawMessage, req Request) (json.RawMessage, string, error) {
	if isNull(ctx) {
		ctx = json.RawMessage(`{}`)
	}
	var have requestContext
	if err := json.Unmarshal(ctx, &have); err != nil {
		return nil, "", reject("context.ip and context.userAgent must be strings")
	}
	var ua string
	if have.UserAgent != nil {
		ua = *have.UserAgent
	} else if req.Browser {
		ua = req.UserAgent
	}
	var add bytes.Buffer
	if have.IP == nil && req.IP != "" {
		add.WriteString(`"ip":`)
		writeJSONString(&add, req.IP)
	}
	if have.UserAgent == nil && req.Browser && req.UserAgent != "" {
		if add.Len() > 0 {
			add.WriteByte(',')
		}
		add.WriteString(`"userAgent":`)
		writeJSONString(&add, req.UserAgent)
	}
	if add.Len() == 0 {
		return ctx, ua, nil
	}
	trimmed := bytes.TrimSpace(ctx)
	out := make([]byte, 0, len(trimmed)+add.Len()+1)
	out = append(out, '{')
	out = append(out, add.Bytes()...)
	if rest := bytes.TrimSpace(trimmed[1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	out = append(out, trimmed[1:]...)
	return out, ua, nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	j, _ := json.Marshal(s)
	b.Write(j)
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
