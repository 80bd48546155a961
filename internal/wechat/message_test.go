package wechat

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-cdp/hearth"
)

const openID = "oTEST0000000000000000000000A"

// wrap puts fields in WeChat's envelope, the way its documentation prints them: one per line.
func wrap(fields string) string {
	return "<xml>\n<ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>\n<FromUserName><![CDATA[" + openID +
		"]]></FromUserName>\n<CreateTime>1780000000</CreateTime>\n" + fields + "\n</xml>"
}

func event(evt, key string) Message {
	return Message{ToUserName: "gh_0123456789ab", FromUserName: openID, CreateTime: 1780000000, MsgType: MsgTypeEvent, Event: evt, EventKey: key}
}

func TestParseMessage(t *testing.T) {
	withTicket := func(m Message) Message { m.Ticket = "gQH47joAAAAA+/=="; return m }
	tests := []struct {
		name      string
		body      string
		want      Message
		wantScene string
	}{
		{
			name:      "subscribe by QR code",
			body:      wrap(`<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_poster-42]]></EventKey><Ticket><![CDATA[gQH47joAAAAA+/==]]></Ticket>`),
			want:      withTicket(event("subscribe", "qrscene_poster-42")),
			wantScene: "poster-42",
		},
		{
			name:      "scan by a follower",
			body:      wrap(`<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[poster-42]]></EventKey><Ticket><![CDATA[gQH47joAAAAA+/==]]></Ticket>`),
			want:      withTicket(event("SCAN", "poster-42")),
			wantScene: "poster-42",
		},
		{
			name: "subscribe without a scene, empty EventKey",
			body: wrap(`<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey>`),
			want: event("subscribe", ""),
		},
		{
			name: "subscribe with an empty qrscene_",
			body: wrap(`<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_]]></EventKey>`),
			want: event("subscribe", "qrscene_"),
		},
		{
			name: "unsubscribe",
			body: wrap(`<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event>`),
			want: event("unsubscribe", ""),
		},
		{
			name: "menu click",
			body: wrap(`<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[qrscene_not_a_scan]]></EventKey>`),
			want: event("CLICK", "qrscene_not_a_scan"),
		},
		{
			name: "menu link, in plain text rather than CDATA",
			body: wrap(`<MsgType>event</MsgType><Event>VIEW</Event><EventKey>https://example.com/a?b=1&amp;c=2</EventKey>`),
			want: event("VIEW", "https://example.com/a?b=1&c=2"),
		},
		{
			name: "location",
			body: wrap(`<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>`),
			want: func() Message {
				m := event("LOCATION", "")
				m.Latitude, m.Longitude, m.Precision = 23.137466, 113.352425, 119.38504
				return m
			}(),
		},
		{
			name: "text, with an XML declaration and a comment",
			body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + wrap(`<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好 <b>]]]]><![CDATA[>]]></Content><MsgId>24000000000000001</MsgId>`) + "\n<!-- end -->\n",
			want: Message{ToUserName: "gh_0123456789ab", FromUserName: openID, CreateTime: 1780000000, MsgType: "text", Content: "你好 <b>]]>", MsgID: 24000000000000001},
		},
		{
			name: "image",
			body: wrap(`<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId><MsgId>1234567890123456</MsgId>`),
			want: Message{ToUserName: "gh_0123456789ab", FromUserName: openID, CreateTime: 1780000000, MsgType: "image", PicURL: "http://mmbiz.qpic.cn/x", MediaID: "media_id", MsgID: 1234567890123456},
		},
		{
			name: "the independent vector",
			body: vectorMessage,
			want: func() Message {
				m := event("subscribe", "qrscene_poster-42")
				m.CreateTime = 1409304348
				m.Ticket = "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw=="
				return m
			}(),
			wantScene: "poster-42",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseMessage (-want +got):\n%s", diff)
			}
			scene, ok := got.Scene()
			if scene != tt.wantScene || ok != (tt.wantScene != "") {
				t.Errorf("Scene = %q, %v; want %q", scene, ok, tt.wantScene)
			}
			again, err := ParseMessage(got.XML())
			if err != nil {
				t.Fatalf("ParseMessage(XML()): %v\n%s", err, got.XML())
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("XML does not round-trip (-first +again):\n%s", diff)
			}
		})
	}
}

func TestParseMessageRefuses(t *testing.T) {
	tests := []struct {
		name string
		body string
		kind hearth.Kind
	}{
		{"too large", wrap(`<MsgType>text</MsgType><Content>` + strings.Repeat("x", MaxMessageSize) + `</Content>`), hearth.TooLarge},
		{"empty", ``, hearth.Invalid},
		{"not XML", `{"MsgType":"text"}`, hearth.Invalid},
		{"another root", strings.ReplaceAll(wrap(`<MsgType>text</MsgType>`), "xml>", "doc>"), hearth.Invalid},
		{"unclosed", strings.TrimSuffix(wrap(`<MsgType>text</MsgType>`), "</xml>"), hearth.Invalid},
		{"no FromUserName", strings.Replace(wrap(`<MsgType>text</MsgType>`), openID, "", 1), hearth.Invalid},
		{"no ToUserName", strings.Replace(wrap(`<MsgType>text</MsgType>`), "gh_0123456789ab", "", 1), hearth.Invalid},
		{"no MsgType", wrap(``), hearth.Invalid},
		{"event without Event", wrap(`<MsgType>event</MsgType>`), hearth.Invalid},
		{"CreateTime not a number", strings.Replace(wrap(`<MsgType>text</MsgType>`), "1780000000", openID, 1), hearth.Invalid},
		{"CreateTime negative", strings.Replace(wrap(`<MsgType>text</MsgType>`), "1780000000", "-1", 1), hearth.Invalid},
		{"MsgId not a number", wrap(`<MsgType>text</MsgType><MsgId>` + openID + `</MsgId>`), hearth.Invalid},
		{"latitude NaN", wrap(`<MsgType>event</MsgType><Event>LOCATION</Event><Latitude>NaN</Latitude>`), hearth.Invalid},
		{"a second element", wrap(`<MsgType>text</MsgType>`) + `<xml/>`, hearth.Invalid},
		{"text after", wrap(`<MsgType>text</MsgType>`) + ` ` + openID, hearth.Invalid},
		{"unknown entity", wrap(`<MsgType>text</MsgType><Content>&xxe;</Content>`), hearth.Invalid},
		{"control character", wrap("<MsgType>text</MsgType><Content>\x01</Content>"), hearth.Invalid},
		{"invalid UTF-8", wrap("<MsgType>text</MsgType><Content>\xff</Content>"), hearth.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseMessage = %+v, want an error", m)
			}
			if k := hearth.KindOf(err); k != tt.kind {
				t.Errorf("kind = %v, want %v: %v", k, tt.kind, err)
			}
			if strings.Contains(err.Error(), openID) {
				t.Errorf("the error quotes the openid: %v", err)
			}
		})
	}
}

func TestDedupeKey(t *testing.T) {
	subscribe := event("subscribe", "qrscene_a")
	retry := subscribe
	scan := event("SCAN", "a")
	later := subscribe
	later.CreateTime++
	other := subscribe
	other.FromUserName = "oTEST0000000000000000000000B"
	click1, click2 := event("CLICK", "menu_1"), event("CLICK", "menu_2")
	text := Message{ToUserName: "gh_0123456789ab", FromUserName: openID, CreateTime: 1780000000, MsgType: "text", Content: "hi", MsgID: 42}
	textRetry := text

	if subscribe.DedupeKey() != retry.DedupeKey() || text.DedupeKey() != textRetry.DedupeKey() {
		t.Error("a retry has another key")
	}
	keys := map[string]string{}
	for name, m := range map[string]Message{
		"subscribe": subscribe, "scan in the same second": scan, "a second later": later, "another user": other,
		"click": click1, "another click": click2, "text": text,
	} {
		k := m.DedupeKey()
		if prev, ok := keys[k]; ok {
			t.Errorf("%s and %s share the key %s", name, prev, k)
		}
		keys[k] = name
		if strings.Contains(k, openID) {
			t.Errorf("%s's key %s carries the openid", name, k)
		}
	}
	if text.DedupeKey() != "msg:gh_0123456789ab:42" {
		t.Errorf("text key = %s, want it made of the MsgId", text.DedupeKey())
	}
}

func TestEnvelope(t *testing.T) {
	env := Envelope{ToUserName: "gh_0123456789ab", Encrypt: vectorEncrypted}
	got, err := ParseEnvelope(env.XML())
	if err != nil {
		t.Fatal(err)
	}
	if got != env {
		t.Errorf("ParseEnvelope(XML()) = %+v", got)
	}
	// Compatible mode sends the plain fields beside Encrypt; only Encrypt is read.
	compat := wrap(`<MsgType>text</MsgType><Content>forged</Content><Encrypt><![CDATA[` + vectorEncrypted + `]]></Encrypt>`)
	if got, err := ParseEnvelope([]byte(compat)); err != nil || got.Encrypt != vectorEncrypted {
		t.Errorf("compatible mode: %+v, %v", got, err)
	}
	if _, err := ParseEnvelope([]byte(wrap(`<MsgType>text</MsgType>`))); hearth.KindOf(err) != hearth.Invalid {
		t.Errorf("no Encrypt: %v, want invalid", err)
	}
}

// Whatever arrives, ParseMessage answers a message that XML renders back to itself, or an Invalid or
// TooLarge error; it never panics.
func FuzzParseMessage(f *testing.F) {
	for _, seed := range []string{
		vectorMessage,
		wrap(`<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[a]]]]><![CDATA[>b]]></EventKey>`),
		wrap(`<MsgType>event</MsgType><Event>LOCATION</Event><Latitude>1e3</Latitude><Longitude>-0</Longitude><Precision>0x1p-2</Precision>`),
		wrap(`<MsgType>text</MsgType><Content>a&#13;&#x0A;b&lt;</Content><MsgId>-5</MsgId>`),
		"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime> 1 </CreateTime><MsgType>x</MsgType><Content>\r\n</Content></xml>",
		"<xml><ToUserName><a>x</a></ToUserName></xml>", "<!DOCTYPE xml [<!ENTITY e \"x\">]><xml/>", "<xml", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMessage(body)
		if err != nil {
			if k := hearth.KindOf(err); k != hearth.Invalid && k != hearth.TooLarge {
				t.Fatalf("error of kind %v: %v", k, err)
			}
			return
		}
		again, err := ParseMessage(m.XML())
		if err != nil {
			t.Fatalf("ParseMessage(XML()) of %+v: %v\n%s", m, err, m.XML())
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("XML does not round-trip (-first +again):\n%s", diff)
		}
		m.Scene()
		m.DedupeKey()
	})
}
