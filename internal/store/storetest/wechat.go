package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

func newWeChatAccount(t *testing.T, db *store.DB, clock *Clock, slug, appID string) touchpoint.StoredWeChatAccount {
	t.Helper()
	now := clock.Now()
	src := collect.Source{ID: hearth.NewID(), Name: "WeChat: " + slug, Kind: collect.KindWeChat, WriteKey: "wk-" + slug, Enabled: true, CreatedAt: now, UpdatedAt: now}
	must(t, db.CreateSource(ctx, src))
	return touchpoint.StoredWeChatAccount{ID: hearth.NewID(), Name: "Brand " + slug, Slug: slug, AppID: appID,
		AppSecret: []byte("sealed secret"), Token: []byte("sealed token"), EncodingAESKey: []byte("sealed key"),
		SourceID: src.ID, CreatedAt: now, UpdatedAt: now}
}

func testWeChatAccounts(t *testing.T, db *store.DB, clock *Clock) {
	a := newWeChatAccount(t, db, clock, "brand-cn", "wx0123456789abcdef")
	must(t, db.CreateWeChatAccount(ctx, a))
	clock.Advance(time.Second)
	plain := newWeChatAccount(t, db, clock, "outlet", "wxfedcba9876543210")
	plain.EncodingAESKey, plain.APIBaseURL = nil, "http://127.0.0.1:9/wechat"
	must(t, db.CreateWeChatAccount(ctx, plain))

	got, err := db.WeChatAccount(ctx, a.ID)
	must(t, err)
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("WeChatAccount (-want +got):\n%s", diff)
	}
	got, err = db.WeChatAccountBySlug(ctx, "outlet")
	must(t, err)
	if diff := cmp.Diff(plain, got); diff != "" {
		t.Errorf("WeChatAccountBySlug, plain-text mode (-want +got):\n%s", diff)
	}
	list, err := db.ListWeChatAccounts(ctx)
	must(t, err)
	if diff := cmp.Diff([]touchpoint.StoredWeChatAccount{plain, a}, list); diff != "" {
		t.Errorf("ListWeChatAccounts, newest first (-want +got):\n%s", diff)
	}

	for name, dup := range map[string]func(d *touchpoint.StoredWeChatAccount){
		"slug":   func(d *touchpoint.StoredWeChatAccount) { d.AppID = "wx1111111111111111" },
		"app id": func(d *touchpoint.StoredWeChatAccount) { d.Slug = "other" },
	} {
		d := newWeChatAccount(t, db, clock, "dup-"+name[:3], a.AppID)
		d.Slug = a.Slug
		dup(&d)
		if err := db.CreateWeChatAccount(ctx, d); hearth.KindOf(err) != hearth.Conflict {
			t.Errorf("an account with a taken %s: %v, want a Conflict", name, err)
		}
	}

	// Safe mode off, a new slug and secret.
	clock.Advance(time.Minute)
	a.Name, a.Slug, a.AppSecret, a.EncodingAESKey, a.UpdatedAt = "Brand China", "brand", []byte("new sealed secret"), nil, clock.Now()
	must(t, db.UpdateWeChatAccount(ctx, a))
	got, err = db.WeChatAccountBySlug(ctx, "brand")
	must(t, err)
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("after UpdateWeChatAccount (-want +got):\n%s", diff)
	}
	_, err = db.WeChatAccountBySlug(ctx, "brand-cn")
	wantKind(t, err, hearth.NotFound)
	a.Slug = "outlet"
	wantKind(t, db.UpdateWeChatAccount(ctx, a), hearth.Conflict)
	wantKind(t, db.UpdateWeChatAccount(ctx, touchpoint.StoredWeChatAccount{ID: "nope", AppSecret: []byte{1}, Token: []byte{1}}), hearth.NotFound)
	_, err = db.WeChatAccount(ctx, "nope")
	wantKind(t, err, hearth.NotFound)
}

func testWeChatQRCodes(t *testing.T, db *store.DB, clock *Clock) {
	a := newWeChatAccount(t, db, clock, "brand", "wx0123456789abcdef")
	must(t, db.CreateWeChatAccount(ctx, a))
	b := newWeChatAccount(t, db, clock, "outlet", "wxfedcba9876543210")
	must(t, db.CreateWeChatAccount(ctx, b))
	poster := newTouchpoint(clock, "poster", touchpoint.ChannelWeChatQR, "")
	card := newTouchpoint(clock, "card", touchpoint.ChannelCard, "")
	for _, tp := range []*touchpoint.Touchpoint{&poster, &card} {
		n, err := db.CreateTouchpoint(ctx, *tp)
		must(t, err)
		tp.Number = n
	}
	code := func(acct string, tp touchpoint.Touchpoint, scene string, permanent bool) touchpoint.WeChatQRCode {
		clock.Advance(time.Second)
		c := touchpoint.WeChatQRCode{ID: hearth.NewID(), AccountID: acct, TouchpointID: tp.ID, Scene: scene, Ticket: "gQH47TwAAAAAAAAAASxodHRw+/=" + hearth.NewID(),
			URL: "http://weixin.qq.com/q/" + scene, ImageURL: "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=x", Permanent: permanent, CreatedAt: clock.Now()}
		if !permanent {
			exp := clock.Now().Add(30 * 24 * time.Hour)
			c.ExpiresAt = &exp
		}
		must(t, db.CreateWeChatQRCode(ctx, c))
		return c
	}
	temp1 := code(a.ID, poster, "tokA", false)
	temp2 := code(a.ID, poster, "tokA", false) // temporary codes of one scene: as many as asked for
	perm := code(a.ID, poster, "tokA", true)
	otherAccount := code(b.ID, poster, "tokA", true) // the same scene on another account is another code
	rotated := code(a.ID, poster, "tokB", true)      // after a key rotation the token, so the scene, differs
	cardCode := code(a.ID, card, "tokC", false)

	dup := perm
	dup.ID = hearth.NewID()
	wantKind(t, db.CreateWeChatQRCode(ctx, dup), hearth.Conflict)

	got, err := db.WeChatQRCodes(ctx, poster.ID)
	must(t, err)
	if diff := cmp.Diff([]touchpoint.WeChatQRCode{rotated, otherAccount, perm, temp2, temp1}, got); diff != "" {
		t.Errorf("WeChatQRCodes, newest first (-want +got):\n%s", diff)
	}
	got, err = db.PermanentWeChatQRCodes(ctx, a.ID, poster.ID)
	must(t, err)
	if diff := cmp.Diff([]touchpoint.WeChatQRCode{rotated, perm}, got); diff != "" {
		t.Errorf("PermanentWeChatQRCodes (-want +got):\n%s", diff)
	}
	got, err = db.WeChatQRCodes(ctx, card.ID)
	must(t, err)
	if diff := cmp.Diff([]touchpoint.WeChatQRCode{cardCode}, got); diff != "" {
		t.Errorf("WeChatQRCodes of another touchpoint (-want +got):\n%s", diff)
	}
	got, err = db.WeChatQRCodes(ctx, hearth.NewID())
	must(t, err)
	if len(got) != 0 {
		t.Errorf("codes of no touchpoint: %v", got)
	}
}
