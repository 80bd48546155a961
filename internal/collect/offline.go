package collect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
)

// Offline touches: store staff, kiosks and apps report that a person met a touchpoint away from a screen
// (scanned the shelf code, handed over a business card, came in with a coupon), one at a time or as a CSV
// file. Each becomes a "Touch" event with via "offline" under the built-in touch source, so that the
// touchpoint's counts and the person's timeline show it like any other touch.

// TouchTokenIssuer signs a token for a touchpoint's serial (0 for the touchpoint's own), for reports that name
// the touchpoint instead of carrying its code. An unknown touchpoint is a NotFound error; a serial the
// touchpoint never issued, an Invalid one.
type TouchTokenIssuer interface {
	IssueTouchToken(ctx context.Context, touchpointID string, serial int64) (string, error)
}

// OfflineOptions configure offline touches.
type OfflineOptions struct {
	// TimeZone is where times written without an offset ("2026-05-01 14:30") are read, unless an import
	// names another. Default Asia/Shanghai.
	TimeZone *time.Location
	// MaxAge is how long ago a touch may have happened. Default 2 years.
	MaxAge time.Duration
	// MaxSkew is how far in the future a touch's time may be, for clocks a little ahead. Default 5 minutes.
	MaxSkew time.Duration
	// MaxBytes and MaxRows bound an imported file. Default 20 MiB and 100,000 rows.
	MaxBytes int64
	MaxRows  int
	// BatchSize is how many touches an import appends to the log at a time. Default 500.
	BatchSize int
	// MaxRejected is how many refused rows an import lists; it counts the rest. Default 1000.
	MaxRejected int
}

// MaxOfflineProperties is the largest properties object a report may carry, in bytes of JSON.
const MaxOfflineProperties = 16 << 10

// OfflineTouches records offline touches.
type OfflineTouches struct {
	resolver TouchResolver
	issuer   TouchTokenIssuer
	log      Log
	clock    hearth.Clock
	opts     OfflineOptions
}

// NewOfflineTouches builds the service.
func NewOfflineTouches(resolver TouchResolver, issuer TouchTokenIssuer, log Log, clock hearth.Clock, opts OfflineOptions) *OfflineTouches {
	if opts.TimeZone == nil {
		opts.TimeZone = chinaTime()
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 2 * 365 * 24 * time.Hour
	}
	if opts.MaxSkew == 0 {
		opts.MaxSkew = MaxFuture
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 20 << 20
	}
	if opts.MaxRows == 0 {
		opts.MaxRows = 100_000
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 500
	}
	if opts.MaxRejected == 0 {
		opts.MaxRejected = 1000
	}
	return &OfflineTouches{resolver: resolver, issuer: issuer, log: log, clock: clock, opts: opts}
}

// ImportLimits are the largest file, in bytes, and the most rows an import takes.
func (o *OfflineTouches) ImportLimits() (maxBytes int64, maxRows int) {
	return o.opts.MaxBytes, o.opts.MaxRows
}

// chinaTime is Asia/Shanghai, or the same fixed offset where the system has no time zone database: China
// has kept UTC+8 all year since 1991.
func chinaTime() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600)
}

// OfflineReport is one offline touch as reported: the touchpoint's token, or its id and optionally a serial,
// and at least one identifier of the person.
type OfflineReport struct {
	Token        string
	TouchpointID string
	Serial       int64
	// At is when it happened, RFC 3339; empty for now.
	At            string
	Phone         string
	Email         string
	WeChatOpenID  string
	WeChatUnionID string
	UserID        string
	AnonymousID   string
	// MessageID makes a report that is sent again stored once; empty to derive one from the report.
	MessageID string
	// Properties are extra properties of the touch event: a JSON object, or empty.
	Properties json.RawMessage
}

// RecordedTouch is an offline touch as the log holds it.
type RecordedTouch struct {
	TouchpointID string
	CampaignID   string
	Channel      string
	Serial       int64
	At           time.Time
	MessageID    string
	// Duplicate says the log already had the touch (the same message id): it is stored once.
	Duplicate bool
}

// Record checks an offline touch and appends it to the event log, durably. A problem with the report is an
// Invalid error whose message says what; a refused token's error has the code token_<reason>, such as
// token_expired.
func (o *OfflineTouches) Record(ctx context.Context, rep OfflineReport) (RecordedTouch, error) {
	const op = "collect.record_offline_touch"
	now := o.clock.Now()
	var at time.Time
	atKey := ""
	if s := strings.TrimSpace(rep.At); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return RecordedTouch{}, hearth.Errorf(hearth.Invalid, op, "at must be an RFC 3339 time, such as 2026-05-01T14:30:00+08:00.")
		}
		at, atKey = t.UTC(), t.UTC().Format(time.RFC3339Nano)
	} else {
		// Now; a report sent again within the same minute is the same touch.
		at, atKey = now, "now "+now.Truncate(time.Minute).Format(time.RFC3339)
	}
	t, props, err := o.prepare(ctx, op, &rep, at, atKey, now, nil)
	if err != nil {
		return RecordedTouch{}, err
	}
	ev, err := offlineEvent(t, props)
	if err != nil {
		return RecordedTouch{}, fmt.Errorf("collect: offline touch event: %w", err)
	}
	res, err := o.log.Append(ctx, &Batch{SourceID: TouchSourceID, ReceivedAt: now, Events: []Event{ev}})
	if err != nil {
		return RecordedTouch{}, err
	}
	return recorded(t, res.Duplicates > 0), nil
}

func recorded(t Touch, dup bool) RecordedTouch {
	return RecordedTouch{TouchpointID: t.Resolved.TouchpointID, CampaignID: t.Resolved.CampaignID, Channel: t.Resolved.Channel,
		Serial: t.Resolved.Serial, At: t.At, MessageID: t.MessageID, Duplicate: dup}
}

// tokenCache remembers, during one import, what tokens resolve to and which tokens were signed for a
// touchpoint's serial, so that a file of a thousand rows of one touchpoint signs once (the touchpoint part
// keeps the touchpoints it resolves in memory).
type tokenCache struct {
	resolved map[resolveKey]ResolvedTouch
	issued   map[issueKey]issued
}

// resolveKey: a token resolves differently at different times (its expiry, its campaign's dates).
type resolveKey struct {
	token string
	at    int64 // Unix nanoseconds
}

type issueKey struct {
	id     string
	serial int64
}

type issued struct {
	token string
	err   error // Invalid or NotFound
}

const tokenCacheSize = 10_000

// reservedProperties are the touch event's properties that Hearth sets.
var reservedProperties = map[string]bool{"touchpoint_id": true, "touchpoint": true, "channel": true, "token": true, "via": true,
	"campaign_id": true, "serial": true, "method": true}

// prepare checks a report and resolves its token into a touch at the given time. atKey is the time as it
// goes into the derived message id. Problems with the report are Invalid errors; any other error is the
// store's.
func (o *OfflineTouches) prepare(ctx context.Context, op string, rep *OfflineReport, at time.Time, atKey string, now time.Time, cache *tokenCache) (Touch, map[string]json.RawMessage, error) {
	invalid := func(format string, args ...any) error { return hearth.Errorf(hearth.Invalid, op, format, args...) }

	// The person, and the report's own id.
	var reason string
	for _, check := range []func() string{
		func() (r string) { rep.Phone, r = checkPhone(rep.Phone); return r },
		func() (r string) { rep.Email, r = checkEmail(rep.Email); return r },
		func() (r string) { rep.WeChatOpenID, r = checkWeChatID("wechat_openid", rep.WeChatOpenID); return r },
		func() (r string) { rep.WeChatUnionID, r = checkWeChatID("wechat_unionid", rep.WeChatUnionID); return r },
		func() (r string) { rep.UserID, r = checkText("user_id", rep.UserID); return r },
		func() (r string) { rep.AnonymousID, r = checkText("anonymous_id", rep.AnonymousID); return r },
		func() (r string) { rep.MessageID, r = checkText("message_id", rep.MessageID); return r },
	} {
		if reason = check(); reason != "" {
			return Touch{}, nil, invalid("%s", reason)
		}
	}
	if rep.Phone == "" && rep.Email == "" && rep.WeChatOpenID == "" && rep.WeChatUnionID == "" && rep.UserID == "" && rep.AnonymousID == "" {
		return Touch{}, nil, invalid("At least one identifier is needed: phone, email, wechat_openid, wechat_unionid, user_id or anonymous_id.")
	}

	// When.
	if at.After(now.Add(o.opts.MaxSkew)) {
		return Touch{}, nil, invalid("The time is in the future.")
	}
	if at.Before(now.Add(-o.opts.MaxAge)) {
		return Touch{}, nil, invalid("The time is more than %s ago.", describeAge(o.opts.MaxAge))
	}

	// Its extra properties.
	var props map[string]json.RawMessage
	if p := bytes.TrimSpace(rep.Properties); len(p) > 0 && string(p) != "null" {
		if len(p) > MaxOfflineProperties {
			return Touch{}, nil, invalid("properties are larger than %d KiB.", MaxOfflineProperties>>10)
		}
		if p[0] != '{' || !json.Valid(p) {
			return Touch{}, nil, invalid("properties must be a JSON object.")
		}
		if !StorableJSON(p) {
			p = appendStorableJSON(nil, p)
		}
		if err := json.Unmarshal(p, &props); err != nil {
			return Touch{}, nil, invalid("properties must be a JSON object.")
		}
		for k := range props {
			if reservedProperties[k] {
				return Touch{}, nil, invalid("properties.%s is set by Hearth; give it another name.", k)
			}
		}
	}

	// The touchpoint.
	rep.Token, rep.TouchpointID = strings.TrimSpace(rep.Token), strings.TrimSpace(rep.TouchpointID)
	if rep.Serial < 0 {
		return Touch{}, nil, invalid("serial must be 0 or more.")
	}
	token, err := rep.Token, error(nil)
	switch {
	case token != "":
		if len(token) > 64 { // far longer than any token; not worth verifying
			return Touch{}, nil, invalid("The token is not a Hearth token.")
		}
	case rep.TouchpointID != "":
		if token, err = o.issue(ctx, op, rep.TouchpointID, rep.Serial, cache); err != nil {
			return Touch{}, nil, err
		}
	default:
		return Touch{}, nil, invalid("A token or a touchpoint_id is needed.")
	}
	res, err := o.resolve(ctx, token, at, cache)
	if err != nil {
		return Touch{}, nil, err
	}
	if res.Refused != "" {
		return Touch{}, nil, &hearth.Error{Kind: hearth.Invalid, Op: op, Code: "token_" + res.Refused, Msg: refusalText(res.Refused)}
	}
	if rep.TouchpointID != "" && rep.TouchpointID != res.TouchpointID {
		return Touch{}, nil, invalid("The token is of another touchpoint than touchpoint_id.")
	}
	if rep.Serial != 0 && rep.Serial != res.Serial {
		return Touch{}, nil, invalid("The token is of another serial than serial.")
	}

	t := Touch{Resolved: res, Token: token, Via: "offline", UserID: rep.UserID, AnonymousID: rep.AnonymousID, MessageID: rep.MessageID,
		At: at, ReceivedAt: now}
	if rep.Phone != "" || rep.Email != "" {
		t.Traits = map[string]string{}
		if rep.Phone != "" {
			t.Traits["phone"] = rep.Phone
		}
		if rep.Email != "" {
			t.Traits["email"] = rep.Email
		}
	}
	if rep.WeChatOpenID != "" {
		t.ExternalIDs = append(t.ExternalIDs, ExternalID{Type: "wechat_openid", ID: rep.WeChatOpenID})
	}
	if rep.WeChatUnionID != "" {
		t.ExternalIDs = append(t.ExternalIDs, ExternalID{Type: "wechat_unionid", ID: rep.WeChatUnionID})
	}
	if t.MessageID == "" {
		t.MessageID = offlineMessageID(res, rep, atKey)
	}
	return t, props, nil
}

// offlineMessageID derives a report's message id from what it says: which touchpoint and serial, who and
// when. The touchpoint rather than the token, so that the same touch reported with a token signed by another
// key, or by touchpoint id, is still the same touch.
func offlineMessageID(res ResolvedTouch, rep *OfflineReport, atKey string) string {
	h := sha256.New()
	for _, s := range []string{"hearth/offline/v1", res.TouchpointID, strconv.FormatInt(res.Serial, 10), atKey,
		rep.Phone, rep.Email, rep.WeChatOpenID, rep.WeChatUnionID, rep.UserID, rep.AnonymousID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "offline-" + hex.EncodeToString(h.Sum(nil)[:16])
}

func (o *OfflineTouches) issue(ctx context.Context, op, id string, serial int64, cache *tokenCache) (string, error) {
	if !plausibleID(id) { // not worth asking the store
		return "", hearth.Errorf(hearth.Invalid, op, "There is no touchpoint with this touchpoint_id.")
	}
	key := issueKey{id, serial}
	if cache != nil {
		if is, ok := cache.issued[key]; ok {
			return is.token, is.err
		}
	}
	token, err := o.issuer.IssueTouchToken(ctx, id, serial)
	switch hearth.KindOf(err) {
	case hearth.NotFound:
		err = &hearth.Error{Kind: hearth.Invalid, Op: op, Code: "unknown_touchpoint", Msg: "There is no touchpoint with this touchpoint_id.", Err: err}
	case hearth.Invalid:
		err = &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: hearth.MessageOf(err), Err: err}
	default:
		if err != nil {
			return "", err
		}
	}
	if cache != nil {
		if len(cache.issued) >= tokenCacheSize {
			clear(cache.issued)
		}
		cache.issued[key] = issued{token, err}
	}
	return token, err
}

// resolve resolves a token for a touch at time at: a token that had not yet expired then counts, as does
// one of a campaign that has ended since.
func (o *OfflineTouches) resolve(ctx context.Context, token string, at time.Time, cache *tokenCache) (ResolvedTouch, error) {
	key := resolveKey{token, at.UnixNano()}
	if cache != nil {
		if res, ok := cache.resolved[key]; ok {
			return res, nil
		}
	}
	res, err := o.resolver.ResolveTouch(ctx, token, at)
	if err != nil {
		return ResolvedTouch{}, err
	}
	if cache != nil {
		if len(cache.resolved) >= tokenCacheSize {
			clear(cache.resolved)
		}
		cache.resolved[key] = res
	}
	return res, nil
}

// plausibleID reports whether s could be an object's id: ids are short and plain.
func plausibleID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// refusalText says why a token was refused, for the person who reported the touch.
func refusalText(refused string) string {
	switch refused {
	case "malformed":
		return "The token is not a Hearth token."
	case "forged":
		return "The token's signature does not match: it was mistyped or made up."
	case "unknown_key":
		return "The token was signed with a key that has been retired."
	case "no_touchpoint":
		return "The token's touchpoint no longer exists."
	case "expired":
		return "The token has expired."
	case "revoked":
		return "The token has been revoked."
	case "paused":
		return "The token's touchpoint or campaign is paused."
	case "campaign_ended":
		return "The token's campaign has ended, or has not begun."
	}
	return "The token is refused (" + refused + ")."
}

func describeAge(d time.Duration) string {
	const day, year = 24 * time.Hour, 365 * 24 * time.Hour
	switch {
	case d%year == 0 && d >= year:
		if d == year {
			return "1 year"
		}
		return fmt.Sprintf("%d years", d/year)
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

// offlineEvent builds the touch's event, with the report's extra properties beside Hearth's own.
func offlineEvent(t Touch, props map[string]json.RawMessage) (Event, error) {
	ev, err := t.Event(TouchSourceID, hearth.NewID)
	if err != nil || len(props) == 0 {
		return ev, err
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(ev.Payload, &payload); err != nil {
		return Event{}, err
	}
	var own map[string]json.RawMessage
	if err := json.Unmarshal(payload["properties"], &own); err != nil {
		return Event{}, err
	}
	for k, v := range props {
		if _, ok := own[k]; !ok {
			own[k] = v
		}
	}
	if payload["properties"], err = json.Marshal(own); err != nil {
		return Event{}, err
	}
	ev.Payload, err = json.Marshal(payload)
	return ev, err
}

// Identifiers. Only trimmed and checked for obvious junk here; normalising them (phones to E.164) is the
// identity part's work.

// The checks answer the value trimmed, or why it is refused.

func checkPhone(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ""
	}
	if excelNumber(s) {
		return "", "The phone number looks like one that Excel turned into a number (such as 1.38E+10): format the column as text and export again."
	}
	digits := 0
	for i, c := range s {
		switch {
		case '0' <= c && c <= '9':
			digits++
		case c == '+' && i == 0, c == ' ', c == '-', c == '(', c == ')', c == '.':
		default:
			return "", "The phone number may hold only digits, spaces and + - ( ) ."
		}
	}
	if digits < 5 || digits > 15 {
		return "", "The phone number must have 5 to 15 digits."
	}
	return s, ""
}

// excelNumber reports whether s is a number in Excel's scientific notation, such as 1.38001E+10.
func excelNumber(s string) bool {
	mant, exp, ok := strings.Cut(strings.ToUpper(s), "E+")
	if !ok || mant == "" || exp == "" {
		return false
	}
	for _, part := range []string{strings.Replace(mant, ".", "", 1), exp} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

func checkEmail(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ""
	}
	local, domain, ok := strings.Cut(s, "@")
	bad := !ok || local == "" || len(local) > 64 || len(s) > 254 || strings.Contains(domain, "@") ||
		!strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") ||
		!utf8.ValidString(s)
	for _, c := range s {
		if bad {
			break
		}
		bad = unicode.IsSpace(c) || unicode.IsControl(c) || strings.ContainsRune(`<>()[]\,;:"`, c)
	}
	if bad {
		return "", "The email address is not valid."
	}
	return s, ""
}

func checkWeChatID(name, s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ""
	}
	if len(s) < 6 || len(s) > 64 {
		return "", "The " + name + " must have 6 to 64 characters."
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", "The " + name + " may hold only letters, digits, - and _."
		}
	}
	return s, ""
}

// checkText checks an id-like text: UTF-8, at most 255 characters (as the tracking API takes), no control
// characters.
func checkText(name, s string) (string, string) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", "The " + name + " is not UTF-8 text."
	}
	if utf8.RuneCountInString(s) > 255 {
		return "", "The " + name + " is longer than 255 characters."
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return "", "The " + name + " has control characters in it."
		}
	}
	return s, ""
}

// Times.

// ParseTimeZone reads a time zone as an import names it: an IANA name such as Asia/Shanghai, or an offset
// such as +08:00, UTC+8 or GMT-0530. Empty gives nil: the default.
func ParseTimeZone(name string) (*time.Location, error) {
	const op = "collect.parse_time_zone"
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, nil
	}
	if loc, ok := parseOffsetZone(name); ok {
		return loc, nil
	}
	if name == "Asia/Shanghai" {
		return chinaTime(), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: fmt.Sprintf("Unknown time zone %q: give an IANA name such as Asia/Shanghai, or an offset such as +08:00.", name), Err: err}
	}
	return loc, nil
}

func parseOffsetZone(s string) (*time.Location, bool) {
	u := strings.ToUpper(s)
	u = strings.TrimPrefix(strings.TrimPrefix(u, "UTC"), "GMT")
	if u == "" || (u[0] != '+' && u[0] != '-') {
		return nil, false
	}
	sign := 1
	if u[0] == '-' {
		sign = -1
	}
	h, m, colon := strings.Cut(u[1:], ":")
	if !colon && len(h) == 4 {
		h, m = h[:2], h[2:]
	}
	hours, err := strconv.Atoi(h)
	if err != nil || len(h) > 2 || hours > 14 {
		return nil, false
	}
	minutes := 0
	if m != "" || colon {
		if minutes, err = strconv.Atoi(m); err != nil || len(m) != 2 || minutes > 59 {
			return nil, false
		}
	}
	offset := sign * (hours*3600 + minutes*60)
	return time.FixedZone(s, offset), true
}

// localLayouts are the times without an offset that an import reads, in its time zone: what people type and
// what spreadsheets write. Months, days and hours may have one digit; seconds may have a fraction.
var localLayouts = []string{
	"2006-1-2 15:04:05", "2006-1-2 15:04", "2006/1/2 15:04:05", "2006/1/2 15:04",
	"2006-1-2T15:04:05", "2006-1-2T15:04", "2006-1-2", "2006/1/2",
}

// parseImportTime reads a time as an import row writes it: RFC 3339, or a local time in loc.
func parseImportTime(s string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse("2006-1-2 15:04:05Z07:00", s); err == nil {
		return t.UTC(), true
	}
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// CSV import.

// ImportOptions are an import's own settings.
type ImportOptions struct {
	// TimeZone is where the file's times without an offset are read; nil for the default.
	TimeZone *time.Location
}

// ImportResult is what an import did.
type ImportResult struct {
	Rows       int // the rows read, besides the header and blank rows
	Imported   int // touches newly recorded
	Duplicates int // touches the log already had
	// Rejected are the rows refused, by line, up to the limit; MoreRejected counts the rest.
	Rejected     []RejectedRow
	MoreRejected int
	// IgnoredColumns are the header's columns that name nothing an import reads.
	IgnoredColumns []string
}

// RejectedRow is a row of an import that was refused, and why.
type RejectedRow struct {
	Line   int // in the file, counting from 1 for the header
	Reason string
}

// The columns an import reads.
const (
	colToken = iota
	colTouchpointID
	colSerial
	colTime
	colPhone
	colEmail
	colOpenID
	colUnionID
	colUserID
	colAnonymousID
	colMessageID
	numColumns
)

var columnNames = [numColumns]string{"token", "touchpoint_id", "serial", "time", "phone", "email", "wechat_openid", "wechat_unionid",
	"user_id", "anonymous_id", "message_id"}

// columnSynonyms maps a header, in lower case with spaces and hyphens as underscores, to its column.
var columnSynonyms = func() map[string]int {
	m := map[string]int{}
	add := func(col int, names ...string) {
		for _, n := range names {
			m[n] = col
		}
	}
	add(colToken, "token", "touch_token", "ht", "码", "二维码")
	add(colTouchpointID, "touchpoint_id", "touchpointid", "touchpoint", "触点", "触点id")
	add(colSerial, "serial", "serial_number", "serialnumber", "序列号", "编号")
	add(colTime, "time", "at", "timestamp", "date", "datetime", "date_time", "时间", "日期", "日期时间", "到店时间")
	add(colPhone, "phone", "mobile", "phone_number", "phonenumber", "mobile_phone", "mobile_number", "cellphone", "tel", "telephone",
		"手机", "手机号", "手机号码", "电话", "电话号码", "联系电话")
	add(colEmail, "email", "e_mail", "mail", "email_address", "邮箱", "电子邮箱", "邮件", "电子邮件", "邮箱地址")
	add(colOpenID, "wechat_openid", "openid", "open_id", "wechat_open_id", "微信openid")
	add(colUnionID, "wechat_unionid", "unionid", "union_id", "wechat_union_id", "微信unionid")
	add(colUserID, "user_id", "userid", "customer_id", "member_id", "会员号", "会员编号", "会员id", "用户id")
	add(colAnonymousID, "anonymous_id", "anonymousid")
	add(colMessageID, "message_id", "messageid")
	return m
}()

// columnOf finds the column a header cell names, or -1.
func columnOf(header string) int {
	h := strings.ToLower(strings.TrimFunc(header, func(r rune) bool { return unicode.IsSpace(r) || r == '*' }))
	h = strings.NewReplacer(" ", "_", "-", "_").Replace(h)
	if c, ok := columnSynonyms[h]; ok {
		return c
	}
	return -1
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Import reads a CSV file of offline touches (a header row, then a touch a row) and records each good row.
// Each row is checked on its own: a bad row is reported with its line and reason, and the others are still
// recorded, in batches, durably. Rows' message ids derive from their content, so importing a file again
// records nothing twice. A problem with the whole file (too large, no usable header) is an error, before
// anything is recorded; so is a failing store, after the batches before it were recorded.
func (o *OfflineTouches) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImportResult, error) {
	const op = "collect.import_offline_touches"
	loc := opts.TimeZone
	if loc == nil {
		loc = o.opts.TimeZone
	}
	data, err := io.ReadAll(io.LimitReader(r, o.opts.MaxBytes+1))
	if err != nil {
		return ImportResult{}, fmt.Errorf("collect: read import: %w", err)
	}
	if int64(len(data)) > o.opts.MaxBytes {
		return ImportResult{}, hearth.Errorf(hearth.TooLarge, op, "The file is larger than %d MiB; split it.", o.opts.MaxBytes>>20)
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	comma := sniffComma(data)

	rows := 0
	count := newCSVReader(data, comma)
	for {
		rec, err := count.Read()
		if err == io.EOF {
			break
		}
		var parseErr *csv.ParseError
		if err != nil && !errors.As(err, &parseErr) {
			return ImportResult{}, fmt.Errorf("collect: read import: %w", err)
		}
		if err != nil || !blank(rec) {
			rows++
		}
	}
	if rows == 0 {
		return ImportResult{}, hearth.Errorf(hearth.Invalid, op, "The file is empty; it needs a header row, then a touch a row.")
	}
	if rows-1 > o.opts.MaxRows {
		return ImportResult{}, hearth.Errorf(hearth.TooLarge, op, "The file has %d rows, more than the %d an import takes; split it.", rows-1, o.opts.MaxRows)
	}

	cr := newCSVReader(data, comma)
	var header []string
	for header == nil {
		rec, err := cr.Read()
		if err != nil {
			return ImportResult{}, hearth.Errorf(hearth.Invalid, op, "The header row is not valid CSV.")
		}
		if !blank(rec) {
			header = append([]string(nil), rec...)
		}
	}
	cols, ignored, err := readHeader(op, header)
	if err != nil {
		return ImportResult{}, err
	}

	now := o.clock.Now()
	res := ImportResult{IgnoredColumns: ignored}
	reject := func(line int, reason string) {
		if len(res.Rejected) < o.opts.MaxRejected {
			res.Rejected = append(res.Rejected, RejectedRow{Line: line, Reason: reason})
		} else {
			res.MoreRejected++
		}
	}
	cache := &tokenCache{resolved: map[resolveKey]ResolvedTouch{}, issued: map[issueKey]issued{}}
	pending := make([]Event, 0, o.opts.BatchSize)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		ar, err := o.log.Append(ctx, &Batch{SourceID: TouchSourceID, ReceivedAt: now, Events: pending})
		if err != nil {
			return err
		}
		res.Imported += ar.Accepted
		res.Duplicates += ar.Duplicates
		pending = make([]Event, 0, o.opts.BatchSize)
		return nil
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) {
			res.Rows++
			reject(parseErr.StartLine, "The row is not valid CSV: "+parseErr.Err.Error()+".")
			continue
		} else if err != nil {
			return res, fmt.Errorf("collect: read import: %w", err)
		}
		if blank(rec) {
			continue
		}
		res.Rows++
		line, _ := cr.FieldPos(0)
		rep, at, atKey, reason := rowReport(rec, cols, len(header), loc, now)
		if reason != "" {
			reject(line, reason)
			continue
		}
		t, props, err := o.prepare(ctx, op, &rep, at, atKey, now, cache)
		if hearth.KindOf(err) == hearth.Invalid {
			reject(line, hearth.MessageOf(err))
			continue
		} else if err != nil {
			return res, err
		}
		ev, err := offlineEvent(t, props)
		if err != nil {
			return res, fmt.Errorf("collect: offline touch event: %w", err)
		}
		if pending = append(pending, ev); len(pending) == o.opts.BatchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}

func newCSVReader(data []byte, comma rune) *csv.Reader {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = comma
	cr.FieldsPerRecord = -1 // rows may be short or long; each is checked on its own
	cr.ReuseRecord = true
	return cr
}

// sniffComma finds the file's separator from its first line: a comma, unless semicolons (Excel in much of
// Europe) or tabs are more common there.
func sniffComma(data []byte) rune {
	first, _, _ := bytes.Cut(data, []byte{'\n'})
	comma, n := ',', bytes.Count(first, []byte{','})
	for _, c := range []rune{';', '\t'} {
		if m := bytes.Count(first, []byte(string(c))); m > n {
			comma, n = c, m
		}
	}
	return comma
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// readHeader maps the header's cells to columns: cols[c] is the index of column c, or -1.
func readHeader(op string, header []string) (cols [numColumns]int, ignored []string, err error) {
	for i := range cols {
		cols[i] = -1
	}
	if !utf8.ValidString(strings.Join(header, "")) {
		return cols, nil, hearth.Errorf(hearth.Invalid, op, "The file is not UTF-8 text. Excel's plain \"CSV\" is not: save it as \"CSV UTF-8\" (CSV UTF-8 逗号分隔) and import it again.")
	}
	for i, h := range header {
		c := columnOf(h)
		switch {
		case c < 0:
			if name := strings.TrimSpace(h); name != "" {
				ignored = append(ignored, name)
			}
		case cols[c] >= 0:
			return cols, nil, hearth.Errorf(hearth.Invalid, op, "Two columns are %s: %q and %q; keep one.", columnNames[c], strings.TrimSpace(header[cols[c]]), strings.TrimSpace(h))
		default:
			cols[c] = i
		}
	}
	if cols[colToken] < 0 && cols[colTouchpointID] < 0 {
		return cols, nil, hearth.Errorf(hearth.Invalid, op, "The header row must name a token or a touchpoint_id column.")
	}
	if cols[colPhone] < 0 && cols[colEmail] < 0 && cols[colOpenID] < 0 && cols[colUnionID] < 0 && cols[colUserID] < 0 && cols[colAnonymousID] < 0 {
		return cols, nil, hearth.Errorf(hearth.Invalid, op, "The header row must name a column of the person: phone, email, wechat_openid, wechat_unionid, user_id or anonymous_id.")
	}
	return cols, ignored, nil
}

// rowReport reads a row into a report and its time; reason is why the row is refused, or "".
func rowReport(rec []string, cols [numColumns]int, width int, loc *time.Location, now time.Time) (rep OfflineReport, at time.Time, atKey, reason string) {
	if len(rec) > width && !blank(rec[width:]) {
		return rep, at, "", fmt.Sprintf("The row has %d fields; the header has %d.", len(rec), width)
	}
	var v [numColumns]string
	for c, i := range cols {
		if i >= 0 && i < len(rec) {
			v[c] = strings.TrimSpace(rec[i])
			if !utf8.ValidString(v[c]) {
				return rep, at, "", fmt.Sprintf("The %s is not UTF-8 text.", columnNames[c])
			}
		}
	}
	if s := v[colSerial]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return rep, at, "", "The serial must be a whole number, 0 or more."
		}
		rep.Serial = n
	}
	if s := v[colTime]; s != "" {
		t, ok := parseImportTime(s, loc)
		if !ok {
			return rep, at, "", "The time must be RFC 3339 (2026-05-01T14:30:00+08:00) or a local time such as 2026-05-01 14:30."
		}
		at, atKey = t, t.Format(time.RFC3339Nano)
	} else {
		at = now // when it was recorded; the row is the same touch however often it is imported
	}
	rep.Token, rep.TouchpointID = v[colToken], v[colTouchpointID]
	rep.Phone, rep.Email, rep.WeChatOpenID, rep.WeChatUnionID = v[colPhone], v[colEmail], v[colOpenID], v[colUnionID]
	rep.UserID, rep.AnonymousID, rep.MessageID = v[colUserID], v[colAnonymousID], v[colMessageID]
	return rep, at, atKey, ""
}
