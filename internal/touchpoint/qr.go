package touchpoint

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
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

// qrRenderer draws QR codes one after another, reusing its buffers and compressor, so that a batch
// allocates little per code. It is not safe for concurrent use.
type qrRenderer struct {
	zw    *zlib.Writer
	idat  bytes.Buffer // the compressed pixels
	row   []byte       // one packed pixel row, filter byte first
	blank []byte       // a white row
	png   []byte
	svg   []byte
}

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
	if err := r.encodePNG(modules, layout, o.Size); err != nil {
		return err
	}
	if _, err := w.Write(r.png); err != nil {
		return fmt.Errorf("touchpoint: write QR PNG: %w", err)
	}
	return nil
}

// encodePNG encodes modules into r.png as a 1-bit paletted PNG (white, black), byte for byte what image/png
// writes for that image at BestSpeed (a test holds it to that). We pack the bits ourselves because
// image/png packs a 1-bit image one interface call a pixel, which was two thirds of a batch's time; here a
// module row is packed once and its pixel rows are copies.
func (r *qrRenderer) encodePNG(modules [][]bool, layout qrLayout, size int) error {
	rowLen := 1 + (size+7)/8 // filter type 0, then 8 pixels a byte, most significant bit first
	if len(r.row) != rowLen {
		r.row, r.blank = make([]byte, rowLen), make([]byte, rowLen)
	}
	r.idat.Reset()
	if r.zw == nil {
		zw, err := zlib.NewWriterLevel(&r.idat, zlib.BestSpeed) // speed matters more than a few bytes in a batch
		if err != nil {
			return fmt.Errorf("touchpoint: QR PNG: %w", err)
		}
		r.zw = zw
	} else {
		r.zw.Reset(&r.idat)
	}
	// Writes go to a bytes.Buffer through zlib and cannot fail; Close reports any error of theirs.
	px := layout.modulePx
	for range layout.offset {
		r.zw.Write(r.blank)
	}
	for _, row := range modules {
		clear(r.row)
		for mx, dark := range row {
			if dark {
				for x := layout.offset + mx*px; x < layout.offset+(mx+1)*px; x++ {
					r.row[1+x/8] |= 0x80 >> (x % 8)
				}
			}
		}
		for range px {
			r.zw.Write(r.row)
		}
	}
	for range size - layout.offset - len(modules)*px {
		r.zw.Write(r.blank)
	}
	if err := r.zw.Close(); err != nil {
		return fmt.Errorf("touchpoint: QR PNG: %w", err)
	}

	b := append(r.png[:0], "\x89PNG\r\n\x1a\n"...)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(size))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(size))
	ihdr[8], ihdr[9] = 1, 3 // bit depth 1, indexed colour; deflate, standard filters, not interlaced
	b = appendPNGChunk(b, "IHDR", ihdr[:])
	b = appendPNGChunk(b, "PLTE", []byte{0xff, 0xff, 0xff, 0, 0, 0}) // index 0 white, 1 black
	// IDAT chunks of 32 KiB, as image/png's buffered writer cuts them.
	for data := r.idat.Bytes(); len(data) > 0; {
		n := min(len(data), 1<<15)
		b = appendPNGChunk(b, "IDAT", data[:n])
		data = data[n:]
	}
	r.png = appendPNGChunk(b, "IEND", nil)
	return nil
}

// appendPNGChunk appends a PNG chunk of type typ holding data.
func appendPNGChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
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
