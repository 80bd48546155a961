package wechat

import (
	"context"
	"fmt"
	"net/url"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
)

// The limits WeChat documents for parametric QR codes.
const (
	MaxSceneLen       = 64                  // bytes of scene_str
	MinQRCodeLifetime = 60 * time.Second    // ours: a shorter code expires before a printed one is scanned
	MaxQRCodeLifetime = 30 * 24 * time.Hour // 2,592,000 s
)

// QRCodeRequest asks for a parametric QR code whose scans WeChat reports with Scene.
type QRCodeRequest struct {
	Scene     string
	Permanent bool          // permanent codes never expire but an account may have only 100,000 of them
	ExpiresIn time.Duration // temporary codes only: MinQRCodeLifetime to MaxQRCodeLifetime, whole seconds
}

// QRCode is a created code. URL is what the code encodes; Hearth may draw the image itself from it.
type QRCode struct {
	Ticket    string
	URL       string
	ExpiresAt time.Time // zero for a permanent code
}

// Validate checks the request against WeChat's rules, so that a bad one fails here with a clear reason.
func (r QRCodeRequest) Validate() error {
	const op = "wechat.create_qrcode"
	if err := ValidateScene(r.Scene); err != nil {
		return err
	}
	if r.Permanent {
		if r.ExpiresIn != 0 {
			return hearth.Errorf(hearth.Invalid, op, "A permanent QR code has no expiry.")
		}
		return nil
	}
	if r.ExpiresIn < MinQRCodeLifetime || r.ExpiresIn > MaxQRCodeLifetime {
		return hearth.Errorf(hearth.Invalid, op, "A temporary QR code must expire after 60 seconds to 30 days.")
	}
	if r.ExpiresIn%time.Second != 0 {
		return hearth.Errorf(hearth.Invalid, op, "A QR code's lifetime is counted in whole seconds.")
	}
	return nil
}

// ValidateScene checks a scene string: 1 to 64 bytes of UTF-8 text without control characters. WeChat
// reports it back in callbacks inside XML, where control characters cannot travel.
func ValidateScene(scene string) error {
	const op = "wechat.scene"
	switch {
	case scene == "":
		return hearth.Errorf(hearth.Invalid, op, "The QR code scene is empty.")
	case len(scene) > MaxSceneLen:
		return hearth.Errorf(hearth.Invalid, op, "The QR code scene is longer than %d bytes.", MaxSceneLen)
	case !utf8.ValidString(scene):
		return hearth.Errorf(hearth.Invalid, op, "The QR code scene is not valid UTF-8.")
	}
	for _, r := range scene {
		if unicode.IsControl(r) {
			return hearth.Errorf(hearth.Invalid, op, "The QR code scene contains a control character.")
		}
	}
	return nil
}

// The request body of /cgi-bin/qrcode/create.
type qrCodeCreate struct {
	ExpireSeconds int64  `json:"expire_seconds,omitempty"`
	ActionName    string `json:"action_name"`
	ActionInfo    struct {
		Scene struct {
			SceneStr string `json:"scene_str"`
		} `json:"scene"`
	} `json:"action_info"`
}

// CreateQRCode asks WeChat for a parametric QR code. Keep the ticket of a permanent code: WeChat does not
// say that asking again for the same scene is free of the 100,000 limit.
func (c *Client) CreateQRCode(ctx context.Context, req QRCodeRequest) (QRCode, error) {
	const op = "wechat.create_qrcode"
	if err := req.Validate(); err != nil {
		return QRCode{}, err
	}
	var body qrCodeCreate
	body.ActionInfo.Scene.SceneStr = req.Scene
	if req.Permanent {
		body.ActionName = "QR_LIMIT_STR_SCENE"
	} else {
		body.ActionName = "QR_STR_SCENE"
		body.ExpireSeconds = int64(req.ExpiresIn / time.Second)
	}
	var answer struct {
		Ticket        string `json:"ticket"`
		ExpireSeconds int64  `json:"expire_seconds"`
		URL           string `json:"url"`
	}
	start := c.clock.Now()
	if err := c.call(ctx, op, "/cgi-bin/qrcode/create", body, &answer); err != nil {
		return QRCode{}, err
	}
	if answer.Ticket == "" || answer.URL == "" {
		return QRCode{}, unavailable(op, "WeChat answered without a QR code.",
			fmt.Errorf("wechat: qrcode answer lacks a ticket or url"))
	}
	code := QRCode{Ticket: answer.Ticket, URL: answer.URL}
	if !req.Permanent {
		life := req.ExpiresIn
		if answer.ExpireSeconds > 0 {
			life = time.Duration(answer.ExpireSeconds) * time.Second // WeChat's word is final
		}
		code.ExpiresAt = start.Add(life)
	}
	return code, nil
}

// QRCodeImageURL is where the image of the code with this ticket can be fetched; the ticket is itself the
// credential, so the URL needs no access token.
func (c *Client) QRCodeImageURL(ticket string) string {
	return c.imageBaseURL + "?ticket=" + url.QueryEscape(ticket)
}
