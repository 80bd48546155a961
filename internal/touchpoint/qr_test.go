package touchpoint

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hearth-cdp/hearth"
	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

const (
	// A touch link as Hearth issues them: a host and a token of about 30 characters.
	testTouchURL = "https://brand.example/t/AbC123dEf456GhI789jKl012MnO3"
	// The longest touch link we expect: 60 characters.
	testLongTouchURL = "https://touch.brand-example.com/t/AbC123dEf456GhI789jKl012Mn"
)

// decodeQR reads the QR code in img as a phone would, guessing the character set of byte segments.
func decodeQR(t testing.TB, img image.Image) string {
	t.Helper()
	text, err := decodeQRWithHints(img, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return text
}

func decodeQRWithHints(img image.Image, hints map[gozxing.DecodeHintType]any) (string, error) {
	bitmap, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("bitmap: %w", err)
	}
	result, err := gozxingqr.NewQRCodeReader().Decode(bitmap, hints)
	if err != nil {
		return "", err
	}
	return result.GetText(), nil
}

// decodeQRBytes returns the exact bytes in a pure QR image. go-qrcode writes byte segments without an ECI,
// so we tell gozxing they are ISO-8859-1, which maps each byte to the rune of the same value, and map back.
func decodeQRBytes(img image.Image) ([]byte, error) {
	text, err := decodeQRWithHints(img, map[gozxing.DecodeHintType]any{
		gozxing.DecodeHintType_PURE_BARCODE:  true,
		gozxing.DecodeHintType_CHARACTER_SET: "ISO-8859-1",
	})
	if err != nil {
		return nil, err
	}
	var raw []byte
	for _, r := range text {
		if r > 0xff {
			return nil, fmt.Errorf("rune %U is not a byte: gozxing did not use ISO-8859-1", r)
		}
		raw = append(raw, byte(r))
	}
	return raw, nil
}

func renderPNG(t testing.TB, content string, o QROptions) image.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteQR(&buf, QRPNG, content, o); err != nil {
		t.Fatalf("WriteQR(png, %+v): %v", o, err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("decode PNG: %v", err)
	}
	return img
}

func isDark(c color.Color) bool {
	y := color.GrayModel.Convert(c).(color.Gray).Y
	return y < 0x80
}

// checkQRGeometry checks that img is size square, that the symbol's modules are whole pixels, that it is
// centred, and that at least margin modules of white surround it.
func checkQRGeometry(t *testing.T, img image.Image, size, margin int) {
	t.Helper()
	b := img.Bounds()
	if b.Dx() != size || b.Dy() != size {
		t.Fatalf("image is %dx%d, want %dx%d", b.Dx(), b.Dy(), size, size)
	}
	minX, minY, maxX, maxY := size, size, -1, -1
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if isDark(img.At(x, y)) {
				minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
			}
		}
	}
	// The top-left finder pattern starts the symbol with a dark run of 7 modules.
	run := 0
	for x := minX; x <= maxX && isDark(img.At(x, minY)); x++ {
		run++
	}
	if run%7 != 0 {
		t.Fatalf("finder pattern run is %d px, not a whole number of pixels a module for 7 modules", run)
	}
	modulePx := run / 7
	side := maxX - minX + 1
	if side%modulePx != 0 || maxY-minY+1 != side {
		t.Fatalf("symbol is %dx%d px with %d px modules", side, maxY-minY+1, modulePx)
	}
	left, right, top, bottom := minX, size-1-maxX, minY, size-1-maxY
	if left-right > 1 || right-left > 1 || top-bottom > 1 || bottom-top > 1 {
		t.Errorf("symbol is not centred: left %d right %d top %d bottom %d", left, right, top, bottom)
	}
	if want := margin * modulePx; min(left, right, top, bottom) < want {
		t.Errorf("white margin is %d px, want at least %d modules of %d px", min(left, right, top, bottom), margin, modulePx)
	}
	if size/(side/modulePx+2*margin) != modulePx {
		t.Errorf("module is %d px, want the largest that fits: %d", modulePx, size/(side/modulePx+2*margin))
	}
}

func TestWriteQRPNGDecodes(t *testing.T) {
	contents := []string{testTouchURL, testLongTouchURL}
	layouts := []struct{ size, margin int }{
		{64, QRNoMargin},
		{128, 1},
		{333, 4},
		{512, 0}, // the default margin
		{1000, 16},
	}
	for _, level := range []string{"L", "M", "Q", "H"} {
		for _, content := range contents {
			for _, l := range layouts {
				o := QROptions{Size: l.size, Margin: l.margin, Level: level}
				t.Run(fmt.Sprintf("%s/%d/size%d/margin%d", level, len(content), l.size, l.margin), func(t *testing.T) {
					img := renderPNG(t, content, o)
					norm, _ := o.Normalize()
					checkQRGeometry(t, img, l.size, norm.quietZone())
					if got := decodeQR(t, img); got != content {
						t.Errorf("decoded %q, want %q", got, content)
					}
				})
			}
		}
	}
}

func TestWriteQRPNGIsOneBitPaletted(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteQR(&buf, QRPNG, testTouchURL, QROptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Width != DefaultQRSize || cfg.Height != DefaultQRSize {
		t.Errorf("default size is %dx%d, want %d", cfg.Width, cfg.Height, DefaultQRSize)
	}
	// IHDR's bit depth and colour type: 1 bit, indexed colour.
	if depth, colourType := buf.Bytes()[24], buf.Bytes()[25]; depth != 1 || colourType != 3 {
		t.Errorf("PNG bit depth %d colour type %d, want 1-bit paletted (1, 3)", depth, colourType)
	}
	if _, ok := cfg.ColorModel.(color.Palette); !ok {
		t.Errorf("PNG colour model is %T, want a palette", cfg.ColorModel)
	}
}

// TestQRPNGMatchesImagePNG holds our 1-bit PNG writer to image/png: for the same pixels, drawn into an
// image.Paletted and encoded at BestSpeed, the files are identical, IDAT chunk cuts included (4096 px
// needs more than one chunk).
func TestQRPNGMatchesImagePNG(t *testing.T) {
	var r qrRenderer // one renderer for every case, as in a batch, so reuse is tested too
	for _, tc := range []struct {
		content string
		o       QROptions
	}{
		{testTouchURL, QROptions{}},
		{testTouchURL, QROptions{Size: 64, Margin: QRNoMargin, Level: "L"}},
		{testLongTouchURL, QROptions{Size: 333, Margin: 3, Level: "H"}},
		{testLongTouchURL, QROptions{Size: 1001, Margin: 16, Level: "Q"}},
		{strings.Repeat("0123456789", 200), QROptions{Size: 4096, Level: "L"}},
		{testTouchURL, QROptions{Size: 4095, Margin: 1}},
	} {
		o, err := tc.o.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("%d/size%d/margin%d/%s", len(tc.content), o.Size, o.Margin, o.Level), func(t *testing.T) {
			modules, layout, err := encodeQR(tc.content, o)
			if err != nil {
				t.Fatal(err)
			}
			img := image.NewPaletted(image.Rect(0, 0, o.Size, o.Size), color.Palette{color.White, color.Black})
			for my, row := range modules {
				for mx, dark := range row {
					if !dark {
						continue
					}
					for y := range layout.modulePx {
						for x := range layout.modulePx {
							img.SetColorIndex(layout.offset+mx*layout.modulePx+x, layout.offset+my*layout.modulePx+y, 1)
						}
					}
				}
			}
			var want bytes.Buffer
			enc := png.Encoder{CompressionLevel: png.BestSpeed}
			if err := enc.Encode(&want, img); err != nil {
				t.Fatal(err)
			}
			if err := r.encodePNG(modules, layout, o.Size); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.png, want.Bytes()) {
				t.Errorf("our PNG (%d bytes) differs from image/png's (%d bytes)", len(r.png), want.Len())
			}
		})
	}
}

// testSVG is the part of our SVG that a reader needs to draw it.
type testSVG struct {
	XMLName        xml.Name `xml:"svg"`
	Width          string   `xml:"width,attr"`
	Height         string   `xml:"height,attr"`
	ViewBox        string   `xml:"viewBox,attr"`
	ShapeRendering string   `xml:"shape-rendering,attr"`
	Rect           struct {
		Width  string `xml:"width,attr"`
		Height string `xml:"height,attr"`
		Fill   string `xml:"fill,attr"`
	} `xml:"rect"`
	Paths []struct {
		Fill string `xml:"fill,attr"`
		D    string `xml:"d,attr"`
	} `xml:"path"`
}

var svgRun = regexp.MustCompile(`^M(\d+) (\d+)h(\d+)v(\d+)h-(\d+)z`)

// rasteriseSVG parses an SVG that WriteQR wrote and draws its path's rectangles into an image.
func rasteriseSVG(t *testing.T, data []byte) *image.Gray {
	t.Helper()
	var svg testSVG
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	if err := dec.Decode(&svg); err != nil {
		t.Fatalf("SVG is not well-formed XML: %v", err)
	}
	size, err := strconv.Atoi(svg.Width)
	if err != nil || svg.Height != svg.Width {
		t.Fatalf("SVG width %q height %q", svg.Width, svg.Height)
	}
	if want := fmt.Sprintf("0 0 %d %d", size, size); svg.ViewBox != want {
		t.Errorf("viewBox %q, want %q", svg.ViewBox, want)
	}
	if svg.ShapeRendering != "crispEdges" {
		t.Errorf("shape-rendering %q, want crispEdges", svg.ShapeRendering)
	}
	if svg.Rect.Width != svg.Width || svg.Rect.Height != svg.Height || svg.Rect.Fill != "#fff" {
		t.Errorf("background rect %+v, want white and %d square", svg.Rect, size)
	}
	if len(svg.Paths) != 1 {
		t.Fatalf("SVG has %d paths, want 1", len(svg.Paths))
	}
	img := image.NewGray(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	d := svg.Paths[0].D
	for d != "" {
		m := svgRun.FindStringSubmatch(d)
		if m == nil {
			t.Fatalf("path data not made of runs at %.40q", d)
		}
		d = d[len(m[0]):]
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		w, _ := strconv.Atoi(m[3])
		h, _ := strconv.Atoi(m[4])
		if m[5] != m[3] {
			t.Fatalf("run %q does not close on itself", m[0])
		}
		for yy := y; yy < y+h; yy++ {
			for xx := x; xx < x+w; xx++ {
				if img.Pix[img.PixOffset(xx, yy)] == 0 {
					t.Fatalf("runs overlap at %d,%d", xx, yy)
				}
				img.Pix[img.PixOffset(xx, yy)] = 0
			}
		}
	}
	return img
}

func TestWriteQRSVGDecodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		o       QROptions
	}{
		{"defaults", testTouchURL, QROptions{}},
		{"long link level H", testLongTouchURL, QROptions{Level: "H"}},
		{"small no margin", testTouchURL, QROptions{Size: 64, Margin: QRNoMargin, Level: "l"}},
		{"odd size wide margin", testLongTouchURL, QROptions{Size: 777, Margin: 16, Level: "Q"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteQR(&buf, QRSVG, tc.content, tc.o); err != nil {
				t.Fatal(err)
			}
			img := rasteriseSVG(t, buf.Bytes())
			if got := decodeQR(t, img); got != tc.content {
				t.Errorf("decoded %q, want %q", got, tc.content)
			}
			// The SVG draws the same pixels as the PNG.
			pngImg := renderPNG(t, tc.content, tc.o)
			for y := 0; y < img.Rect.Dy(); y++ {
				for x := 0; x < img.Rect.Dx(); x++ {
					if isDark(img.At(x, y)) != isDark(pngImg.At(x, y)) {
						t.Fatalf("SVG and PNG differ at %d,%d", x, y)
					}
				}
			}
		})
	}
}

func TestWriteQRSVGMergesRuns(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteQR(&buf, QRSVG, testTouchURL, QROptions{}); err != nil {
		t.Fatal(err)
	}
	// A version 3 or 4 symbol has some 500 to 600 dark modules; merged runs make far fewer rectangles.
	if runs := strings.Count(buf.String(), "z"); runs > 400 {
		t.Errorf("path has %d rectangles; horizontal runs are not merged", runs)
	}
	if buf.Len() > 8000 {
		t.Errorf("SVG is %d bytes, want a compact one", buf.Len())
	}
}

func TestQROptionsNormalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   QROptions
		want QROptions
	}{
		{"zero is the defaults", QROptions{}, QROptions{Size: 512, Margin: 4, Level: "M"}},
		{"lower case level", QROptions{Size: 64, Margin: 16, Level: "q"}, QROptions{Size: 64, Margin: 16, Level: "Q"}},
		{"largest", QROptions{Size: 4096, Margin: 1, Level: "h"}, QROptions{Size: 4096, Margin: 1, Level: "H"}},
		{"no margin", QROptions{Margin: QRNoMargin, Level: "L"}, QROptions{Size: 512, Margin: QRNoMargin, Level: "L"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Normalize() = %+v, want %+v", got, tc.want)
			}
			if again, err := got.Normalize(); err != nil || again != got {
				t.Errorf("Normalize twice = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestQROptionsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    QROptions
	}{
		{"size too small", QROptions{Size: 63}},
		{"size negative", QROptions{Size: -512}},
		{"size too large", QROptions{Size: 4097}},
		{"margin negative", QROptions{Margin: -2}},
		{"margin too wide", QROptions{Margin: 17}},
		{"level unknown", QROptions{Level: "X"}},
		{"level a word", QROptions{Level: "high"}},
		{"everything wrong", QROptions{Size: 1, Margin: 99, Level: "?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.o.Normalize()
			if kind := hearth.KindOf(err); kind != hearth.Invalid {
				t.Errorf("Normalize() error %v of kind %v, want %v", err, kind, hearth.Invalid)
			}
			err = WriteQR(&bytes.Buffer{}, QRPNG, testTouchURL, tc.o)
			if kind := hearth.KindOf(err); kind != hearth.Invalid {
				t.Errorf("WriteQR error %v of kind %v, want %v", err, kind, hearth.Invalid)
			}
		})
	}
}

func TestWriteQRInvalid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		format  QRFormat
		content string
		o       QROptions
	}{
		{"unknown format", "gif", testTouchURL, QROptions{}},
		{"empty format", "", testTouchURL, QROptions{}},
		{"nothing to encode", QRPNG, "", QROptions{}},
		{"too long for any QR code", QRPNG, strings.Repeat("x", 3000), QROptions{}},
		{"too long for level H", QRSVG, strings.Repeat("x", 2000), QROptions{Level: "H"}},
		{"image too small for symbol and margin", QRPNG, testLongTouchURL, QROptions{Size: 64, Margin: 16, Level: "H"}},
		{"image too small for a large symbol", QRPNG, strings.Repeat("x", 1000), QROptions{Size: 100, Margin: QRNoMargin}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteQR(&buf, tc.format, tc.content, tc.o)
			if kind := hearth.KindOf(err); kind != hearth.Invalid {
				t.Errorf("WriteQR error %v of kind %v, want %v", err, kind, hearth.Invalid)
			}
			if buf.Len() != 0 {
				t.Errorf("WriteQR wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

// FuzzWriteQR checks that WriteQR never panics and that whatever it draws without an error decodes to
// exactly the bytes it was given. The check reads byte segments as ISO-8859-1, so it covers every content,
// invalid UTF-8 included; it decodes only sizes up to 1024 px, as larger ones only repeat pixels and would
// slow the fuzzer a hundredfold.
func FuzzWriteQR(f *testing.F) {
	f.Add(testTouchURL, 512, 0, byte('M'))
	f.Add(testLongTouchURL, 64, -1, byte('h'))
	f.Add("HELLO 123", 100, 16, byte('q'))
	f.Add("0123456789", 64, 1, byte('L'))
	f.Add("héllo wörld 你好", 300, 2, byte(0))
	f.Add("\xff\xfe\x00bytes", 200, 4, byte('Q'))
	f.Add(strings.Repeat("a", 2900), 177, -1, byte('L')) // version 40 at one pixel a module
	f.Fuzz(func(t *testing.T, content string, size, margin int, level byte) {
		o := QROptions{Size: size, Margin: margin, Level: string([]byte{level})}
		if level == 0 {
			o.Level = ""
		}
		var buf bytes.Buffer
		if err := WriteQR(&buf, QRPNG, content, o); err != nil {
			if kind := hearth.KindOf(err); kind != hearth.Invalid {
				t.Fatalf("error of kind %v, want invalid: %v", kind, err)
			}
			return
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatalf("decode PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
			t.Fatalf("image is %dx%d, want %d", b.Dx(), b.Dy(), size)
		}
		if size > 1024 {
			return
		}
		got, err := decodeQRBytes(img)
		if err != nil {
			t.Fatalf("decode QR of %q with %+v: %v", content, o, err)
		}
		if string(got) != content {
			t.Fatalf("decoded %q, want %q", got, content)
		}
	})
}
