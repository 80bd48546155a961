package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
)

var surnames = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗", "高"}
var givenNames = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平", "刚", "桂英", "晨", "雪", "思远", "子涵", "浩然", "欣怡"}
var pinyin = []string{"wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu", "hu", "guo", "he", "lin", "luo", "gao"}
var mailDomains = []string{"qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com"}
var mobilePrefixes = []string{"138", "139", "150", "151", "158", "186", "187", "135", "136", "188"}
var cities = []string{"上海", "北京", "广州", "深圳", "杭州", "成都"}

// junk values people type into forms, and SDKs send when a variable was empty.
var junkEmails = []string{"test@test.com", "null", "undefined", "none"}
var junkPhones = []string{"null", "undefined", "13800138000", "0"}

type deviceKind int

const (
	phoneBrowser deviceKind = iota
	desktopBrowser
	appDevice
	tablet
)

var userAgents = map[deviceKind][]string{
	phoneBrowser:   {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49", "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36"},
	desktopBrowser: {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"},
	appDevice:      {"HearthOutdoor/3.2.1 (iPhone; iOS 17.5)", "HearthOutdoor/3.2.1 (Android 14; HUAWEI)"},
	tablet:         {"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"},
}

type device struct {
	kind deviceKind
	anon string
	ua   string
	ip   string
}

// Generator makes people one at a time, each with their truth and their events in time order.
type Generator struct {
	opts     Options
	env      *Env
	rng      *rand.Rand
	i        int
	pending  []personOut // the second person of a family, made with the first
	lastName string
}

type personOut struct {
	truth Truth
	evs   []collect.Event
	err   error
}

// NewGenerator returns a generator of opts.People people (opts as Run defaults them).
func NewGenerator(opts Options, env *Env) *Generator {
	opts.defaults()
	return &Generator{opts: opts, env: env, rng: rand.New(rand.NewPCG(opts.Seed, 0x6865617274680001))}
}

// Next reports whether there is another person.
func (g *Generator) Next() bool { return g.i < g.opts.People }

// Person makes the next person: their truth and their events, normalised, in time order.
func (g *Generator) Person() (Truth, []collect.Event, error) {
	if len(g.pending) > 0 {
		p := g.pending[0]
		g.pending = g.pending[1:]
		g.i++
		return p.truth, p.evs, p.err
	}
	// One household in 40 shares a tablet between two registered people.
	if g.opts.People-g.i >= 2 && g.rng.IntN(40) == 0 {
		tab := g.newDevice(tablet, g.opts.Now.Add(-time.Duration(g.opts.Days)*24*time.Hour)) // the household's, from the start
		a := g.story(g.i, &tab)
		b := g.story(g.i+1, &tab)
		g.pending = append(g.pending, b)
		g.i++
		return a.truth, a.evs, a.err
	}
	p := g.story(g.i, nil)
	g.i++
	return p.truth, p.evs, p.err
}

func (g *Generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *Generator) uuid() string {
	h := g.hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// deviceID is a device's anonymous id, made as Hearth's snippet and touch links make them: a version 7 UUID,
// the time it was first seen and random bits, so that new visitors' ids follow one another in the identity
// index. It draws as many random digits as uuid does, so that the rest of the world stays as it was.
func (g *Generator) deviceID(at time.Time) string {
	h := []byte(g.hex(32))
	copy(h, fmt.Sprintf("%012x", at.UnixMilli()))
	return string(h[:8]) + "-" + string(h[8:12]) + "-7" + string(h[13:16]) + "-a" + string(h[17:20]) + "-" + string(h[20:])
}

func (g *Generator) newDevice(k deviceKind, at time.Time) device {
	uas := userAgents[k]
	return device{kind: k, anon: g.deviceID(at), ua: uas[g.rng.IntN(len(uas))],
		ip: fmt.Sprintf("%d.%d.%d.%d", []int{101, 112, 116, 183, 223}[g.rng.IntN(5)], g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))}
}

// mobile is person i's mobile number, written as people write it, and in E.164. The last eight digits are a
// bijection of i, so that no two people share a number.
func (g *Generator) mobile(i int) (written, e164 string) {
	{
		p := mobilePrefixes[g.rng.IntN(len(mobilePrefixes))]
		n := fmt.Sprintf("%s%08d", p, (int64(i)*48271+12345679)%100000000)
		if n == "13800138000" { // the number forms give as an example: junk
			n = "139" + n[3:]
		}
		switch g.rng.IntN(4) {
		case 0:
			written = "+86 " + n[:3] + " " + n[3:7] + " " + n[7:]
		case 1:
			written = n[:3] + "-" + n[3:7] + "-" + n[7:]
		default:
			written = n
		}
		return written, "+86" + n
	}
}

// story is one person's months: their identity and what they did.
func (g *Generator) story(i int, shared *device) personOut {
	s := &storyState{g: g, truth: Truth{ID: fmt.Sprintf("p%07d", i+1)}}
	si := g.rng.IntN(len(surnames))
	name := surnames[si] + givenNames[g.rng.IntN(len(givenNames))]
	if i%50 == 1 && g.lastName != "" { // namesakes: two different people of one name
		name = g.lastName
	}
	g.lastName = name
	s.truth.Name = name
	now := g.opts.Now
	span := time.Duration(g.opts.Days) * 24 * time.Hour
	// People arrive all through the span, the last of them within the hour; a story that reaches today goes on
	// after it, unwritten, so the world is as busy in its last days as in the weeks before them.
	s.t = now.Add(-span + time.Duration(g.rng.Int64N(int64(span-time.Hour))))
	s.end = now.Add(-time.Minute)

	// Devices: a phone, often a desktop, sometimes the app; a family member's tablet.
	s.devices = []device{g.newDevice(phoneBrowser, s.t)}
	if g.rng.IntN(2) == 0 {
		s.devices = append(s.devices, g.newDevice(desktopBrowser, s.t))
	}
	if g.rng.IntN(4) == 0 {
		s.devices = append(s.devices, g.newDevice(appDevice, s.t))
	}
	if shared != nil {
		s.devices = append(s.devices, *shared)
		s.truth.Shared = []string{shared.anon}
		s.shared = shared.anon
	}

	registers := shared != nil || g.rng.IntN(100) < 55
	if registers {
		s.truth.UserID = fmt.Sprintf("M%08d", 10000000+i*7+g.rng.IntN(7))
		if g.rng.IntN(100) < 75 {
			s.truth.Emails = []string{fmt.Sprintf("%s.%s%d@%s", pinyin[si], g.hex(2), i, mailDomains[g.rng.IntN(len(mailDomains))])}
		}
		if len(s.truth.Emails) == 0 || g.rng.IntN(100) < 70 {
			written, e164 := g.mobile(i)
			s.phoneWritten = written
			s.truth.Phones = []string{e164}
		}
	}

	// First touch.
	tp := g.rng.IntN(len(g.env.Touchpoints))
	first := g.env.Touchpoints[tp]
	if first.spec.kind() == touchWeChat {
		s.truth.WeChatOpenID = "o" + g.hex(27)
		if g.rng.IntN(2) == 0 {
			s.truth.WeChatUnionID = "u" + g.hex(27)
		}
	}
	s.arrive(first, &s.devices[0])

	// Sessions over the following weeks.
	sessions := 1 + g.rng.IntN(6)
	registerAt := -1
	if registers {
		registerAt = g.rng.IntN(sessions)
	}
	signedIn := map[int]bool{}
	for k := 0; k < sessions; k++ {
		s.advance(time.Duration(1+g.rng.IntN(14*24)) * time.Hour)
		di := g.rng.IntN(len(s.devices))
		if k == registerAt {
			di = 0
			if shared != nil {
				di = len(s.devices) - 1
			}
		}
		d := &s.devices[di]
		// Some visits start from a touchpoint again (an ad, a poster in a store, a pack): touches go on until
		// today, and a person's first and last touch differ. On a browser of their own: a shared tablet's
		// touches would belong to no one person.
		if d.kind != appDevice && d.anon != s.shared && g.rng.IntN(100) < 30 {
			// The account's code is scanned again by its followers only.
			if again := g.env.Touchpoints[g.rng.IntN(len(g.env.Touchpoints))]; again.spec.kind() != touchWeChat || s.truth.WeChatOpenID != "" {
				s.arrive(again, d)
			}
		}
		s.page(d, "/", "")
		for v := g.rng.IntN(4); v > 0; v-- {
			s.productView(d)
		}
		if k == registerAt {
			s.register(d)
			signedIn[di] = true
		} else if registerAt >= 0 && k > registerAt && !signedIn[di] {
			s.signIn(d)
			signedIn[di] = true
		}
		if registerAt >= 0 && k >= registerAt && g.rng.IntN(100) < 35 {
			s.order(d)
		}
	}
	if registerAt >= 0 {
		// The shared tablet: both members of the family sign in on it.
		if shared != nil {
			td := &s.devices[len(s.devices)-1]
			s.advance(time.Duration(1+g.rng.IntN(72)) * time.Hour)
			if !signedIn[len(s.devices)-1] {
				s.signIn(td)
			}
			s.productView(td)
		}
		// A second email (a work address) given later.
		if g.rng.IntN(100) < 6 {
			s.advance(time.Duration(1+g.rng.IntN(72)) * time.Hour)
			email := fmt.Sprintf("%s.%s%d@corp-%s.com.cn", pinyin[si], g.hex(2), i, g.hex(2)) // not .example: junk, as RFC 2606 reserves it
			s.truth.Emails = append(s.truth.Emails, email)
			s.identify(&s.devices[0], map[string]any{"email": email})
		}
		// WeChat followers bind their membership in the account.
		if s.truth.WeChatOpenID != "" && g.rng.IntN(2) == 0 {
			s.advance(time.Duration(1+g.rng.IntN(48)) * time.Hour)
			s.wechatBind()
		}
		// Store purchases come through the tills into the CRM.
		if g.rng.IntN(100) < 20 {
			s.advance(time.Duration(1+g.rng.IntN(14*24)) * time.Hour)
			s.offlineOrder()
		}
	}
	for _, d := range s.devices {
		if s.used[d.anon] {
			s.truth.AnonymousIDs = append(s.truth.AnonymousIDs, d.anon)
			if d.kind == appDevice {
				s.truth.DeviceIDs = append(s.truth.DeviceIDs, d.anon)
			}
		}
	}
	// The identifiers of the story's unwritten future are no one's yet.
	s.truth.UserID = s.sent("user_id", s.truth.UserID)
	s.truth.Emails = slices.DeleteFunc(s.truth.Emails, func(e string) bool { return s.sent("email", e) == "" })
	s.truth.Phones = slices.DeleteFunc(s.truth.Phones, func(p string) bool { return s.sent("phone", p) == "" })
	s.truth.WeChatOpenID = s.sent(collect.WeChatOpenIDType, s.truth.WeChatOpenID)
	s.truth.WeChatUnionID = s.sent("wechat_unionid", s.truth.WeChatUnionID)
	if s.truth.WeChatOpenID != "" {
		s.truth.AnonymousIDs = append(s.truth.AnonymousIDs, s.truth.WeChatOpenID) // WeChat touches carry it as anonymousId
	}
	s.truth.Profiles = s.links.groups()
	if s.truth.Shared != nil && !s.used[s.truth.Shared[0]] {
		s.truth.Shared = nil
	}
	s.truth.Identified = s.truth.UserID != "" && s.identified
	s.truth.Events = len(s.evs)
	return personOut{truth: s.truth, evs: s.evs, err: s.err}
}

type storyState struct {
	g            *Generator
	truth        Truth
	devices      []device
	phoneWritten string
	t, end       time.Time
	evs          []collect.Event
	used         map[string]bool
	identified   bool
	links        linker
	shared       string // the anonymous id of a device another person uses too
	err          error
}

func (s *storyState) advance(d time.Duration) {
	s.t = s.t.Add(d + time.Duration(s.g.rng.IntN(3600))*time.Second)
}

// tick moves the story on to its next event and reports whether that is still before today: what comes
// after is not written.
func (s *storyState) tick() (time.Time, bool) {
	s.t = s.t.Add(time.Duration(5+s.g.rng.IntN(120)) * time.Second)
	return s.t, !s.t.After(s.end) && s.err == nil
}

// sent returns value if an event of the story carried it as an identifier of type typ, or "".
func (s *storyState) sent(typ, value string) string {
	if _, ok := s.links.parent[typ+":"+value]; !ok || value == "" {
		return ""
	}
	return value
}

func (s *storyState) use(d *device) {
	if s.used == nil {
		s.used = map[string]bool{}
	}
	s.used[d.anon] = true
}

func (s *storyState) sourceFor(d *device) string {
	if d.kind == appDevice {
		return s.g.env.Sources[collect.KindApp]
	}
	return s.g.env.Sources[collect.KindWebsite]
}

// segEvent is an event as Segment's SDKs send it.
type segEvent struct {
	Type        string         `json:"type"`
	MessageID   string         `json:"messageId"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	UserID      string         `json:"userId,omitempty"`
	Event       string         `json:"event,omitempty"`
	Name        string         `json:"name,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	Context     segContext     `json:"context"`
	Timestamp   string         `json:"timestamp"`
}

type segContext struct {
	Library     map[string]string    `json:"library"`
	Locale      string               `json:"locale"`
	IP          string               `json:"ip,omitempty"`
	UserAgent   string               `json:"userAgent,omitempty"`
	Page        map[string]string    `json:"page,omitempty"`
	App         map[string]string    `json:"app,omitempty"`
	Device      map[string]string    `json:"device,omitempty"`
	ExternalIDs []collect.ExternalID `json:"externalIds,omitempty"`
	Campaign    map[string]string    `json:"campaign,omitempty"`
	Traits      map[string]any       `json:"traits,omitempty"`
}

var (
	webLibrary     = map[string]string{"name": "analytics.js", "version": "5.2.0"}
	appLibrary     = map[string]string{"name": "analytics-react-native", "version": "2.19.1"}
	serverLibrary  = map[string]string{"name": "analytics-node", "version": "2.1.2"}
	appInfo        = map[string]string{"name": "Hearth Outdoor", "version": "3.2.1", "build": "321"}
	noop           = func(string) bool { return false }
	messageIDFirst = func() string { return "" }
)

// emit normalises a Segment event as the collector does and keeps it, and reports whether it did: not after
// today.
func (s *storyState) emit(sourceID string, d *device, e segEvent) bool {
	at, ok := s.tick()
	if !ok {
		return false
	}
	e.MessageID = s.g.uuid()
	e.Timestamp = at.Format(time.RFC3339Nano)
	if e.Context.Library == nil {
		e.Context.Library = webLibrary
	}
	e.Context.Locale = "zh-CN"
	if d != nil {
		s.use(d)
		e.AnonymousID = d.anon
		e.Context.IP, e.Context.UserAgent = d.ip, d.ua
		if d.kind == appDevice {
			e.Context.Library, e.Context.App = appLibrary, appInfo
			e.Context.Device = map[string]string{"id": d.anon, "type": "ios"}
		}
	}
	raw, err := json.Marshal(e)
	if err != nil {
		s.err = err
		return false
	}
	req := collect.Request{ReceivedAt: at.Add(time.Duration(50+s.g.rng.IntN(900)) * time.Millisecond)}
	ev, err := collect.Normalize(raw, "", req, messageIDFirst, noop)
	if err != nil {
		s.err = fmt.Errorf("demo: %s event refused: %w (%s)", e.Type, err, raw)
		return false
	}
	ev.SourceID = sourceID
	s.evs = append(s.evs, ev)
	keys := []string{"anonymous_id:" + e.AnonymousID, "user_id:" + e.UserID}
	if e.Context.Device != nil {
		keys = append(keys, "device_id:"+e.Context.Device["id"])
	}
	for _, traits := range []map[string]any{e.Traits, e.Context.Traits} {
		if v, ok := traits["email"].(string); ok {
			for _, m := range s.truth.Emails {
				if strings.EqualFold(strings.TrimSpace(v), m) {
					keys = append(keys, "email:"+m)
				}
			}
		}
		if v, ok := traits["phone"].(string); ok && v == s.phoneWritten && len(s.truth.Phones) > 0 {
			keys = append(keys, "phone:"+s.truth.Phones[0])
		}
	}
	for _, x := range e.Context.ExternalIDs {
		keys = append(keys, x.Type+":"+x.ID)
	}
	s.link(keys)
	return true
}

// link records that one event carried these identifiers (empty values and a shared device left out).
func (s *storyState) link(keys []string) {
	kept := keys[:0]
	for _, k := range keys {
		if !strings.HasSuffix(k, ":") && (s.shared == "" || !strings.HasSuffix(k, ":"+s.shared)) {
			kept = append(kept, k)
		}
	}
	s.links.link(kept)
}

// linker groups identifiers that events link (union-find).
type linker struct {
	parent map[string]string
	order  []string
}

func (l *linker) find(k string) string {
	if l.parent == nil {
		l.parent = map[string]string{}
	}
	p, ok := l.parent[k]
	if !ok {
		l.parent[k] = k
		l.order = append(l.order, k)
		return k
	}
	if p == k {
		return k
	}
	r := l.find(p)
	l.parent[k] = r
	return r
}

func (l *linker) link(keys []string) {
	for i, k := range keys {
		r := l.find(k)
		if i > 0 {
			if r0 := l.find(keys[0]); r0 != r {
				l.parent[r] = r0
			}
		}
	}
}

// groups are the linked sets, each in the order its identifiers were first seen.
func (l *linker) groups() [][]string {
	var out [][]string
	index := map[string]int{}
	for _, k := range l.order {
		r := l.find(k)
		i, ok := index[r]
		if !ok {
			i = len(out)
			index[r] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], k)
	}
	return out
}

// arrive is a touch of p: a WeChat scan by the person's openid, or a link followed on d to the page it
// leads to (an ad's landing URL carries its token, as the snippet reports it).
func (s *storyState) arrive(p Placed, d *device) {
	switch p.spec.kind() {
	case touchWeChat:
		s.touch(p, "wechat", s.truth.WeChatOpenID, nil)
	case touchAd:
		s.touch(p, "link", d.anon, d)
		s.page(d, p.spec.path, p.Token)
	default:
		s.touch(p, "link", d.anon, d)
		s.page(d, p.spec.path, "")
	}
}

func (s *storyState) touch(p Placed, via, anon string, d *device) {
	at, ok := s.tick()
	if !ok {
		return
	}
	t := collect.Touch{Resolved: p.Resolved, Token: p.Token, Via: via, AnonymousID: anon, MessageID: s.g.uuid(), At: at,
		ReceivedAt: at.Add(time.Duration(20+s.g.rng.IntN(300)) * time.Millisecond)}
	if d != nil {
		s.use(d)
		t.IP, t.UserAgent, t.Method = d.ip, d.ua, "GET"
	}
	if via == "wechat" {
		t.ExternalIDs = []collect.ExternalID{{Type: collect.WeChatOpenIDType, ID: s.truth.WeChatOpenID}}
		if s.truth.WeChatUnionID != "" {
			t.ExternalIDs = append(t.ExternalIDs, collect.ExternalID{Type: "wechat_unionid", ID: s.truth.WeChatUnionID})
		}
		t.Properties = json.RawMessage(`{"new_follower":true}`) // as the WeChat callback records a subscribe
		if s.truth.touches > 0 {                                // a follower's scan (SCAN)
			t.Properties = json.RawMessage(`{"new_follower":false}`)
		}
	}
	ev, err := t.Event(collect.TouchSourceID, messageIDFirst)
	if err != nil {
		s.err = err
		return
	}
	s.evs = append(s.evs, ev)
	s.truth.touches++
	keys := []string{"anonymous_id:" + anon}
	for _, x := range t.ExternalIDs {
		keys = append(keys, x.Type+":"+x.ID)
	}
	s.link(keys)
}

func (s *storyState) page(d *device, path, token string) {
	props := map[string]any{"path": path, "url": site + path, "title": "Hearth Outdoor 探野户外"}
	var campaign map[string]string
	if token != "" {
		props["url"] = site + path + "?ht=" + token
		props["search"] = "?ht=" + token
		campaign = map[string]string{"source": "ads", "medium": "cpc", "name": "singles-day-2026"}
	}
	if d.kind == appDevice {
		s.emit(s.sourceFor(d), d, segEvent{Type: "screen", Name: path, Properties: map[string]any{"path": path}})
		return
	}
	s.emit(s.sourceFor(d), d, segEvent{Type: "page", Name: path, Properties: props,
		Context: segContext{Page: map[string]string{"path": path, "referrer": "https://www.baidu.com/"}, Campaign: campaign}})
}

func (s *storyState) productView(d *device) {
	p := products[s.g.rng.IntN(len(products))]
	s.emit(s.sourceFor(d), d, segEvent{Type: "track", Event: "Product Viewed", UserID: s.signedInID(d),
		Properties: map[string]any{"product_id": p.sku, "name": p.name, "price": p.price, "currency": "CNY", "category": "outdoor"}})
}

func (s *storyState) signedInID(d *device) string {
	if s.identified && d.kind != tablet {
		return s.truth.UserID
	}
	return ""
}

// register: the first identify, with the person's traits, sometimes with a junk value beside them.
func (s *storyState) register(d *device) {
	traits := map[string]any{"name": s.truth.Name, "city": cities[s.g.rng.IntN(len(cities))]}
	if len(s.truth.Emails) > 0 {
		traits["email"] = s.truth.Emails[0]
		if s.g.rng.IntN(3) == 0 { // people write their address as they like
			traits["email"] = " " + upperFirst(s.truth.Emails[0])
		}
	}
	if len(s.truth.Phones) > 0 {
		traits["phone"] = s.phoneWritten
	}
	junk := ""
	if s.g.rng.IntN(100) < 8 {
		if _, ok := traits["email"]; !ok {
			junk = junkEmails[s.g.rng.IntN(len(junkEmails))]
			traits["email"] = junk
		} else if _, ok := traits["phone"]; !ok {
			junk = junkPhones[s.g.rng.IntN(len(junkPhones))]
			traits["phone"] = junk
		}
	}
	if s.identify(d, traits) {
		s.identified = true
		if junk != "" {
			s.truth.Junk = append(s.truth.Junk, junk)
		}
	}
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-32) + s[1:]
}

func (s *storyState) signIn(d *device) {
	s.identify(d, nil)
}

func (s *storyState) identify(d *device, traits map[string]any) bool {
	return s.emit(s.sourceFor(d), d, segEvent{Type: "identify", UserID: s.truth.UserID, Traits: traits})
}

func (s *storyState) order(d *device) {
	n := 1 + s.g.rng.IntN(3)
	var items []map[string]any
	revenue := 0
	for range n {
		p := products[s.g.rng.IntN(len(products))]
		items = append(items, map[string]any{"product_id": p.sku, "name": p.name, "price": p.price, "quantity": 1})
		revenue += p.price
	}
	if s.emit(s.sourceFor(d), d, segEvent{Type: "track", Event: "Order Completed", UserID: s.truth.UserID,
		Properties: map[string]any{"order_id": "O" + s.g.hex(12), "revenue": revenue, "currency": "CNY", "products": items}}) {
		s.truth.orders++
		s.truth.revenue += int64(revenue)
	}
}

func (s *storyState) wechatBind() {
	ext := []collect.ExternalID{{Type: collect.WeChatOpenIDType, ID: s.truth.WeChatOpenID}}
	if s.truth.WeChatUnionID != "" {
		ext = append(ext, collect.ExternalID{Type: "wechat_unionid", ID: s.truth.WeChatUnionID})
	}
	// The account's user info: a nickname as people choose them on WeChat ("阿" and the last character of
	// their name), and sex as WeChat codes it, 1 or 2.
	name := []rune(s.truth.Name)
	traits := map[string]any{"wechat_member_card": true, "nickname": "阿" + string(name[len(name)-1]), "sex": 1 + s.g.rng.IntN(2)}
	s.emit(s.g.env.Sources[collect.KindWeChat], nil, segEvent{Type: "identify", UserID: s.truth.UserID, AnonymousID: s.truth.WeChatOpenID,
		Traits: traits, Context: segContext{Library: serverLibrary, ExternalIDs: ext}})
}

func (s *storyState) offlineOrder() {
	store := stores[s.g.rng.IntN(len(stores))]
	p := products[s.g.rng.IntN(len(products))]
	var traits map[string]any
	if len(s.truth.Phones) > 0 {
		traits = map[string]any{"phone": s.phoneWritten}
	}
	if s.emit(s.g.env.Sources[collect.KindOffline], nil, segEvent{Type: "track", Event: "Order Completed", UserID: s.truth.UserID,
		Properties: map[string]any{"order_id": "POS-" + s.g.hex(10), "revenue": p.price, "currency": "CNY", "store": store.name,
			"products": []map[string]any{{"product_id": p.sku, "name": p.name, "price": p.price, "quantity": 1}}},
		Context: segContext{Library: serverLibrary, Traits: traits}}) {
		s.truth.orders++
		s.truth.revenue += int64(p.price)
	}
}
