package httpapi_test

import (
	"bytes"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

type campaignResp struct {
	ID, Name, Status string
	UTMSource        string `json:"utm_source"`
	Totals           struct{ Touchpoints int }
}

type touchpointResp struct {
	ID, Name, Channel, Status, Token, URL, Owner string
	Number                                       int64
	DestinationURL                               string  `json:"destination_url"`
	CampaignID                                   *string `json:"campaign_id"`
	Stats                                        struct{ Touches int64 }
}

func TestCampaignsAndTouchpoints(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		m := e.as(hearth.RoleMarketer)
		var c campaignResp
		r := m.do("POST", "/api/v1/campaigns", map[string]any{"name": "Singles' Day", "goal": "New members", "utm_source": "poster", "utm_campaign": "1111",
			"starts_at": "2026-04-01T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z"})
		if r.status != http.StatusCreated {
			t.Fatalf("create campaign: %d %s", r.status, r.body)
		}
		r.decode(t, &c)
		if c.Status != "active" || c.UTMSource != "poster" {
			t.Errorf("campaign %+v", c)
		}

		var tp touchpointResp
		r = m.do("POST", "/api/v1/touchpoints", map[string]any{"name": "Jing'an window poster", "channel": "qr_poster",
			"destination_url": "https://shop.example/spring?ref=poster", "campaign_id": c.ID, "location": "Shanghai Jing'an", "owner": "Store 12"})
		if r.status != http.StatusCreated {
			t.Fatalf("create touchpoint: %d %s", r.status, r.body)
		}
		r.decode(t, &tp)
		if tp.ID == "" || tp.Number < 1 || len(tp.Token) > 32 || tp.URL != "https://go.example/t/"+tp.Token || tp.CampaignID == nil || *tp.CampaignID != c.ID {
			t.Errorf("touchpoint %+v", tp)
		}

		// Every problem at once, each named.
		r = m.do("POST", "/api/v1/touchpoints", map[string]any{"channel": "billboard", "destination_url": "javascript:alert(1)", "campaign_id": "nope"})
		if r.status != http.StatusBadRequest {
			t.Fatalf("bad touchpoint: %d %s", r.status, r.body)
		}
		for _, want := range []string{"name", "channel", "destination_url", "campaign_id"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("the error %s does not name %s", r.body, want)
			}
		}
		r = m.do("POST", "/api/v1/touchpoints", map[string]any{"name": "Poster", "channel": "qr_poster", "destination_url": "https://shop.example:99999/"})
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "The destination_url must be an http or https address") {
			t.Errorf("a destination with no such port: %d %s", r.status, r.body)
		}
		if r = m.do("GET", "/api/v1/touchpoints/"+tp.ID+"/qr.png?margin=-1", nil); r.status != http.StatusBadRequest {
			t.Errorf("a QR code with a margin of -1: %d %s", r.status, r.body)
		}
		if r = m.do("POST", "/api/v1/touchpoints/"+tp.ID+"/tokens", map[string]any{"serial": 3}); r.status != http.StatusBadRequest ||
			!strings.Contains(string(r.body), "issued no serial numbers yet") {
			t.Errorf("a token of serial 3 where none was issued: %d %s", r.status, r.body)
		}

		var list struct{ Items []touchpointResp }
		m.do("GET", "/api/v1/touchpoints?campaign_id="+c.ID+"&q=window", nil).decode(t, &list)
		if len(list.Items) != 1 || list.Items[0].ID != tp.ID {
			t.Errorf("filtered list: %+v", list.Items)
		}
		m.do("GET", "/api/v1/touchpoints?channel=ad", nil).decode(t, &list)
		if len(list.Items) != 0 {
			t.Errorf("channel filter: %+v", list.Items)
		}

		r = m.do("PATCH", "/api/v1/touchpoints/"+tp.ID, map[string]any{"owner": "Store 14"})
		r.decode(t, &tp)
		if r.status != http.StatusOK || tp.Owner != "Store 14" || tp.Name != "Jing'an window poster" {
			t.Errorf("patch: %d %+v", r.status, tp)
		}
		m.do("POST", "/api/v1/touchpoints/"+tp.ID+"/pause", nil).decode(t, &tp)
		if tp.Status != "paused" {
			t.Errorf("after pause: %s", tp.Status)
		}
		m.do("POST", "/api/v1/touchpoints/"+tp.ID+"/resume", nil).decode(t, &tp)
		if tp.Status != "active" {
			t.Errorf("after resume: %s", tp.Status)
		}
		m.do("GET", "/api/v1/campaigns/"+c.ID, nil).decode(t, &c)
		if c.Totals.Touchpoints != 1 {
			t.Errorf("campaign totals: %+v", c.Totals)
		}
		m.do("POST", "/api/v1/campaigns/"+c.ID+"/pause", nil).decode(t, &c)
		if c.Status != "paused" {
			t.Errorf("campaign after pause: %s", c.Status)
		}

		// The QR code holds the touch link.
		r = m.do("GET", "/api/v1/touchpoints/"+tp.ID+"/qr.png?size=300&margin=2&level=Q", nil)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "image/png" {
			t.Fatalf("qr.png: %d %s", r.status, r.header.Get("Content-Type"))
		}
		if got := decodeQR(t, r.body); got != tp.URL {
			t.Errorf("the QR code holds %q, want %q", got, tp.URL)
		}
		r = m.do("GET", "/api/v1/touchpoints/"+tp.ID+"/qr.png?size=300&margin=0", nil)
		// Without a margin the finder square's dark corner is near the image's corner: less than a module
		// away (centring whole-pixel modules leaves a few pixels); a margin of 4 would put it 40 away.
		if img, err := png.Decode(bytes.NewReader(r.body)); err != nil {
			t.Errorf("margin=0: %v", err)
		} else {
			d := 0
			for ; d < 150; d++ {
				if y, _, _, _ := color.GrayModel.Convert(img.At(d, d)).RGBA(); y < 0x8000 {
					break
				}
			}
			if d > 12 {
				t.Errorf("margin=0: the code starts %d pixels in", d)
			}
		}
		if r := m.do("GET", "/api/v1/touchpoints/"+tp.ID+"/qr.png?size=10", nil); r.status != http.StatusBadRequest {
			t.Errorf("a 10 px QR code: %d", r.status)
		}
		if r := m.do("GET", "/api/v1/touchpoints/"+tp.ID+"/qr.svg?serial=3", nil); r.status != http.StatusBadRequest {
			t.Errorf("the QR code of a serial never issued: %d %s", r.status, r.body)
		}
		if r := m.do("GET", "/api/v1/touchpoints/"+tp.ID+"/qr.svg", nil); r.status != http.StatusOK || !bytes.Contains(r.body, []byte("<svg")) {
			t.Errorf("qr.svg: %d %.80s", r.status, r.body)
		}

		// A token with an expiry.
		var tok struct{ Token, URL string }
		r = m.do("POST", "/api/v1/touchpoints/"+tp.ID+"/tokens", map[string]any{"expires_at": e.clock.Now().Add(48 * time.Hour)})
		r.decode(t, &tok)
		if r.status != http.StatusCreated || tok.Token == tp.Token || !strings.HasSuffix(tok.URL, tok.Token) {
			t.Errorf("token with expiry: %d %s", r.status, r.body)
		}

		// Revocations.
		r = m.do("POST", "/api/v1/touchpoints/"+tp.ID+"/revocations", map[string]any{"kind": "token", "token": tok.Token, "reason": "sent to the wrong list"})
		if r.status != http.StatusCreated {
			t.Errorf("revoke a token: %d %s", r.status, r.body)
		}
		if r := m.do("POST", "/api/v1/touchpoints/"+tp.ID+"/revocations", map[string]any{"kind": "token", "token": "forged-token-xyz"}); r.status != http.StatusBadRequest {
			t.Errorf("revoke a forged token: %d", r.status)
		}
		var revs struct {
			Items []struct{ Kind, Reason string }
		}
		m.do("GET", "/api/v1/touchpoints/"+tp.ID+"/revocations", nil).decode(t, &revs)
		if len(revs.Items) != 1 || revs.Items[0].Reason != "sent to the wrong list" {
			t.Errorf("revocations: %+v", revs.Items)
		}

		// Revoked as a whole, a touchpoint says so, and stays so.
		if r := m.do("POST", "/api/v1/touchpoints/"+tp.ID+"/revocations", map[string]any{"kind": "touchpoint", "reason": "poster taken down"}); r.status != http.StatusCreated {
			t.Fatalf("revoke the touchpoint: %d %s", r.status, r.body)
		}
		m.do("GET", "/api/v1/touchpoints/"+tp.ID, nil).decode(t, &tp)
		if tp.Status != "revoked" {
			t.Errorf("status after revoking the touchpoint: %s", tp.Status)
		}
		for _, path := range []string{"/resume", "/pause"} {
			if r := m.do("POST", "/api/v1/touchpoints/"+tp.ID+path, nil); r.status != http.StatusConflict {
				t.Errorf("%s a revoked touchpoint: %d, want 409", path, r.status)
			}
		}
		if r := m.do("PATCH", "/api/v1/touchpoints/"+tp.ID, map[string]any{"status": "active"}); r.status != http.StatusConflict {
			t.Errorf("patch a revoked touchpoint active: %d, want 409", r.status)
		}
		if r := m.do("PATCH", "/api/v1/touchpoints/"+tp.ID, map[string]any{"name": "Old poster"}); r.status != http.StatusOK {
			t.Errorf("rename a revoked touchpoint: %d %s", r.status, r.body)
		}
	})
}

func TestSigningKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		a := e.as(hearth.RoleAdmin)
		var tp touchpointResp
		a.do("POST", "/api/v1/touchpoints", map[string]any{"name": "Card", "channel": "business_card", "destination_url": "https://shop.example/"}).decode(t, &tp)
		type keys struct {
			Items []struct {
				ID        uint32
				Signing   bool
				RetiredAt *time.Time `json:"retired_at"`
			}
		}
		var k keys
		a.do("GET", "/api/v1/signing-keys", nil).decode(t, &k)
		if len(k.Items) != 1 || !k.Items[0].Signing {
			t.Fatalf("keys at first start: %+v", k.Items)
		}
		first := k.Items[0].ID
		if r := a.do("POST", "/api/v1/signing-keys/"+strconv.FormatUint(uint64(first), 10)+"/retire", nil); r.status != http.StatusConflict {
			t.Errorf("retiring the signing key: %d %s, want 409", r.status, r.body)
		}
		a.do("POST", "/api/v1/signing-keys", nil).decode(t, &k)
		if len(k.Items) != 2 || k.Items[0].Signing || !k.Items[1].Signing {
			t.Fatalf("keys after rotation: %+v", k.Items)
		}
		var again touchpointResp
		a.do("GET", "/api/v1/touchpoints/"+tp.ID, nil).decode(t, &again)
		if again.Token == tp.Token {
			t.Error("after a rotation the touchpoint's token is still signed with the old key")
		}
		a.do("POST", "/api/v1/signing-keys/"+strconv.FormatUint(uint64(first), 10)+"/retire", nil).decode(t, &k)
		if k.Items[0].RetiredAt == nil {
			t.Errorf("after retiring: %+v", k.Items)
		}
	})
}

// decodeQR reads the text of a QR code in a PNG. The codes hold random tokens, and gozxing's finder-pattern
// detector misreads about one random code in 250, so it reads the pure image's modules straight off the grid.
func decodeQR(t *testing.T, b []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}
