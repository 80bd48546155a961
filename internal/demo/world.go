package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// The brand: an outdoor clothing retailer with stores in six cities, a website, an app, a WeChat account
// and a CRM fed by its stores' tills.
const site = "https://www.hearth-outdoor.example"

// The sources, by kind, with their names.
var sourceNames = []struct {
	kind collect.SourceKind
	name string
}{
	{collect.KindWebsite, "官网 Website"},
	{collect.KindApp, "会员 App"},
	{collect.KindWeChat, "微信服务号 WeChat account"},
	{collect.KindOffline, "门店与 CRM Stores and CRM"},
}

type campaignSpec struct{ name, goal, utmSource, utmMedium, utmCampaign string }

var campaignSpecs = []campaignSpec{
	{"门店会员招募 Store membership drive", "Sign up store visitors as members", "store", "offline", "membership-2026"},
	{"销售名片 Sales reps' cards", "Follow up people the reps meet", "card", "offline", "rep-cards"},
	{"双十一 Singles' Day 2026", "Sell the autumn range", "ads", "cpc", "singles-day-2026"},
	{"微信关注有礼 WeChat follow gift", "Grow the WeChat audience", "wechat", "social", "follow-gift"},
}

// tpSpec is one touchpoint of the catalogue.
type tpSpec struct {
	campaign int
	name     string
	channel  touchpoint.Channel
	path     string
	location string
	owner    string
}

var stores = []struct{ name, slug string }{
	{"上海静安嘉里中心店", "shanghai-jingan"}, {"上海徐汇港汇店", "shanghai-xuhui"}, {"北京三里屯店", "beijing-sanlitun"},
	{"北京国贸店", "beijing-guomao"}, {"广州天河城店", "guangzhou-tianhe"}, {"深圳万象城店", "shenzhen-mixc"},
	{"杭州湖滨银泰店", "hangzhou-hubin"}, {"成都太古里店", "chengdu-taikoo"},
}

var reps = []string{"张敏", "李强", "王芳", "陈杰", "刘洋", "赵磊"}

var products = []struct {
	sku, name string
	price     int
}{
	{"SKU-1001", "轻量徒步鞋 Trail runner", 899}, {"SKU-1002", "防水冲锋衣 Rain shell", 1299}, {"SKU-2040", "抓绒外套 Fleece", 499},
	{"SKU-3300", "登山背包 30L Daypack", 699}, {"SKU-4711", "速干T恤 Tee", 199}, {"SKU-5120", "羽绒服 Down jacket", 1599},
}

// Kinds of touchpoint a story starts from.
const (
	touchPoster = iota
	touchCard
	touchPack
	touchAd
	touchWeChat
)

func catalogue() []tpSpec {
	var tps []tpSpec
	for _, s := range stores {
		tps = append(tps, tpSpec{0, "海报 Poster " + s.name, touchpoint.ChannelPoster, "/stores/" + s.slug, s.name, ""})
	}
	for _, r := range reps {
		tps = append(tps, tpSpec{1, "名片 Card " + r, touchpoint.ChannelCard, "/members/join", "", r})
	}
	for _, p := range products[:3] {
		tps = append(tps, tpSpec{0, "包装 Pack " + p.sku, touchpoint.ChannelPack, "/products/" + p.sku, "", ""})
	}
	for _, a := range []string{"百度搜索 Baidu search", "朋友圈 WeChat Moments", "抖音 Douyin feed"} {
		tps = append(tps, tpSpec{2, "广告 Ad " + a, touchpoint.ChannelAd, "/campaigns/singles-day", "", ""})
	}
	tps = append(tps, tpSpec{3, "微信关注二维码 WeChat follow QR", touchpoint.ChannelWeChatQR, "/wechat/welcome", "", ""})
	return tps
}

// kindOf says which kind of first touch a touchpoint gives.
func (t tpSpec) kind() int {
	switch t.channel {
	case touchpoint.ChannelPoster:
		return touchPoster
	case touchpoint.ChannelCard:
		return touchCard
	case touchpoint.ChannelPack:
		return touchPack
	case touchpoint.ChannelAd:
		return touchAd
	}
	return touchWeChat
}

// Placed is a catalogue touchpoint as made: its token, and what the token resolves to.
type Placed struct {
	spec     tpSpec
	Token    string
	Resolved collect.ResolvedTouch
}

// Env is what the world was made with: source ids by kind and the touchpoints in catalogue order.
type Env struct {
	Sources     map[collect.SourceKind]string
	Touchpoints []Placed
}

// Setup makes the brand's sources, campaigns and touchpoints (reusing sources of the same name) and
// resolves each touchpoint's token as the touch link would.
func Setup(ctx context.Context, svc Services, now time.Time) (*Env, Summary, error) {
	var sum Summary
	env := &Env{Sources: map[collect.SourceKind]string{}}
	if _, err := svc.Sources.EnsureTouchSource(ctx); err != nil {
		return nil, sum, fmt.Errorf("demo: touch source: %w", err)
	}
	existing, err := svc.Sources.List(ctx)
	if err != nil {
		return nil, sum, fmt.Errorf("demo: sources: %w", err)
	}
	for _, s := range sourceNames {
		for _, e := range existing {
			if e.Name == s.name && e.Kind == s.kind {
				env.Sources[s.kind] = e.ID
			}
		}
		if env.Sources[s.kind] == "" {
			src, err := svc.Sources.Create(ctx, s.name, s.kind)
			if err != nil {
				return nil, sum, fmt.Errorf("demo: source %s: %w", s.kind, err)
			}
			env.Sources[s.kind] = src.ID
		}
		sum.Sources++
	}
	start := now.AddDate(0, -6, 0)
	campaigns := make([]touchpoint.Campaign, len(campaignSpecs))
	for i, c := range campaignSpecs {
		campaigns[i], err = svc.Touchpoints.CreateCampaign(ctx, touchpoint.Campaign{Name: c.name, Goal: c.goal, StartsAt: &start,
			UTMSource: c.utmSource, UTMMedium: c.utmMedium, UTMCampaign: c.utmCampaign})
		if err != nil {
			return nil, sum, fmt.Errorf("demo: campaign: %w", err)
		}
		sum.Campaigns++
	}
	for _, spec := range catalogue() {
		tp, err := svc.Touchpoints.CreateTouchpoint(ctx, touchpoint.Touchpoint{Name: spec.name, Channel: spec.channel, DestinationURL: site + spec.path,
			CampaignID: campaigns[spec.campaign].ID, Location: spec.location, Owner: spec.owner})
		if err != nil {
			return nil, sum, fmt.Errorf("demo: touchpoint: %w", err)
		}
		token, err := svc.Touchpoints.Token(tp, 0, time.Time{})
		if err != nil {
			return nil, sum, fmt.Errorf("demo: token: %w", err)
		}
		res, err := svc.Resolver.ResolveTouch(ctx, token, now)
		if err != nil {
			return nil, sum, fmt.Errorf("demo: resolve token: %w", err)
		}
		if res.Refused != "" {
			return nil, sum, fmt.Errorf("demo: the token of touchpoint %s is refused: %s", tp.ID, res.Refused)
		}
		env.Touchpoints = append(env.Touchpoints, Placed{spec: spec, Token: token, Resolved: res})
		sum.Touchpoints++
	}
	if svc.ProfileSettings != nil {
		if err := svc.ProfileSettings(ctx, profileSettings(env)); err != nil {
			return nil, sum, fmt.Errorf("demo: profile settings: %w", err)
		}
	}
	return env, sum, nil
}

// profileSettings map the WeChat account's user info onto the profile as the console's WeChat mapping does
// (its nickname is a name, its sex 1, 2 or 0 a gender, its head image an avatar) and let a name given on the
// website, in the app or at a till win over a WeChat nickname. As the admin API takes them: the demo cannot
// use profile's types, whose tests fill stores with the demo.
func profileSettings(env *Env) []byte {
	wechat := env.Sources[collect.KindWeChat]
	type field struct {
		From   string            `json:"from"`
		To     string            `json:"to"`
		Type   string            `json:"type"`
		Values map[string]string `json:"values,omitempty"`
	}
	type mapping struct {
		SourceID string  `json:"source_id"`
		Fields   []field `json:"fields"`
	}
	type rule struct {
		Name       string   `json:"name"`
		Precedence string   `json:"precedence"`
		Sources    []string `json:"sources"`
	}
	out, _ := json.Marshal(struct {
		Mappings []mapping `json:"mappings"`
		Traits   []rule    `json:"traits"`
	}{
		Mappings: []mapping{{SourceID: wechat, Fields: []field{{From: "nickname", To: "name", Type: "string"},
			{From: "sex", To: "gender", Type: "string", Values: map[string]string{"1": "male", "2": "female", "0": "unknown"}},
			{From: "headimgurl", To: "avatar", Type: "string"}}}},
		Traits: []rule{{Name: "name", Precedence: "source_priority",
			Sources: []string{env.Sources[collect.KindWebsite], env.Sources[collect.KindApp], env.Sources[collect.KindOffline], wechat}}},
	})
	return out
}

// FakeEnv is an environment with made-up ids and tokens, for generating without a store.
func FakeEnv() *Env {
	env := &Env{Sources: map[collect.SourceKind]string{}}
	for _, s := range sourceNames {
		env.Sources[s.kind] = "src-" + string(s.kind)
	}
	for i, spec := range catalogue() {
		id := fmt.Sprintf("tp-%02d", i)
		env.Touchpoints = append(env.Touchpoints, Placed{spec: spec, Token: fmt.Sprintf("tok%02d", i),
			Resolved: collect.ResolvedTouch{TouchpointID: id, TouchpointName: spec.name, Channel: string(spec.channel), CampaignID: fmt.Sprintf("cmp-%d", spec.campaign), Known: true}})
	}
	return env
}
