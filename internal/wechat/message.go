package wechat

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
)

// MaxMessageSize bounds a callback body. WeChat's messages are well under 4 KiB; a text message holds at
// most 2,048 bytes of content.
const MaxMessageSize = 64 << 10

// Message types and events that Hearth reads. WeChat sends others too; they parse all the same.
const (
	MsgTypeEvent = "event"
	MsgTypeText  = "text"
	MsgTypeImage = "image"

	EventSubscribe   = "subscribe"
	EventUnsubscribe = "unsubscribe"
	EventScan        = "SCAN" // a follower scanned a parametric QR code
	EventClick       = "CLICK"
	EventView        = "VIEW"
	EventLocation    = "LOCATION"

	// QRScenePrefix starts the EventKey of a subscribe that came from scanning a parametric QR code.
	QRScenePrefix = "qrscene_"
)

// Message is one message or event WeChat POSTs to an account's callback. FromUserName is the user's openid:
// personal data, which never goes into logs or error messages.
type Message struct {
	ToUserName   string // the account's original id, gh_…
	FromUserName string // the user's openid for this account
	CreateTime   int64  // Unix seconds
	MsgType      string // event, text, image, voice, video, location, link, …
	Event        string // for MsgType event: subscribe, unsubscribe, SCAN, CLICK, VIEW, LOCATION, …
	EventKey     string // qrscene_<scene> (subscribe by QR), <scene> (SCAN), the menu key (CLICK), the URL (VIEW)
	Ticket       string // the scanned QR code's ticket
	MsgID        int64  // ordinary messages only
	Content      string // text
	PicURL       string // image
	MediaID      string // image, voice, video

	// LOCATION events, when the user lets the account see where they are.
	Latitude, Longitude, Precision float64
}

// Time is when WeChat received the message.
func (m Message) Time() time.Time { return time.Unix(m.CreateTime, 0).UTC() }

// Scene returns the scene of the parametric QR code a subscribe or SCAN event came from.
func (m Message) Scene() (string, bool) {
	if m.MsgType != MsgTypeEvent {
		return "", false
	}
	switch m.Event {
	case EventSubscribe:
		scene, ok := strings.CutPrefix(m.EventKey, QRScenePrefix)
		return scene, ok && scene != ""
	case EventScan:
		return m.EventKey, m.EventKey != ""
	}
	return "", false
}

// DedupeKey identifies a message across WeChat's retries: WeChat posts a callback again, up to three times,
// when it has no answer within 5 s, and the retries are the same message. Ordinary messages are keyed by
// MsgId; events have none, so they are keyed by user, time, event and key, which tells a subscribe from a
// SCAN in the same second. Event keys are hashed, so that the key carries no openid.
func (m Message) DedupeKey() string {
	if m.MsgID != 0 {
		return "msg:" + m.ToUserName + ":" + strconv.FormatInt(m.MsgID, 10)
	}
	h := sha256.New()
	for _, part := range []string{m.ToUserName, m.FromUserName, strconv.FormatInt(m.CreateTime, 10), m.Event, m.EventKey} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "evt:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// The callback XML, read field by field into strings so that errors never quote what was sent.
type xmlMessage struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string
	FromUserName string
	CreateTime   string
	MsgType      string
	Event        string
	EventKey     string
	Ticket       string
	MsgID        string `xml:"MsgId"`
	Content      string
	PicURL       string `xml:"PicUrl"`
	MediaID      string `xml:"MediaId"`
	Latitude     string
	Longitude    string
	Precision    string
}

// ParseMessage reads the XML of a plain-text callback, or a decrypted safe-mode one. An error is Invalid
// (TooLarge for a body over MaxMessageSize) and its message says what is wrong without quoting the body.
func ParseMessage(body []byte) (Message, error) {
	const op = "wechat.parse_message"
	var x xmlMessage
	if err := decodeXML(op, body, &x); err != nil {
		return Message{}, err
	}
	refuse := func(msg string) (Message, error) { return Message{}, hearth.Errorf(hearth.Invalid, op, "%s", msg) }
	m := Message{
		ToUserName: x.ToUserName, FromUserName: x.FromUserName, MsgType: x.MsgType, Event: x.Event,
		EventKey: x.EventKey, Ticket: x.Ticket, Content: x.Content, PicURL: x.PicURL, MediaID: x.MediaID,
	}
	switch {
	case m.ToUserName == "":
		return refuse("The message has no ToUserName.")
	case m.FromUserName == "":
		return refuse("The message has no FromUserName.")
	case m.MsgType == "":
		return refuse("The message has no MsgType.")
	case m.MsgType == MsgTypeEvent && m.Event == "":
		return refuse("The event message has no Event.")
	}
	var ok bool
	if m.CreateTime, ok = parseInt(x.CreateTime); !ok || m.CreateTime <= 0 {
		return refuse("The message's CreateTime is not a positive number of seconds.")
	}
	if x.MsgID != "" {
		if m.MsgID, ok = parseInt(x.MsgID); !ok {
			return refuse("The message's MsgId is not a number.")
		}
	}
	for _, f := range []struct {
		text string
		dst  *float64
	}{{x.Latitude, &m.Latitude}, {x.Longitude, &m.Longitude}, {x.Precision, &m.Precision}} {
		if f.text == "" {
			continue
		}
		if *f.dst, ok = parseFloat(f.text); !ok {
			return refuse("The message's location is not a number.")
		}
	}
	return m, nil
}

func parseInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

func parseFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// decodeXML reads exactly one <xml> element from body, with nothing but white space, comments or
// processing instructions around it.
func decodeXML(op string, body []byte, v any) error {
	if len(body) > MaxMessageSize {
		return hearth.Errorf(hearth.TooLarge, op, "The message is larger than %d bytes.", MaxMessageSize)
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return invalid(op, "The message is not WeChat's XML.", fmt.Errorf("wechat: %w", xmlError(err)))
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalid(op, "The message is not WeChat's XML.", fmt.Errorf("wechat: after the message: %w", xmlError(err)))
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return hearth.Errorf(hearth.Invalid, op, "The message has text after its XML.")
			}
		default:
			return hearth.Errorf(hearth.Invalid, op, "The message has more than one XML element.")
		}
	}
}

// xmlError keeps the line of a syntax error and drops anything that might quote the body.
func xmlError(err error) error {
	var syntax *xml.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Errorf("XML syntax error on line %d", syntax.Line)
	}
	var unmarshal xml.UnmarshalError
	if errors.As(err, &unmarshal) {
		return errors.New("unexpected XML structure")
	}
	return errors.New("unreadable XML")
}

// XML renders the message as WeChat sends it: text fields in CDATA, numbers bare, in WeChat's order,
// empty fields left out.
func (m Message) XML() []byte {
	var b xmlBuilder
	b.open()
	b.text("ToUserName", m.ToUserName)
	b.text("FromUserName", m.FromUserName)
	b.number("CreateTime", strconv.FormatInt(m.CreateTime, 10))
	b.text("MsgType", m.MsgType)
	b.text("Content", m.Content)
	b.text("PicUrl", m.PicURL)
	b.text("MediaId", m.MediaID)
	b.text("Event", m.Event)
	b.text("EventKey", m.EventKey)
	b.text("Ticket", m.Ticket)
	if m.Event == EventLocation || m.Latitude != 0 || m.Longitude != 0 || m.Precision != 0 {
		b.number("Latitude", formatFloat(m.Latitude))
		b.number("Longitude", formatFloat(m.Longitude))
		b.number("Precision", formatFloat(m.Precision))
	}
	if m.MsgID != 0 {
		b.number("MsgId", strconv.FormatInt(m.MsgID, 10))
	}
	return b.close()
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// TextReply is a passive reply to m: a text message from the account back to the user, which WeChat shows
// in the chat. Encrypt it with Callback.Reply for a safe-mode account.
func (m Message) TextReply(content string, now time.Time) []byte {
	var b xmlBuilder
	b.open()
	b.text("ToUserName", m.FromUserName)
	b.text("FromUserName", m.ToUserName)
	b.number("CreateTime", strconv.FormatInt(now.Unix(), 10))
	b.text("MsgType", MsgTypeText)
	b.text("Content", content)
	return b.close()
}

// Envelope is the body of a safe-mode callback: the account and the encrypted message.
type Envelope struct {
	ToUserName string
	Encrypt    string
}

// ParseEnvelope reads the body of a safe-mode callback. In compatible mode the body also carries the
// message in plain text; that copy is ignored, since only the encrypted one is signed.
func ParseEnvelope(body []byte) (Envelope, error) {
	const op = "wechat.parse_envelope"
	var x struct {
		XMLName    xml.Name `xml:"xml"`
		ToUserName string
		Encrypt    string
	}
	if err := decodeXML(op, body, &x); err != nil {
		return Envelope{}, err
	}
	if x.Encrypt == "" {
		return Envelope{}, hearth.Errorf(hearth.Invalid, op, "The safe-mode message has no Encrypt field.")
	}
	return Envelope{ToUserName: x.ToUserName, Encrypt: x.Encrypt}, nil
}

// XML renders the envelope as WeChat sends it.
func (e Envelope) XML() []byte {
	var b xmlBuilder
	b.open()
	b.text("ToUserName", e.ToUserName)
	b.text("Encrypt", e.Encrypt)
	return b.close()
}

// xmlBuilder writes WeChat's flat <xml> documents.
type xmlBuilder struct{ buf bytes.Buffer }

func (b *xmlBuilder) open() { b.buf.WriteString("<xml>") }

func (b *xmlBuilder) close() []byte {
	b.buf.WriteString("</xml>")
	return b.buf.Bytes()
}

// cdataEscaper splits a "]]>" across two CDATA sections, and writes carriage returns as references between
// sections, since a parser turns a literal one into a line feed.
var cdataEscaper = strings.NewReplacer("]]>", "]]]]><![CDATA[>", "\r", "]]>&#13;<![CDATA[")

// text writes a CDATA field; empty fields are left out.
func (b *xmlBuilder) text(name, s string) {
	if s == "" {
		return
	}
	b.buf.WriteString("<" + name + "><![CDATA[")
	cdataEscaper.WriteString(&b.buf, s)
	b.buf.WriteString("]]></" + name + ">")
}

func (b *xmlBuilder) number(name, n string) {
	b.buf.WriteString("<" + name + ">" + n + "</" + name + ">")
}
