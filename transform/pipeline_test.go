package transform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

func TestMain(m *testing.M) {
	if err := Startup(slog.New(slog.DiscardHandler)); err != nil {
		panic(err)
	}
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// load calls f's loader, as only the decode layer does in the package:
// tests read sources and outputs with it.
func load(src []byte, f Format, l decode.Load) (*vips.Image, error) {
	if spec(f).load == nil {
		return nil, errors.New("no loader")
	}
	return spec(f).load(src, l)
}

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../data/images/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// probe decodes an output with libvips' header reader, loaded by name.
type probe struct {
	format         Format
	w, h, bands    int
	frames         int
	interpretation vips.Interpretation
	bandFormat     vips.BandFormat
	orientation    int
	exif           bool
}

func inspect(t testing.TB, b []byte) probe {
	t.Helper()
	f := Sniff(b)
	im, err := load(b, f, decode.Load{Pages: -1})
	if err != nil {
		t.Fatalf("output does not load as %s: %v", f, err)
	}
	defer im.Close()
	_, exifErr := im.GetInt("exif-ifd0-Orientation")
	fields := im.GetFields()
	hasExif := false
	for _, f := range fields {
		if f == "exif-data" || f == "xmp-data" || f == "iptc-data" {
			hasExif = true
		}
	}
	_ = exifErr
	return probe{format: f, w: im.Width(), h: vipsx.PageHeight(im), bands: im.Bands(), frames: vipsx.Pages(im),
		interpretation: im.Interpretation(), bandFormat: im.BandFormat(), orientation: im.Orientation(), exif: hasExif}
}

func TestRender(t *testing.T) {
	tr := New(DefaultConfig())
	cases := []struct {
		src    string
		opts   Options
		format Format
		w, h   int
		bands  int
		frames int
	}{
		{"rocket.jpg", Options{Box: 200}, FormatJPEG, 200, 133, 3, 1},
		{"rocket.jpg", Options{Box: 200, Format: FormatWebP}, FormatWebP, 200, 133, 3, 1},
		{"rocket.jpg", Options{Box: 200, Format: FormatAVIF}, FormatAVIF, 200, 133, 3, 1},
		{"rocket.jpg", Options{Box: 200, Format: FormatPNG}, FormatPNG, 200, 133, 3, 1},
		{"rocket.jpg", Options{Box: 200, Format: FormatGIF}, FormatGIF, 200, 133, 0, 1},
		{"rocket.jpg", Options{Box: 5000}, FormatJPEG, 640, 427, 3, 1},
		{"rocket.jpg", Options{}, FormatJPEG, 640, 427, 3, 1},
		{"rocket.jpg", Options{Box: 64, Algorithm: AlgorithmThumbnail}, FormatJPEG, 64, 43, 3, 1},
		{"rocket.jpg", Options{Box: 64, Algorithm: AlgorithmLanczos3}, FormatJPEG, 64, 43, 3, 1},
		{"rocket-exif-orientation-6.jpg", Options{Box: 200}, FormatJPEG, 133, 200, 3, 1},
		{"rocket-cmyk.jpg", Options{Box: 200}, FormatJPEG, 200, 133, 3, 1},
		{"coffee-progressive.jpg", Options{Box: 300, Format: FormatWebP}, FormatWebP, 300, 200, 3, 1},
		{"variants/astronaut-16bit.png", Options{Box: 100}, FormatPNG, 100, 100, 3, 1},
		{"variants/astronaut-alpha.png", Options{Box: 100}, FormatPNG, 100, 100, 4, 1},
		{"variants/astronaut-alpha.png", Options{Box: 100, Format: FormatJPEG}, FormatJPEG, 100, 100, 3, 1},
		{"variants/astronaut-alpha.png", Options{Box: 100, Format: FormatWebP}, FormatWebP, 100, 100, 4, 1},
		{"variants/astronaut-alpha.png", Options{Box: 100, Format: FormatAVIF}, FormatAVIF, 100, 100, 4, 1},
		{"astronaut-animated.gif", Options{Box: 100}, FormatGIF, 100, 80, 0, 6},
		{"astronaut-animated.gif", Options{Box: 100, Format: FormatWebP}, FormatWebP, 100, 80, 0, 6},
		{"astronaut-animated.webp", Options{Box: 50}, FormatWebP, 50, 40, 0, 6},
		{"astronaut-animated.webp", Options{Box: 50, Format: FormatGIF}, FormatGIF, 50, 40, 0, 6},
		{"astronaut-animated.gif", Options{Box: 100, Format: FormatJPEG}, FormatJPEG, 100, 80, 3, 1},
		{"astronaut-animated.webp", Options{Box: 100, Format: FormatPNG}, FormatPNG, 100, 80, 0, 1},
		{"coffee.avif", Options{Box: 300}, FormatAVIF, 300, 200, 3, 1},
		{"variants/coffee.heic", Options{Box: 300}, FormatJPEG, 300, 200, 3, 1},
		{"variants/coffee.tif", Options{Box: 300}, FormatJPEG, 300, 200, 3, 1},
		{"variants/coffee.jxl", Options{Box: 300}, FormatJPEG, 300, 200, 3, 1},
		{"variants/badge.svg", Options{Box: 150}, FormatPNG, 150, 75, 4, 1},
		{"variants/badge.svg", Options{Box: 600}, FormatPNG, 300, 150, 4, 1},
		{"hubble_deep_field.jpg", Options{Box: 1, Format: FormatPNG}, FormatPNG, 1, 1, 3, 1},
	}
	for _, c := range cases {
		t.Run(c.src+"/"+c.opts.Format.String()+"/"+c.opts.Algorithm.String(), func(t *testing.T) {
			res, err := tr.Render(context.Background(), read(t, c.src), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			p := inspect(t, res.Data)
			if res.Format != c.format || p.format != c.format {
				t.Errorf("format %s (bytes say %s), want %s", res.Format, p.format, c.format)
			}
			if p.w != c.w || p.h != c.h || res.Width != c.w || res.Height != c.h {
				t.Errorf("size %dx%d (result says %dx%d), want %dx%d", p.w, p.h, res.Width, res.Height, c.w, c.h)
			}
			if c.bands != 0 && p.bands != c.bands {
				t.Errorf("%d bands, want %d", p.bands, c.bands)
			}
			if p.frames != c.frames || res.Frames != c.frames {
				t.Errorf("%d frames (result says %d), want %d", p.frames, res.Frames, c.frames)
			}
			if p.interpretation != vips.InterpretationSrgb || p.bandFormat != vips.BandFormatUchar {
				t.Errorf("not 8-bit sRGB: %v %v", p.interpretation, p.bandFormat)
			}
			if p.orientation > 1 || p.exif {
				t.Errorf("metadata kept: orientation %d, exif/xmp/iptc %v", p.orientation, p.exif)
			}
		})
	}
}

func TestRenderStripsICCAndMetadata(t *testing.T) {
	res, err := New(DefaultConfig()).Render(context.Background(), read(t, "astronaut-animated.webp"), Options{Box: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []string{"ICCP", "EXIF", "XMP "} {
		if bytes.Contains(res.Data, []byte(chunk)) {
			t.Errorf("output carries a %s chunk", chunk)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	rocket := read(t, "rocket.jpg")
	png := read(t, "astronaut.png")
	cases := []struct {
		name string
		src  []byte
		max  int64
		kind ErrorKind
	}{
		{"pdf", []byte("%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF"), 0, KindUnsupported},
		{"csv", []byte("1,2,3\n4,5,6\n"), 0, KindUnsupported},
		{"matrix text", []byte("2 2\n1 2\n3 4\n"), 0, KindUnsupported},
		{"ppm", []byte("P6\n1 1\n255\n\x00\x00\x00"), 0, KindUnsupported},
		{"html", []byte("<!doctype html><svg></svg>"), 0, KindUnsupported},
		{"bmp", []byte("BM\x3e\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"), 0, KindUnsupported},
		{"empty", nil, 0, KindUnsupported},
		{"truncated jpeg", rocket[:len(rocket)/2], 0, KindInvalidImage},
		{"jpeg header only", rocket[:600], 0, KindInvalidImage},
		{"truncated png", png[:len(png)/2], 0, KindInvalidImage},
		{"garbage after png magic", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 100)...), 0, KindInvalidImage},
		{"png claiming 10^12 pixels", pngHeader(1000000, 1000000), 0, KindTooLarge},
		{"png claiming 60000x60000", pngHeader(60000, 60000), 0, KindTooLarge},
		{"jpeg claiming 65000x65000", jpegHeader(65000, 65000), 0, KindTooLarge},
		{"gif claiming 4097 frames of 1000x1000", gifFrames(1000, 1000, 4097), 0, KindTooLarge},
		{"over the pixel limit", rocket, 640*427 - 1, KindTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if c.max > 0 {
				cfg.MaxSourcePixels = c.max
			}
			r := renderGuarded(t, New(cfg), c.src, Options{Box: 100, Format: FormatWebP})
			err := r.err
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if te.Kind != c.kind && !(c.kind == KindTooLarge && te.Kind == KindInvalidImage) {
				t.Errorf("kind %d, want %d (%v)", te.Kind, c.kind, err)
			}
			if te.Kind == KindTooLarge && te.Limit != cfg.MaxSourcePixels {
				t.Errorf("limit %d, want the configured %d", te.Limit, cfg.MaxSourcePixels)
			}
			// Refused from the header: a few milliseconds of CPU. Decoding
			// what the bombs claim (4·10^9 GIF pixels, 10^12 PNG pixels)
			// would cost minutes; CPU time does not grow on a shared machine.
			if r.cpu > time.Second {
				t.Errorf("used %v of CPU: the source was decoded, not refused", r.cpu)
			}
		})
	}
}

// TestRenderThinImages: a side shorter than the load-time shrink. FuzzRender
// found that a valid 100×1 JPEG at size=10 aborts the process (libvips 8.14
// jpegload: "bad dimensions" assertion after shrink 8), and a 100×1 WebP was
// refused as corrupt (webpload: "bad image dimensions").
func TestRenderThinImages(t *testing.T) {
	tr := New(DefaultConfig())
	encode := func(w, h int, f Format) []byte {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = 200
		}
		var b bytes.Buffer
		switch f {
		case FormatJPEG:
			if err := jpeg.Encode(&b, img, nil); err != nil {
				t.Fatal(err)
			}
			return b.Bytes()
		case FormatSVG:
			return []byte(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d"><rect width="%d" height="%d"/></svg>`, w, h, w, h))
		}
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if f == FormatPNG {
			return b.Bytes()
		}
		res, err := tr.Render(context.Background(), b.Bytes(), Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		return res.Data
	}
	cases := []struct {
		w, h, box, wantW, wantH int
	}{
		{100, 1, 10, 10, 1},
		{1, 100, 10, 1, 10},
		{2000, 7, 16, 16, 1},
		{7, 2000, 16, 1, 16},
		{3, 3, 1, 1, 1},
	}
	for _, f := range []Format{FormatJPEG, FormatWebP, FormatSVG, FormatPNG, FormatGIF} {
		for _, c := range cases {
			src := encode(c.w, c.h, f)
			for _, a := range []Algorithm{AlgorithmAuto, AlgorithmLanczos3, AlgorithmThumbnail} {
				t.Run(fmt.Sprintf("%s/%dx%d/box%d/%s", f, c.w, c.h, c.box, a), func(t *testing.T) {
					res, err := tr.Render(context.Background(), src, Options{Box: c.box, Algorithm: a, Format: FormatPNG})
					if err != nil {
						t.Fatal(err)
					}
					p := inspect(t, res.Data)
					if p.w != c.wantW || p.h != c.wantH || res.Width != c.wantW || res.Height != c.wantH {
						t.Errorf("%dx%d (result says %dx%d), want %dx%d", p.w, p.h, res.Width, res.Height, c.wantW, c.wantH)
					}
				})
			}
		}
	}
}

// residentBytes is the process's resident set size once freed memory is
// handed back: memory a leak in C (which no Go profile sees) still shows
// in, and free pages earlier tests left resident cannot hide it.
func residentBytes(t *testing.T) int64 {
	t.Helper()
	runtime.GC()
	releaseMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestFailedRendersDoNotLeak: a source that fails while it is being encoded
// (truncated, damaged) must cost nothing once refused; otherwise requesting
// it at many sizes (errors are not cached) grows the server without bound.
// libvips 8.14's webpsave leaks its frame buffer and encoder on such a
// failure, about 0.5 MB a request, found by FuzzRender.
func TestFailedRendersDoNotLeak(t *testing.T) {
	rocket, png := read(t, "rocket.jpg"), read(t, "astronaut.png")
	cases := []struct {
		name string
		src  []byte
		out  Format
	}{
		{"truncated jpeg", rocket[:len(rocket)/2], FormatWebP},
		{"truncated png", png[:len(png)/2], FormatWebP},
		{"truncated jpeg", rocket[:len(rocket)/2], FormatJPEG},
		{"truncated jpeg", rocket[:len(rocket)/2], FormatPNG},
		{"truncated jpeg", rocket[:len(rocket)/2], FormatGIF},
		{"truncated jpeg", rocket[:len(rocket)/2], FormatAVIF},
	}
	tr := New(DefaultConfig())
	const n = 150
	for _, c := range cases {
		t.Run(c.name+"/"+c.out.String(), func(t *testing.T) {
			render := func() {
				if _, err := tr.Render(context.Background(), c.src, Options{Box: 200, Format: c.out}); KindOf(err) != KindInvalidImage {
					t.Fatalf("want an invalid-image error: %v", err)
				}
			}
			// The allocator's arenas and libvips' caches fill first.
			for range 20 {
				render()
			}
			before := residentBytes(t)
			for range n {
				render()
			}
			// The webpsave leak grows it by 60 to 80 MB here; without a
			// leak it moves by under 1 MB.
			grown := residentBytes(t) - before
			t.Logf("resident set grew by %d KB", grown>>10)
			if grown > 10<<20 {
				t.Errorf("%d failed renders grew the resident set by %d MB", n, grown>>20)
			}
		})
	}
}

func TestRenderCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(DefaultConfig()).Render(ctx, read(t, "rocket.jpg"), Options{Box: 10})
	if KindOf(err) != KindCanceled {
		t.Fatalf("%v", err)
	}
}

func TestEncoderSettingsReachTheEncoder(t *testing.T) {
	src := read(t, "hubble_deep_field.jpg")
	size := func(cfg Config, f Format) int {
		res, err := New(cfg).Render(context.Background(), src, Options{Box: 400, Format: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Data)
	}
	lo, hi := DefaultConfig(), DefaultConfig()
	lo.JPEGQuality, hi.JPEGQuality = 0, 100
	lo.WebPQuality, hi.WebPQuality = 0, 100
	lo.AVIFQuality, hi.AVIFQuality = 1, 100
	lo.PNGCompression, hi.PNGCompression = 0, 9
	for _, f := range []Format{FormatJPEG, FormatWebP, FormatAVIF} {
		if a, b := size(lo, f), size(hi, f); a >= b {
			t.Errorf("%s: quality low %d bytes >= high %d bytes", f, a, b)
		}
	}
	if a, b := size(lo, FormatPNG), size(hi, FormatPNG); a <= b {
		t.Errorf("png: compression 0 gave %d bytes <= compression 9 %d bytes", a, b)
	}
}

func TestBlockedLoadersStayBlocked(t *testing.T) {
	// The matrix loader would parse plain text; it must be refused even when
	// called directly.
	if _, err := vips.NewMatrixload("/dev/null", nil); err == nil {
		t.Fatal("matrixload is not blocked")
	}
	if _, err := vips.NewCsvload("/dev/null", nil); err == nil {
		t.Fatal("csvload is not blocked")
	}
	if _, err := New(DefaultConfig()).Render(context.Background(), read(t, "variants/badge.svg"), Options{Box: 10}); err != nil {
		t.Fatalf("svg must stay enabled: %v", err)
	}
}

func TestSniff(t *testing.T) {
	cases := []struct {
		in   string
		want Format
	}{
		{"\xff\xd8\xff\xe0", FormatJPEG},
		{"\x89PNG\r\n\x1a\n", FormatPNG},
		{"RIFF\x00\x00\x00\x00WEBPVP8 ", FormatWebP},
		{"RIFF\x00\x00\x00\x00WAVEfmt ", FormatUnknown},
		{"GIF89a", FormatGIF},
		{"GIF87a", FormatGIF},
		{"II*\x00", FormatTIFF},
		{"MM\x00*", FormatTIFF},
		{"\xff\x0a", FormatJXL},
		{"\x00\x00\x00\x0cJXL \r\n\x87\n", FormatJXL},
		{"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", FormatAVIF},
		{"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", FormatAVIF},
		{"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", FormatHEIF},
		{"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomiso2", FormatUnknown},
		{"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", FormatUnknown},
		{"<svg xmlns='http://www.w3.org/2000/svg'/>", FormatSVG},
		{"\xef\xbb\xbf  <?xml version='1.0'?>\n<!-- c -->\n<!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN' 'x'>\n<svg>", FormatSVG},
		{"<?xml version='1.0'?><!DOCTYPE svg [<!ENTITY a 'b'>]><svg>", FormatSVG},
		{"<!DOCTYPE html><html><svg></svg></html>", FormatUnknown},
		{"<html><body><svg></svg>", FormatUnknown},
		{"<?xml version='1.0'?><html/>", FormatUnknown},
		{"<svgfoo>", FormatUnknown},
		{"%PDF-1.4", FormatUnknown},
		{"P6\n", FormatUnknown},
		{"BM", FormatUnknown},
		{"", FormatUnknown},
		{"\xff\xd8", FormatUnknown},
	}
	for _, c := range cases {
		if got := Sniff([]byte(c.in)); got != c.want {
			t.Errorf("%q: %s, want %s", c.in, got, c.want)
		}
	}
	for _, f := range []string{"rocket.jpg", "astronaut.png", "coffee.avif", "variants/coffee.heic", "variants/coffee.jxl", "variants/coffee.tif", "variants/badge.svg", "astronaut-animated.gif", "astronaut-animated.webp"} {
		if Sniff(read(t, f)) == FormatUnknown {
			t.Errorf("%s not recognised", f)
		}
	}
}

func FuzzSniff(f *testing.F) {
	for _, s := range []string{"\xff\xd8\xff", "\x89PNG\r\n\x1a\n", "<svg>", "<?xml?><!DOCTYPE svg [", "\x00\x00\x00\x10ftypavif", "RIFF1234WEBP"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Sniff(b)
		// A longer prefix never changes a binary signature's verdict.
		if got != FormatUnknown && got != FormatSVG && Sniff(append(append([]byte{}, b...), 0)) != got {
			t.Fatalf("verdict changed by appending a byte")
		}
	})
}

// pngHeader is a PNG signature and an IHDR claiming w×h, nothing more.
func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	b = append(b, byte(w>>24), byte(w>>16), byte(w>>8), byte(w), byte(h>>24), byte(h>>16), byte(h>>8), byte(h), 8, 2, 0, 0, 0)
	crc := crc32.ChecksumIEEE(b[12:])
	return append(b, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
}

// jpegHeader is a baseline JPEG's markers up to SOS claiming w×h, with
// standard-size tables but no scan data.
func jpegHeader(w, h uint16) []byte {
	b := []byte{0xFF, 0xD8}
	// DQT: one table of 64 ones.
	b = append(b, 0xFF, 0xDB, 0x00, 0x43, 0x00)
	b = append(b, bytes.Repeat([]byte{1}, 64)...)
	// SOF0: 8-bit, h×w, one component.
	b = append(b, 0xFF, 0xC0, 0x00, 0x0B, 0x08, byte(h>>8), byte(h), byte(w>>8), byte(w), 0x01, 0x01, 0x11, 0x00)
	// DHT: a minimal DC table and AC table with one code each.
	b = append(b, 0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00)
	b = append(b, 0xFF, 0xC4, 0x00, 0x14, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00)
	// SOS, then the end.
	b = append(b, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0x00, 0xFF, 0xD9)
	return b
}

// gifFrames is a GIF with a w×h screen and n tiny frames that each claim
// the whole screen.
func gifFrames(w, h uint16, n int) []byte {
	b := []byte("GIF89a")
	b = append(b, byte(w), byte(w>>8), byte(h), byte(h>>8), 0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF)
	for range n {
		b = append(b, 0x2C, 0, 0, 0, 0, byte(w), byte(w>>8), byte(h), byte(h>>8), 0)
		b = append(b, 0x02, 0x02, 0x44, 0x01, 0x00) // LZW min code 2, one tiny data block
	}
	return append(b, 0x3B)
}
