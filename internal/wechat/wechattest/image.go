package wechattest

import (
	"fmt"

	"github.com/skip2/go-qrcode"
)

// qrImage draws the QR code image WeChat serves for a ticket: a PNG of the code's URL, which is what WeChat's
// own image encodes.
func qrImage(url string) ([]byte, error) {
	png, err := qrcode.Encode(url, qrcode.Medium, 430) // WeChat's images are 430 px square
	if err != nil {
		return nil, fmt.Errorf("wechattest: draw QR code: %w", err)
	}
	return png, nil
}
