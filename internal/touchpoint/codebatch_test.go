package touchpoint

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"io"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
)

// testCodes returns n codes with serials from first and touch links with 26-character tokens, as a
// batch of business cards would have.
func testCodes(n int, first int64) []Code {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz"
	codes := make([]Code, n)
	for i := range codes {
		token := make([]byte, 26)
		x := uint64(i)*0x9E3779B97F4A7C15 + 1
		for j := range token {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			token[j] = alphabet[x%uint64(len(alphabet))]
		}
		codes[i] = Code{Serial: first + int64(i), Token: string(token), URL: "https://hearth.example/t/" + string(token)}
	}
	return codes
}

func openZip(t *testing.T, data []byte) map[string]*zip.File {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("open ZIP: %v", err)
	}
	files := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		if files[f.Name] != nil {
			t.Fatalf("ZIP holds %s twice", f.Name)
		}
		files[f.Name] = f
	}
	return files
}

func readZipFile(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatalf("open %s: %v", f.Name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", f.Name, err)
	}
	return data
}

func TestWriteCodeBatch(t *testing.T) {
	for _, tc := range []struct {
		format QRFormat
		method uint16
	}{
		{QRPNG, zip.Store},
		{QRSVG, zip.Deflate},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			codes := testCodes(200, 1) // serials 1 to 200: three digits
			var buf bytes.Buffer
			var calls []int
			err := WriteCodeBatch(context.Background(), &buf, "Spring cards / Shop 7", codes, tc.format,
				QROptions{Size: 256, Margin: 2}, func(done int) { calls = append(calls, done) })
			if err != nil {
				t.Fatal(err)
			}
			files := openZip(t, buf.Bytes())
			if len(files) != len(codes)+1 {
				t.Fatalf("ZIP holds %d files, want %d images and the manifest", len(files), len(codes))
			}

			manifest, ok := files["manifest.csv"]
			if !ok {
				t.Fatal("no manifest.csv")
			}
			rows, err := csv.NewReader(bytes.NewReader(readZipFile(t, manifest))).ReadAll()
			if err != nil {
				t.Fatalf("manifest: %v", err)
			}
			want := [][]string{{"serial", "token", "url", "file"}}
			for _, c := range codes {
				want = append(want, []string{strconv.FormatInt(c.Serial, 10), c.Token, c.URL,
					fmt.Sprintf("Spring-cards-Shop-7-%03d.%s", c.Serial, tc.format)})
			}
			if diff := cmp.Diff(want, rows); diff != "" {
				t.Fatalf("manifest (-want +got):\n%s", diff)
			}

			for i, row := range rows[1:] {
				f, ok := files[row[3]]
				if !ok {
					t.Fatalf("manifest names %s, which the ZIP does not hold", row[3])
				}
				if f.Method != tc.method {
					t.Errorf("%s stored with method %d, want %d", f.Name, f.Method, tc.method)
				}
				if i%37 != 0 && i != len(codes)-1 {
					continue // decode a sample: first, last and every 37th
				}
				data := readZipFile(t, f)
				var got string
				if tc.format == QRPNG {
					img, err := png.Decode(bytes.NewReader(data))
					if err != nil {
						t.Fatalf("%s: %v", f.Name, err)
					}
					got = decodeQR(t, img)
				} else {
					got = decodeQR(t, rasteriseSVG(t, data))
				}
				if got != codes[i].URL {
					t.Errorf("%s decodes to %q, want %q", f.Name, got, codes[i].URL)
				}
			}

			if len(calls) == 0 || calls[len(calls)-1] != len(codes) {
				t.Fatalf("progress calls %v do not end at %d", calls, len(codes))
			}
			for i := 1; i < len(calls); i++ {
				if calls[i] <= calls[i-1] {
					t.Fatalf("progress went from %d to %d", calls[i-1], calls[i])
				}
			}
			if len(calls) < 50 || len(calls) > 201 {
				t.Errorf("progress called %d times for %d codes, want about every 1%%", len(calls), len(codes))
			}
		})
	}
}

func TestWriteCodeBatchOrderAndPadding(t *testing.T) {
	// Serials need not start at 1 or be in order; they are padded to the widest, here 10000.
	codes := []Code{
		{Serial: 10000, Token: "a", URL: "https://hearth.example/t/a"},
		{Serial: 7, Token: "b", URL: "https://hearth.example/t/b"},
		{Serial: 0, Token: "c", URL: "https://hearth.example/t/c"},
	}
	var buf bytes.Buffer
	if err := WriteCodeBatch(context.Background(), &buf, "", codes, QRPNG, QROptions{Size: 128}, nil); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	want := []string{"manifest.csv", "codes-10000.png", "codes-00007.png", "codes-00000.png"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("ZIP entries (-want +got):\n%s", diff)
	}
}

func TestWriteCodeBatchEmpty(t *testing.T) {
	var buf bytes.Buffer
	var calls []int
	if err := WriteCodeBatch(context.Background(), &buf, "none", nil, QRSVG, QROptions{}, func(done int) { calls = append(calls, done) }); err != nil {
		t.Fatal(err)
	}
	if files := openZip(t, buf.Bytes()); len(files) != 1 {
		t.Errorf("empty batch holds %d files, want the manifest alone", len(files))
	}
	if diff := cmp.Diff([]int{0}, calls); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

func TestWriteCodeBatchInvalid(t *testing.T) {
	good := testCodes(3, 1)
	for _, tc := range []struct {
		name   string
		codes  []Code
		format QRFormat
		o      QROptions
	}{
		{"bad options", good, QRPNG, QROptions{Size: 10}},
		{"bad format", good, "jpeg", QROptions{}},
		{"negative serial", append(testCodes(2, 1), Code{Serial: -1, URL: "https://hearth.example/t/x"}), QRPNG, QROptions{}},
		{"serial twice", append(testCodes(2, 1), Code{Serial: 2, URL: "https://hearth.example/t/x"}), QRPNG, QROptions{}},
		{"empty link", append(testCodes(2, 1), Code{Serial: 3}), QRSVG, QROptions{}},
		{"link too long for the size", append(testCodes(2, 1), Code{Serial: 3, URL: string(bytes.Repeat([]byte("x"), 500))}), QRPNG, QROptions{Size: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteCodeBatch(context.Background(), &buf, "cards", tc.codes, tc.format, tc.o, nil)
			if kind := hearth.KindOf(err); kind != hearth.Invalid {
				t.Errorf("error %v of kind %v, want %v", err, kind, hearth.Invalid)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before finding the batch invalid", buf.Len())
			}
		})
	}
}

func TestWriteCodeBatchCancel(t *testing.T) {
	t.Run("before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := WriteCodeBatch(ctx, io.Discard, "cards", testCodes(100, 1), QRPNG, QROptions{}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
	t.Run("midway", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		codes := testCodes(5000, 1)
		last := 0
		err := WriteCodeBatch(ctx, io.Discard, "cards", codes, QRPNG, QROptions{}, func(done int) {
			last = done
			if done >= 500 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		// Cancelling stops the batch within the images already drawn ahead, not at the end.
		if last > 1000 {
			t.Errorf("progress reached %d of %d after cancelling at 500", last, len(codes))
		}
	})
}

func TestSanitizeBatchName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Spring cards", "Spring-cards"},
		{"../../etc/passwd", "etc-passwd"},
		{`C:\Users\x`, "C-Users-x"},
		{"  .hidden  ", "hidden"},
		{"春季海报 2025", "春季海报-2025"},
		{"a\x00b\nc", "a-b-c"},
		{"name_with_underscores", "name_with_underscores"},
		{"", "codes"},
		{"///", "codes"},
		{string(bytes.Repeat([]byte("x"), 100)), string(bytes.Repeat([]byte("x"), 64))},
		{string(bytes.Repeat([]byte("x"), 63)) + " yz", string(bytes.Repeat([]byte("x"), 63))},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := sanitizeBatchName(tc.in); got != tc.want {
				t.Errorf("sanitizeBatchName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// BenchmarkCodeBatch10k draws a batch of 10,000 business cards at the default 512 px, the size a batch is
// printed from (12 px a module for a touch link; see DefaultQRSize), as PNG into io.Discard.
func BenchmarkCodeBatch10k(b *testing.B) {
	codes := testCodes(10_000, 1)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteCodeBatch(context.Background(), io.Discard, "cards", codes, QRPNG, QROptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(codes))/b.Elapsed().Seconds(), "codes/s")
}
