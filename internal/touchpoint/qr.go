package touchpoint

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strconv"
	"strings"

	"github.com/hearth-cdp/hearth"
	qrcode "github.com/skip2/go-qrcode"
)

// QRFormat is the image format of a downloaded QR code.
type QRFormat string

const (
	QRPNG QRFormat = "png"
	QRSVG QRFormat = "svg"
)

// Limits and defaults of QROptions. 512 px prints a typical touch link (a version 4 symbol, 41 modules with
// its margin) at 12 px a module: sharp on a business card or a pack at 300 dpi; posters should use SVG.
const (
	DefaultQRSize   = 512
	MinQRSize       = 64
	MaxQRSize       = 4096
	DefaultQRMargin = 4 // the quiet zone the QR standard asks for
	MaxQRMargin     = 16
	DefaultQRLevel  = "M"

	// QRNoMargin asks for no quiet zone at all, for a code placed on a white area of its own:
	// Margin 0 means the default, as for every other zero option.
	QRNoMargin = -1
)

// QROptions says how to draw a QR code. The zero value draws the defaults.
type QROptions struct {
	Size   int    // width and height of the image in pixels, 64 to 4096; 0 means 512
	Margin int    // quiet zone in modules, 1 to 16; 0 means 4; QRNoMargin means none
	Level  string // error correction: "L", "M", "Q" or "H", either case; "" means "M"
}

// Normalize returns o with its defaults filled in and Level in upper case, or an Invalid error naming every
// option that is out of range. Normalizing twice gives the same options.
func (o QROptions) Normalize() (QROptions, error) {
	if o.Size == 0 {
		o.Size = DefaultQRSize
	}
	if o.Margin == 0 {
		o.Margin = DefaultQRMargin
	}
	if o.Level == "" {
		o.Level = DefaultQRLevel
	}
	o.Level = strings.ToUpper(o.Level)

	var problems []string
	if o.Size < MinQRSize || o.Size > MaxQRSize {
		problems = append(problems, fmt.Sprintf("the size must be from %d to %d pixels (got %d)", MinQRSize, MaxQRSize, o.Size))
	}
	if o.Margin != QRNoMargin && (o.Margin < 0 || o.Margin > MaxQRMargin) {
		problems = append(problems, fmt.Sprintf("the margin (the blank border, counted in QR squares) must be from 0 to %d squares (got %d)", MaxQRMargin, o.Margin))
	}
	if _, ok := qrLevels[o.Level]; !ok {
		problems = append(problems, fmt.Sprintf("the error correction level must be L (7%% damage), M (15%%), Q (25%%) or H (30%%) (got %q)", o.Level))
	}
	if len(problems) > 0 {
		return o, hearth.Errorf(hearth.Invalid, "touchpoint.qr", "QR code options: %s.", strings.Join(problems, "; "))
	}
	return o, nil
}

// quietZone is the margin in modules that o draws.
func (o QROptions) quietZone() int { return max(o.Margin, 0) }

var qrLevels = map[string]qrcode.RecoveryLevel{
	"L": qrcode.Low,
	"M": qrcode.Medium,
	"Q": qrcode.High,
	"H": qrcode.Highest,
}

// WriteQR writes content as a QR code image of exactly o.Size pixels square.
func WriteQR(w io.Writer, format QRFormat, content string, o QROptions) error {
	o, err := o.Normalize()
	if err != nil {
		return err
	}
	if err := checkQRFormat(format); err != nil {
		return err
	}
	var r qrRenderer
	return r.write(w, format, content, o)
}

func checkQRFormat(format QRFormat) error {
	if format != QRPNG && format != QRSVG {
		return hearth.Errorf(hearth.Invalid, "touchpoint.qr", "The QR code format must be png or svg (got %q).", string(format))
	}
	return nil
}

// qrRenderer draws QR codes of one size and format after another, reusing its image and PNG buffers, so
// that a batch allocates little per code. It is not safe for concurrent use.
type qrRenderer struct {
	img    *image.Paletted
	encBuf *png.EncoderBuffer
	enc    png.Encoder
	svg    []byte
}

// qrPalette puts white at index 0 so that a cleared image is blank.
var qrPalette = color.Palette{color.Gray{Y: 0xff}, color.Gray{Y: 0}}

// qrLayout places a symbol of n modules in an image: whole pixels a module, centred.
type qrLayout struct {
	modulePx int // pixels a module
	offset   int // pixels from the image's edge to the symbol's, on every side
}

// planQR encodes content's data and works out where its symbol goes in the image, without drawing it: cheap
// enough to check a whole batch before writing a byte of it.
func planQR(content string, o QROptions) (*qrcode.QRCode, qrLayout, error) {
	if content == "" {
		return nil, qrLayout{}, hearth.Errorf(hearth.Invalid, "touchpoint.qr", "There is nothing to put in the QR code.")
	}
	q, err := qrcode.New(content, qrLevels[o.Level])
	if err != nil {
		return nil, qrLayout{}, &hearth.Error{Kind: hearth.Invalid, Op: "touchpoint.qr",
			Msg: fmt.Sprintf("The link is too long for a QR code with error correction level %s; choose a lower level.", o.Level),
			Err: err}
	}
	n := 17 + 4*q.VersionNumber // modules a side, without a quiet zone
	total := n + 2*o.quietZone()
	if o.Size < total {
		return nil, qrLayout{}, hearth.Errorf(hearth.Invalid, "touchpoint.qr",
			"This link needs a QR code of at least %d pixels with a margin of %d squares; choose a larger size or a smaller margin.",
			max(total, MinQRSize), o.quietZone())
	}
	px := o.Size / total
	return q, qrLayout{modulePx: px, offset: (o.Size - px*n) / 2}, nil
}

// encodeQR returns the modules of content's symbol without a quiet zone, and where they go in the image.
func encodeQR(content string, o QROptions) ([][]bool, qrLayout, error) {
	q, layout, err := planQR(content, o)
	if err != nil {
		return nil, qrLayout{}, err
	}
	// The library's border is a fixed 4 modules; we draw the quiet zone ourselves.
	q.DisableBorder = true
	return q.Bitmap(), layout, nil // Bitmap encodes again on every call, so call it once
}

// write draws content in format with o, which must be normalized, to w.
func (r *qrRenderer) write(w io.Writer, format QRFormat, content string, o QROptions) error {
	modules, layout, err := encodeQR(content, o)
	if err != nil {
		return err
	}
	if format == QRSVG {
		r.svg = appendQRSVG(r.svg[:0], modules, layout, o.Size)
		if _, err := w.Write(r.svg); err != nil {
			return fmt.Errorf("touchpoint: write QR SVG: %w", err)
		}
		return nil
	}
	r.drawPNG(modules, layout, o.Size)
	r.enc.CompressionLevel = png.BestSpeed // speed matters more than a few bytes in a batch of 10,000
	r.enc.BufferPool = r
	if err := r.enc.Encode(w, r.img); err != nil {
		return fmt.Errorf("touchpoint: write QR PNG: %w", err)
	}
	return nil
}

// Get and Put make r the PNG encoder's buffer pool: one buffer, reused for every code r draws.
func (r *qrRenderer) Get() *png.EncoderBuffer  { return r.encBuf }
func (r *qrRenderer) Put(b *png.EncoderBuffer) { r.encBuf = b }

// drawPNG draws modules into r.img, one pixel row of a module row and then copies of it.
func (r *qrRenderer) drawPNG(modules [][]bool, layout qrLayout, size int) {
	if r.img == nil || r.img.Rect.Dx() != size {
		r.img = image.NewPaletted(image.Rect(0, 0, size, size), qrPalette)
	} else {
		clear(r.img.Pix)
	}
	px, pix, stride := layout.modulePx, r.img.Pix, r.img.Stride
	for my, row := range modules {
		top := (layout.offset + my*px) * stride
		line := pix[top : top+size]
		for mx, dark := range row {
			if dark {
				x := layout.offset + mx*px
				for i := x; i < x+px; i++ {
					line[i] = 1
				}
			}
		}
		for y := 1; y < px; y++ {
			copy(pix[top+y*stride:top+y*stride+size], line)
		}
	}
}

// appendQRSVG appends an SVG drawing of modules to b: a white square and one path whose horizontal runs of
// dark modules are each one rectangle, in the same pixel grid as the PNG.
func appendQRSVG(b []byte, modules [][]bool, layout qrLayout, size int) []byte {
	s := strconv.Itoa(size)
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<svg xmlns="http://www.w3.org/2000/svg" width="`...)
	b = append(b, s+`" height="`+s+`" viewBox="0 0 `+s+" "+s+`" shape-rendering="crispEdges">`...)
	b = append(b, `<rect width="`+s+`" height="`+s+`" fill="#fff"/><path fill="#000" d="`...)
	px := layout.modulePx
	for my, row := range modules {
		for mx := 0; mx < len(row); {
			if !row[mx] {
				mx++
				continue
			}
			start := mx
			for mx < len(row) && row[mx] {
				mx++
			}
			width := (mx - start) * px
			b = append(b, 'M')
			b = strconv.AppendInt(b, int64(layout.offset+start*px), 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(layout.offset+my*px), 10)
			b = append(b, 'h')
			b = strconv.AppendInt(b, int64(width), 10)
			b = append(b, 'v')
			b = strconv.AppendInt(b, int64(px), 10)
			b = append(b, 'h', '-')
			b = strconv.AppendInt(b, int64(width), 10)
			b = append(b, 'z')
		}
	}
	return append(b, `"/></svg>`+"\n"...)
}
