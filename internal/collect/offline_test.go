package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
)

// The fakes: touchpoints "tp1" (in campaign "c1", serials 1 to 10 issued), "tp2" (no campaign) and a few
// tokens that are refused.

var offlineNow = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC) // 16:00 in Shanghai

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type fakeTouchpoints struct {
	resolves, issues int
	down             bool // the store fails
}

// Tokens of the fakes: "T-<touchpoint>-<serial>"; "T-expired", "T-revoked" and "T-paused" are genuine but
// refused; anything else is not a token.
func (f *fakeTouchpoints) ResolveTouch(_ context.Context, token string, _ time.Time) (ResolvedTouch, error) {
	f.resolves++
	if f.down {
		return ResolvedTouch{}, &hearth.Error{Kind: hearth.Unavailable, Op: "fake", Msg: "down"}
	}
	switch token {
	case "T-expired", "T-revoked", "T-paused":
		return ResolvedTouch{TouchpointID: "tp1", Refused: strings.TrimPrefix(token, "T-"), Known: true}, nil
	}
	parts := strings.Split(token, "-")
	if len(parts) == 3 && parts[0] == "T" {
		serial, err := strconv.ParseInt(parts[2], 10, 64)
		switch {
		case err != nil:
		case parts[1] == "tp1" && serial <= 10:
			return ResolvedTouch{TouchpointID: "tp1", TouchpointName: "Shelf code", CampaignID: "c1", Channel: "qr_shelf", Serial: serial,
				Destination: "https://shop.example/", Known: true}, nil
		case parts[1] == "tp2" && serial == 0:
			return ResolvedTouch{TouchpointID: "tp2", TouchpointName: "Business card", Channel: "business_card", Destination: "https://shop.example/", Known: true}, nil
		}
	}
	return ResolvedTouch{Refused: "forged"}, nil
}

func (f *fakeTouchpoints) IssueTouchToken(_ context.Context, id string, serial int64) (string, error) {
	f.issues++
	last := map[string]int64{"tp1": 10, "tp2": 0}
	l, ok := last[id]
	if !ok {
		return "", &hearth.Error{Kind: hearth.NotFound, Op: "fake", Msg: "Touchpoint not found."}
	}
	if serial > l {
		return "", hearth.Errorf(hearth.Invalid, "fake", "serial must be one this touchpoint has issued (1 to %d), or 0 for none.", l)
	}
	return fmt.Sprintf("T-%s-%d", id, serial), nil
}

// memLog is an event log that deduplicates by message id, as the real one does within its window.
type memLog struct {
	events  []Event
	seen    map[string]bool
	appends int
	fail    error
}

func (l *memLog) Append(_ context.Context, b *Batch) (AppendResult, error) {
	if l.fail != nil {
		return AppendResult{}, l.fail
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	l.appends++
	var res AppendResult
	for _, e := range b.Events {
		if b.SourceID != TouchSourceID || e.SourceID != TouchSourceID {
			panic("offline touches must go to the touch source")
		}
		if l.seen[e.MessageID] {
			res.Duplicates++
			continue
		}
		l.seen[e.MessageID] = true
		res.Accepted++
		l.events = append(l.events, e)
	}
	return res, nil
}

func newOffline(opts OfflineOptions) (*OfflineTouches, *memLog, *fakeTouchpoints) {
	log, tps := &memLog{}, &fakeTouchpoints{}
	return NewOfflineTouches(tps, tps, log, fixedClock{offlineNow}, opts), log, tps
}

// recordedSummary is what a test checks of a recorded touch event.
type recordedSummary struct {
	Touchpoint, Token string
	Serial            int64
	At                string
	Phone, Email      string
	External          string
	UserID            string
}

type touchPayload struct {
	MessageID  string         `json:"messageId"`
	Event      string         `json:"event"`
	Type       string         `json:"type"`
	UserID     string         `json:"userId"`
	Anonymous  string         `json:"anonymousId"`
	Timestamp  time.Time      `json:"timestamp"`
	Properties map[string]any `json:"properties"`
	Context    struct {
		Traits      map[string]string `json:"traits"`
		ExternalIDs []ExternalID      `json:"externalIds"`
	} `json:"context"`
}

func decodeTouch(t testing.TB, e Event) touchPayload {
	t.Helper()
	var p touchPayload
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		t.Fatalf("payload %s: %v", e.Payload, err)
	}
	return p
}

func summarise(t testing.TB, evs []Event) []recordedSummary {
	t.Helper()
	var out []recordedSummary
	for _, e := range evs {
		p := decodeTouch(t, e)
		if p.Type != "track" || p.Event != TouchEventName || p.Properties["via"] != "offline" || p.MessageID != e.MessageID || !p.Timestamp.Equal(e.Timestamp) {
			t.Errorf("not an offline touch event: %s", e.Payload)
		}
		s := recordedSummary{Touchpoint: p.Properties["touchpoint_id"].(string), Token: p.Properties["token"].(string),
			At: p.Timestamp.UTC().Format(time.RFC3339), Phone: p.Context.Traits["phone"], Email: p.Context.Traits["email"], UserID: p.UserID}
		if n, ok := p.Properties["serial"].(float64); ok {
			s.Serial = int64(n)
		}
		for _, x := range p.Context.ExternalIDs {
			s.External += x.Type + ":" + x.ID + " "
		}
		s.External = strings.TrimSpace(s.External)
		out = append(out, s)
	}
	return out
}

func TestImportOfflineCSV(t *testing.T) {
	const bom = "\ufeff"
	tests := []struct {
		name    string
		csv     string
		opts    ImportOptions
		limits  OfflineOptions
		errKind hearth.Kind // of the whole import's error, when wantErr
		wantErr bool
		want    ImportResult
		touches []recordedSummary
	}{
		{
			name: "tokens and phones, Excel's BOM and CRLF",
			csv:  bom + "token,phone,time\r\nT-tp1-3,13800138000,2026-04-30 14:30\r\nT-tp2-0, +86 139 0013 9000 ,2026-04-30T09:00:00Z\r\n",
			want: ImportResult{Rows: 2, Imported: 2},
			touches: []recordedSummary{
				{Touchpoint: "tp1", Token: "T-tp1-3", Serial: 3, At: "2026-04-30T06:30:00Z", Phone: "13800138000"},
				{Touchpoint: "tp2", Token: "T-tp2-0", At: "2026-04-30T09:00:00Z", Phone: "+86 139 0013 9000"},
			},
		},
		{
			name: "Chinese headers",
			csv:  "触点,序列号,手机号,邮箱,时间,openid,会员号\n" + "tp1,7,13800138000,li@example.cn,2026/4/30 9:05,oAbCdEf123456,M001\n",
			want: ImportResult{Rows: 1, Imported: 1},
			touches: []recordedSummary{{Touchpoint: "tp1", Token: "T-tp1-7", Serial: 7, At: "2026-04-30T01:05:00Z", Phone: "13800138000",
				Email: "li@example.cn", External: "wechat_openid:oAbCdEf123456", UserID: "M001"}},
		},
		{
			name: "synonyms in any case, a required-field star, unknown columns ignored",
			csv:  "Touchpoint ID,Mobile*,E-Mail,At,OpenID,UnionID,Name,备注,\n" + "tp2,13800138000,A@Example.com,2026-04-30 10:00:00,oAbCdEf123456,uAbCdEf123456,Li Lei,VIP,\n",
			want: ImportResult{Rows: 1, Imported: 1, IgnoredColumns: []string{"Name", "备注"}},
			touches: []recordedSummary{{Touchpoint: "tp2", Token: "T-tp2-0", At: "2026-04-30T02:00:00Z", Phone: "13800138000",
				Email: "A@Example.com", External: "wechat_openid:oAbCdEf123456 wechat_unionid:uAbCdEf123456"}},
		},
		{
			name: "another time zone",
			csv:  "token,email,时间\nT-tp1-1,a@example.com,2026-04-30 14:30\nT-tp1-1,b@example.com,2026-04-30T14:30:00+08:00\n",
			opts: ImportOptions{TimeZone: time.UTC},
			want: ImportResult{Rows: 2, Imported: 2},
			touches: []recordedSummary{
				{Touchpoint: "tp1", Token: "T-tp1-1", Serial: 1, At: "2026-04-30T14:30:00Z", Email: "a@example.com"},
				{Touchpoint: "tp1", Token: "T-tp1-1", Serial: 1, At: "2026-04-30T06:30:00Z", Email: "b@example.com"},
			},
		},
		{
			name:    "no time: recorded now",
			csv:     "token,user_id\nT-tp2-0,u1\n",
			want:    ImportResult{Rows: 1, Imported: 1},
			touches: []recordedSummary{{Touchpoint: "tp2", Token: "T-tp2-0", At: "2026-05-01T08:00:00Z", UserID: "u1"}},
		},
		{
			name:    "semicolons, as Excel writes in much of Europe",
			csv:     "token;phone\nT-tp2-0;13800138000\n",
			want:    ImportResult{Rows: 1, Imported: 1},
			touches: []recordedSummary{{Touchpoint: "tp2", Token: "T-tp2-0", At: "2026-05-01T08:00:00Z", Phone: "13800138000"}},
		},
		{
			name: "bad rows are reported by line, good ones recorded",
			csv: "token,touchpoint_id,serial,phone,email,time\n" + // 1
				"T-tp1-1,,,13800138000,,2026-04-30 10:00\n" + // 2 good
				"T-tp1-1,,,,,2026-04-30 10:00\n" + // 3 no identifier
				"T-nope,,,13800138000,,\n" + // 4 not a token
				"T-expired,,,13800138000,,\n" + // 5
				",tp9,,13800138000,,\n" + // 6 unknown touchpoint
				",tp1,11,13800138000,,\n" + // 7 serial never issued
				"T-tp1-1,,,13800138000,,yesterday\n" + // 8
				"T-tp1-1,,,13800138000,,2026-05-02 10:00\n" + // 9 future
				"T-tp1-1,,,13800138000,,2020-01-01 10:00\n" + // 10 too old
				"T-tp1-1,,,1.38001E+10,,\n" + // 11 Excel
				"T-tp1-1,,,call me,,\n" + // 12
				"T-tp1-1,,,,li@,\n" + // 13
				"\"T-tp1-1\",,,\"138\n00138000\",,\n" + // 14-15: a quoted line break
				"T-tp1-1,,x,13800138000,,\n" + // 16
				"T-tp1-1,tp2,,13800138000,,\n" + // 17 another touchpoint
				"T-tp1-1,,,13800138000,,,extra\n" + // 18
				"T-tp1-1,,,13 8\"0,,\n" + // 19 bare quote
				",,,,,\n" + // 20 blank: skipped
				"T-tp1-2,,,,li@example.com,\n", // 21 good
			want: ImportResult{Rows: 18, Imported: 2, Rejected: []RejectedRow{
				{3, "At least one identifier is needed: phone, email, wechat_openid, wechat_unionid, user_id or anonymous_id."},
				{4, "The token's signature does not match: it was mistyped or made up."},
				{5, "The token has expired."},
				{6, "There is no touchpoint with this touchpoint_id."},
				{7, "serial must be one this touchpoint has issued (1 to 10), or 0 for none."},
				{8, "The time must be RFC 3339 (2026-05-01T14:30:00+08:00) or a local time such as 2026-05-01 14:30."},
				{9, "The time is in the future."},
				{10, "The time is more than 2 years ago."},
				{11, "The phone number looks like one that Excel turned into a number (such as 1.38E+10): format the column as text and export again."},
				{12, "The phone number may hold only digits, spaces and + - ( ) ."},
				{13, "The email address is not valid."},
				{14, "The phone number may hold only digits, spaces and + - ( ) ."},
				{16, "The serial must be a whole number, 0 or more."},
				{17, "The token is of another touchpoint than touchpoint_id."},
				{18, "The row has 7 fields; the header has 6."},
				{19, "The row is not valid CSV: bare \" in non-quoted-field."},
			}},
			touches: []recordedSummary{
				{Touchpoint: "tp1", Token: "T-tp1-1", Serial: 1, At: "2026-04-30T02:00:00Z", Phone: "13800138000"},
				{Touchpoint: "tp1", Token: "T-tp1-2", Serial: 2, At: "2026-05-01T08:00:00Z", Email: "li@example.com"},
			},
		},
		{
			name: "a row repeated in the file is recorded once",
			csv:  "token,phone,time\nT-tp2-0,13800138000,2026-04-30 10:00\nT-tp2-0,13800138000,2026-04-30 10:00\n",
			want: ImportResult{Rows: 2, Imported: 1, Duplicates: 1},
			touches: []recordedSummary{
				{Touchpoint: "tp2", Token: "T-tp2-0", At: "2026-04-30T02:00:00Z", Phone: "13800138000"},
			},
		},
		{
			name:   "refused rows beyond the list are counted",
			csv:    "token,phone\nT-x,1\nT-x,1\nT-x,1\n",
			limits: OfflineOptions{MaxRejected: 2},
			want: ImportResult{Rows: 3, MoreRejected: 1, Rejected: []RejectedRow{
				{2, "The phone number must have 5 to 15 digits."}, {3, "The phone number must have 5 to 15 digits."}}},
		},
		{name: "too many rows", csv: "token,phone\nT-tp2-0,13800138000\nT-tp2-0,13800138001\nT-tp2-0,13800138002\n",
			limits: OfflineOptions{MaxRows: 2}, wantErr: true, errKind: hearth.TooLarge},
		{name: "as many rows as allowed", csv: "token,phone\nT-tp2-0,13800138000\n\nT-tp2-0,13800138001\n",
			limits: OfflineOptions{MaxRows: 2}, want: ImportResult{Rows: 2, Imported: 2},
			touches: []recordedSummary{
				{Touchpoint: "tp2", Token: "T-tp2-0", At: "2026-05-01T08:00:00Z", Phone: "13800138000"},
				{Touchpoint: "tp2", Token: "T-tp2-0", At: "2026-05-01T08:00:00Z", Phone: "13800138001"},
			}},
		{name: "too large", csv: "token,phone\n" + strings.Repeat("T-tp2-0,13800138000\n", 100), limits: OfflineOptions{MaxBytes: 1000},
			wantErr: true, errKind: hearth.TooLarge},
		{name: "empty", csv: bom + "\r\n", wantErr: true, errKind: hearth.Invalid},
		{name: "no touchpoint column", csv: "phone,time\n13800138000,2026-04-30 10:00\n", wantErr: true, errKind: hearth.Invalid},
		{name: "no person column", csv: "token,time\nT-tp2-0,2026-04-30 10:00\n", wantErr: true, errKind: hearth.Invalid},
		{name: "two phone columns", csv: "token,phone,手机\nT-tp2-0,1,2\n", wantErr: true, errKind: hearth.Invalid},
		{name: "GBK, as Chinese Excel saves CSV", csv: "token,\xca\xd6\xbb\xfa\xba\xc5\nT-tp2-0,13800138000\n", wantErr: true, errKind: hearth.Invalid},
		{name: "header is not CSV", csv: "token,\"phone\n", wantErr: true, errKind: hearth.Invalid},
		{name: "only a header", csv: "token,phone\r\n", want: ImportResult{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, log, _ := newOffline(tt.limits)
			got, err := o.Import(context.Background(), strings.NewReader(tt.csv), tt.opts)
			if tt.wantErr {
				if err == nil || hearth.KindOf(err) != tt.errKind || hearth.MessageOf(err) == "" {
					t.Fatalf("error %v, want one of kind %s with a message", err, tt.errKind)
				}
				if len(log.events) != 0 {
					t.Errorf("%d touches recorded from a file refused whole", len(log.events))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.touches, summarise(t, log.events)); diff != "" {
				t.Errorf("touches (-want +got):\n%s", diff)
			}

			// Importing the file again records nothing twice.
			again, err := o.Import(context.Background(), strings.NewReader(tt.csv), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if again.Imported != 0 || again.Duplicates != got.Imported+got.Duplicates {
				t.Errorf("imported again: %+v after %+v", again, got)
			}
		})
	}
}

// An import appends in batches, resolving each token and touchpoint once.
func TestImportOfflineBatches(t *testing.T) {
	o, log, tps := newOffline(OfflineOptions{BatchSize: 2})
	var b strings.Builder
	b.WriteString("touchpoint_id,serial,phone\n")
	for i := range 5 {
		fmt.Fprintf(&b, "tp1,1,1380013800%d\n", i)
	}
	res, err := o.Import(context.Background(), strings.NewReader(b.String()), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 5 || log.appends != 3 || tps.issues != 1 || tps.resolves != 1 {
		t.Errorf("imported %d in %d appends, %d issues, %d resolves; want 5 in 3, 1, 1", res.Imported, log.appends, tps.issues, tps.resolves)
	}

	// A failing log fails the import.
	log.fail = &hearth.Error{Kind: hearth.Unavailable, Op: "fake", Msg: "down"}
	if _, err := o.Import(context.Background(), strings.NewReader(b.String()), ImportOptions{}); hearth.KindOf(err) != hearth.Unavailable {
		t.Errorf("with the log down: %v", err)
	}
	// So does a failing resolver.
	log.fail, tps.down = nil, true
	if _, err := o.Import(context.Background(), strings.NewReader("token,phone\nT-tp2-0,13800138000\n"), ImportOptions{}); hearth.KindOf(err) != hearth.Unavailable {
		t.Errorf("with the touchpoints down: %v", err)
	}
}

func TestRecordOfflineTouch(t *testing.T) {
	tests := []struct {
		name string
		rep  OfflineReport
		code string // of the error; "" for none
		want recordedSummary
	}{
		{name: "token and phone", rep: OfflineReport{Token: "T-tp1-4", Phone: " 13800138000 ", At: "2026-04-30T10:00:00+08:00"},
			want: recordedSummary{Touchpoint: "tp1", Token: "T-tp1-4", Serial: 4, At: "2026-04-30T02:00:00Z", Phone: "13800138000"}},
		{name: "touchpoint and serial, every identifier", rep: OfflineReport{TouchpointID: "tp1", Serial: 2, Email: "a@example.com", Phone: "13800138000",
			WeChatOpenID: "oAbCdEf123456", WeChatUnionID: "uAbCdEf123456", UserID: "u1", AnonymousID: "a1"},
			want: recordedSummary{Touchpoint: "tp1", Token: "T-tp1-2", Serial: 2, At: "2026-05-01T08:00:00Z", Phone: "13800138000", Email: "a@example.com",
				External: "wechat_openid:oAbCdEf123456 wechat_unionid:uAbCdEf123456", UserID: "u1"}},
		{name: "token and its own touchpoint and serial", rep: OfflineReport{Token: "T-tp1-4", TouchpointID: "tp1", Serial: 4, UserID: "u1"},
			want: recordedSummary{Touchpoint: "tp1", Token: "T-tp1-4", Serial: 4, At: "2026-05-01T08:00:00Z", UserID: "u1"}},
		{name: "a little ahead", rep: OfflineReport{Token: "T-tp2-0", UserID: "u1", At: "2026-05-01T08:04:00Z"},
			want: recordedSummary{Touchpoint: "tp2", Token: "T-tp2-0", At: "2026-05-01T08:04:00Z", UserID: "u1"}},
		{name: "no identifier", rep: OfflineReport{Token: "T-tp1-4", Phone: "  "}, code: "invalid"},
		{name: "no touchpoint", rep: OfflineReport{Phone: "13800138000"}, code: "invalid"},
		{name: "expired", rep: OfflineReport{Token: "T-expired", Phone: "13800138000"}, code: "token_expired"},
		{name: "revoked", rep: OfflineReport{Token: "T-revoked", Phone: "13800138000"}, code: "token_revoked"},
		{name: "paused", rep: OfflineReport{Token: "T-paused", Phone: "13800138000"}, code: "token_paused"},
		{name: "forged", rep: OfflineReport{Token: "T-tp1-99", Phone: "13800138000"}, code: "token_forged"},
		{name: "long token", rep: OfflineReport{Token: strings.Repeat("T", 100), Phone: "13800138000"}, code: "invalid"},
		{name: "unknown touchpoint", rep: OfflineReport{TouchpointID: "tp9", Phone: "13800138000"}, code: "unknown_touchpoint"},
		{name: "odd touchpoint id", rep: OfflineReport{TouchpointID: "tp1\x00", Phone: "13800138000"}, code: "invalid"},
		{name: "serial not issued", rep: OfflineReport{TouchpointID: "tp1", Serial: 11, Phone: "13800138000"}, code: "invalid"},
		{name: "negative serial", rep: OfflineReport{TouchpointID: "tp1", Serial: -1, Phone: "13800138000"}, code: "invalid"},
		{name: "another serial than the token's", rep: OfflineReport{Token: "T-tp1-4", Serial: 5, Phone: "13800138000"}, code: "invalid"},
		{name: "local time", rep: OfflineReport{Token: "T-tp1-4", Phone: "13800138000", At: "2026-04-30 10:00"}, code: "invalid"},
		{name: "future", rep: OfflineReport{Token: "T-tp1-4", Phone: "13800138000", At: "2026-05-01T08:06:00Z"}, code: "invalid"},
		{name: "too old", rep: OfflineReport{Token: "T-tp1-4", Phone: "13800138000", At: "2024-04-30T08:00:00Z"}, code: "invalid"},
		{name: "phone junk", rep: OfflineReport{Token: "T-tp1-4", Phone: "n/a"}, code: "invalid"},
		{name: "phone too long", rep: OfflineReport{Token: "T-tp1-4", Phone: "1234567890123456"}, code: "invalid"},
		{name: "email junk", rep: OfflineReport{Token: "T-tp1-4", Email: "a b@example.com"}, code: "invalid"},
		{name: "email without domain", rep: OfflineReport{Token: "T-tp1-4", Email: "a@localhost"}, code: "invalid"},
		{name: "openid junk", rep: OfflineReport{Token: "T-tp1-4", WeChatOpenID: "o/../etc"}, code: "invalid"},
		{name: "user id too long", rep: OfflineReport{Token: "T-tp1-4", UserID: strings.Repeat("u", 256)}, code: "invalid"},
		{name: "control characters", rep: OfflineReport{Token: "T-tp1-4", UserID: "u\x07"}, code: "invalid"},
		{name: "properties not an object", rep: OfflineReport{Token: "T-tp1-4", UserID: "u", Properties: json.RawMessage(`[1]`)}, code: "invalid"},
		{name: "Hearth's own property", rep: OfflineReport{Token: "T-tp1-4", UserID: "u", Properties: json.RawMessage(`{"via":"link"}`)}, code: "invalid"},
		{name: "properties too large", rep: OfflineReport{Token: "T-tp1-4", UserID: "u",
			Properties: json.RawMessage(`{"x":"` + strings.Repeat("x", MaxOfflineProperties) + `"}`)}, code: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, log, _ := newOffline(OfflineOptions{})
			got, err := o.Record(context.Background(), tt.rep)
			if tt.code != "" {
				if hearth.KindOf(err) != hearth.Invalid || hearth.CodeOf(err) != tt.code || hearth.MessageOf(err) == "" {
					t.Fatalf("error %v (code %s), want code %s", err, hearth.CodeOf(err), tt.code)
				}
				if len(log.events) != 0 {
					t.Error("a refused report was recorded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]recordedSummary{tt.want}, summarise(t, log.events)); diff != "" {
				t.Errorf("touch (-want +got):\n%s", diff)
			}
			if got.TouchpointID != tt.want.Touchpoint || got.Serial != tt.want.Serial || got.At.Format(time.RFC3339) != tt.want.At ||
				got.MessageID != log.events[0].MessageID || got.Duplicate {
				t.Errorf("recorded %+v", got)
			}
		})
	}
}

func TestRecordOfflineTouchOnce(t *testing.T) {
	o, log, _ := newOffline(OfflineOptions{})
	ctx := context.Background()
	rep := OfflineReport{Token: "T-tp1-4", Phone: "13800138000", At: "2026-04-30T10:00:00+08:00",
		Properties: json.RawMessage(`{"staff":"Wang","store":{"city":"Shanghai"}}`)}
	first, err := o.Record(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	p := decodeTouch(t, log.events[0])
	if p.Properties["staff"] != "Wang" || p.Properties["touchpoint_id"] != "tp1" || p.Properties["campaign_id"] != "c1" {
		t.Errorf("properties %v", p.Properties)
	}
	// Sent again, the same touch; the same by touchpoint id and serial, and in another time zone.
	for _, again := range []OfflineReport{rep, {TouchpointID: "tp1", Serial: 4, Phone: "13800138000", At: "2026-04-30T02:00:00Z"}} {
		got, err := o.Record(ctx, again)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Duplicate || got.MessageID != first.MessageID {
			t.Errorf("again: %+v, first %+v", got, first)
		}
	}
	// Without a time, sent again within the minute: the same touch.
	now1, err := o.Record(ctx, OfflineReport{Token: "T-tp1-4", Phone: "13800138000"})
	if err != nil {
		t.Fatal(err)
	}
	now2, err := o.Record(ctx, OfflineReport{Token: "T-tp1-4", Phone: "13800138000"})
	if err != nil || !now2.Duplicate || now2.MessageID != now1.MessageID || now1.MessageID == first.MessageID {
		t.Errorf("without a time: %+v then %+v (%v)", now1, now2, err)
	}
	// A given message id is the report's; another person is another touch.
	withID, err := o.Record(ctx, OfflineReport{Token: "T-tp1-4", Phone: "13800138000", MessageID: "kiosk-7-0001"})
	if err != nil || withID.MessageID != "kiosk-7-0001" || withID.Duplicate {
		t.Errorf("with a message id: %+v (%v)", withID, err)
	}
	other, err := o.Record(ctx, OfflineReport{Token: "T-tp1-4", Phone: "13800138001", At: "2026-04-30T10:00:00+08:00"})
	if err != nil || other.Duplicate {
		t.Errorf("another person: %+v (%v)", other, err)
	}
	if len(log.events) != 4 {
		t.Errorf("%d touches recorded, want 4", len(log.events))
	}
}

func TestParseTimeZone(t *testing.T) {
	tests := []struct {
		in     string
		offset int // seconds east of UTC on 2026-05-01
		bad    bool
	}{
		{"", 8 * 3600, false}, // the default
		{"Asia/Shanghai", 8 * 3600, false},
		{"UTC", 0, false},
		{"Europe/Berlin", 2 * 3600, false},
		{"+08:00", 8 * 3600, false},
		{"UTC+8", 8 * 3600, false},
		{"GMT-0530", -(5*3600 + 30*60), false},
		{"-03", -3 * 3600, false},
		{"Local", 0, true},
		{"Mars/Olympus", 0, true},
		{"+25:00", 0, true},
		{"+08:60", 0, true},
		{"+8:0", 0, true},
	}
	for _, tt := range tests {
		loc, err := ParseTimeZone(tt.in)
		if tt.bad {
			if hearth.KindOf(err) != hearth.Invalid {
				t.Errorf("%q: %v, want Invalid", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if loc == nil {
			loc = NewOfflineTouches(nil, nil, nil, nil, OfflineOptions{}).opts.TimeZone
		}
		if _, off := offlineNow.In(loc).Zone(); off != tt.offset {
			t.Errorf("%q: offset %d, want %d", tt.in, off, tt.offset)
		}
	}
}

func TestParseImportTime(t *testing.T) {
	loc := chinaTime()
	for in, want := range map[string]string{
		"2026-04-30T14:30:00+08:00":  "2026-04-30T06:30:00Z",
		"2026-04-30T06:30:00.123Z":   "2026-04-30T06:30:00.123Z",
		"2026-04-30 14:30:00+08:00":  "2026-04-30T06:30:00Z",
		"2026-04-30 14:30":           "2026-04-30T06:30:00Z",
		"2026-04-30 14:30:15":        "2026-04-30T06:30:15Z",
		"2026-04-30 14:30:15.5":      "2026-04-30T06:30:15.5Z",
		"2026/4/30 9:05":             "2026-04-30T01:05:00Z",
		"2026-4-3 09:05":             "2026-04-03T01:05:00Z",
		"2026-04-30T14:30":           "2026-04-30T06:30:00Z",
		"2026-04-30":                 "2026-04-29T16:00:00Z",
		"2026/04/30":                 "2026-04-29T16:00:00Z",
		"30/04/2026 14:30":           "",
		"04/30/2026":                 "",
		"46142.5":                    "",
		"2026-04-30 14:30 下午":        "",
		"2026-13-01 10:00":           "",
		"":                           "",
		"2026-04-30T14:30:00+08:00x": "",
	} {
		got, ok := parseImportTime(in, loc)
		if ok != (want != "") || ok && got.Format(time.RFC3339Nano) != want {
			t.Errorf("%q: %v %v, want %q", in, got, ok, want)
		}
	}
}

// FuzzOfflineCSV: whatever file arrives, an import never panics, and each row is either recorded (or found a
// duplicate) or refused with its line and a reason; what it records are offline touch events of a genuine
// token, for someone, at a time within bounds.
func FuzzOfflineCSV(f *testing.F) {
	for _, seed := range []string{
		"token,phone,time\r\nT-tp1-3,13800138000,2026-04-30 14:30\r\n",
		"\ufeff触点,序列号,手机号,邮箱,时间,openid,会员号\ntp1,7,13800138000,li@example.cn,2026/4/30 9:05,oAbCdEf123456,M001\n",
		"token;email\nT-tp2-0;a@b.c\nT-expired;a@b.c\n",
		"token,touchpoint_id,serial,phone,email,time\nT-tp1-1,,,,,2026-04-30 10:00\n,tp9,,1,,\n\"T-tp1-1\",,,\"138\n00138000\",,\nT-tp1-1,,,13 8\"0,,\n",
		"token\tuser_id\tanonymous_id\tmessage_id\nT-tp2-0\tu1\ta1\tm1\nT-tp2-0\tu1\ta1\tm1\n",
		"touchpoint_id,serial,wechat_unionid,time\ntp1,10,uAbCdEf123456,2026-04-30T10:00:00Z\ntp1,11,uAbCdEf123456,\n",
		"token,phone\n",
		"",
		"\"",
	} {
		f.Add(seed, "")
		f.Add(seed, "+05:30")
	}
	f.Fuzz(func(t *testing.T, file, tz string) {
		loc, err := ParseTimeZone(tz)
		if err != nil {
			if hearth.KindOf(err) != hearth.Invalid {
				t.Fatalf("time zone %q: %v", tz, err)
			}
			return
		}
		o, log, _ := newOffline(OfflineOptions{MaxRows: 50, MaxBytes: 4096, BatchSize: 3, MaxRejected: 10})
		res, err := o.Import(context.Background(), strings.NewReader(file), ImportOptions{TimeZone: loc})
		if err != nil {
			if k := hearth.KindOf(err); (k != hearth.Invalid && k != hearth.TooLarge) || hearth.MessageOf(err) == "" {
				t.Fatalf("error %v is neither Invalid nor TooLarge with a reason", err)
			}
			if len(log.events) != 0 {
				t.Fatal("a file refused whole recorded touches")
			}
			return
		}
		if res.Imported+res.Duplicates+len(res.Rejected)+res.MoreRejected != res.Rows {
			t.Fatalf("%d rows, but %d recorded, %d duplicates, %d+%d refused", res.Rows, res.Imported, res.Duplicates, len(res.Rejected), res.MoreRejected)
		}
		if res.Imported != len(log.events) || len(res.Rejected) > 10 {
			t.Fatalf("result %+v, %d events", res, len(log.events))
		}
		lines := bytes.Count([]byte(file), []byte{'\n'}) + 1
		prev := 0
		for _, r := range res.Rejected {
			if r.Line < 2 || r.Line > lines || r.Line <= prev || r.Reason == "" {
				t.Fatalf("refused row %+v (after line %d, of %d)", r, prev, lines)
			}
			prev = r.Line
		}
		for _, e := range log.events {
			p := decodeTouch(t, e)
			tok, _ := p.Properties["token"].(string)
			if res, _ := (&fakeTouchpoints{}).ResolveTouch(context.Background(), tok, time.Time{}); res.Refused != "" || p.Properties["via"] != "offline" {
				t.Fatalf("recorded a touch of a refused token: %s", e.Payload)
			}
			if len(p.Context.Traits)+len(p.Context.ExternalIDs) == 0 && p.UserID == "" && p.Anonymous == "" {
				t.Fatalf("recorded a touch of nobody: %s", e.Payload)
			}
			if e.Timestamp.After(offlineNow.Add(5*time.Minute)) || e.Timestamp.Before(offlineNow.Add(-2*365*24*time.Hour)) || e.MessageID == "" {
				t.Fatalf("recorded a touch at %s: %s", e.Timestamp, e.Payload)
			}
		}
		// The same file again records nothing.
		again, err := o.Import(context.Background(), strings.NewReader(file), ImportOptions{TimeZone: loc})
		if err != nil || again.Imported != 0 || again.Rows != res.Rows {
			t.Fatalf("imported again: %+v (%v), first %+v", again, err, res)
		}
	})
}
