package transform

import (
	"context"
	"fmt"
	"testing"
)

// TestFitWidthHeight renders into width × height boxes (either side
// optional, combined with Box) and checks the decoded output: aspect kept,
// inside every bound, never enlarged, bounds taken on the upright image.
func TestFitWidthHeight(t *testing.T) {
	tr := New(DefaultConfig())
	cases := []struct {
		name               string
		w, h, o            int // source size (upright) and EXIF orientation
		box, width, height int
		wantW, wantH       int
	}{
		{name: "width only", w: 300, h: 200, width: 150, wantW: 150, wantH: 100},
		{name: "height only", w: 300, h: 200, height: 50, wantW: 75, wantH: 50},
		{name: "both, width binds", w: 300, h: 200, width: 120, height: 100, wantW: 120, wantH: 80},
		{name: "both, height binds", w: 300, h: 200, width: 200, height: 40, wantW: 60, wantH: 40},
		{name: "never enlarged", w: 300, h: 200, width: 900, height: 900, wantW: 300, wantH: 200},
		{name: "one side larger than the source", w: 300, h: 200, width: 1000, height: 100, wantW: 150, wantH: 100},
		{name: "box binds tighter", w: 300, h: 200, box: 60, width: 200, wantW: 60, wantH: 40},
		{name: "width binds tighter than box", w: 300, h: 200, box: 250, width: 30, wantW: 30, wantH: 20},
		{name: "exact source size", w: 300, h: 200, width: 300, height: 200, wantW: 300, wantH: 200},
		{name: "tiny", w: 300, h: 200, width: 1, wantW: 1, wantH: 1},
		// Orientation 6 stores the frame turned a quarter: the bound is on
		// the upright image, so width 100 limits the stored height.
		{name: "orientation 6 width", w: 300, h: 200, o: 6, width: 100, wantW: 100, wantH: 67},
		{name: "orientation 6 height", w: 300, h: 200, o: 6, height: 100, wantW: 150, wantH: 100},
		{name: "orientation 8 both", w: 200, h: 300, o: 8, width: 100, height: 100, wantW: 67, wantH: 100},
		{name: "orientation 3 width", w: 300, h: 200, o: 3, width: 150, wantW: 150, wantH: 100},
	}
	for _, c := range cases {
		for _, f := range []Format{FormatJPEG, FormatPNG, FormatWebP} {
			t.Run(fmt.Sprintf("%s/%s", c.name, f), func(t *testing.T) {
				o := max(c.o, 1)
				src := orientedSource(t, f, c.w, c.h, o)
				res, err := tr.Render(context.Background(), src, Options{Box: c.box, Width: c.width, Height: c.height, Format: FormatPNG})
				if err != nil {
					t.Fatal(err)
				}
				img := decodedOutput(t, res.Data)
				defer img.Close()
				if img.Width() != c.wantW || img.Height() != c.wantH || res.Width != c.wantW || res.Height != c.wantH {
					t.Fatalf("%dx%d (result says %dx%d), want %dx%d", img.Width(), img.Height(), res.Width, res.Height, c.wantW, c.wantH)
				}
				if min(c.wantW, c.wantH) >= 16 {
					checkUpright(t, img)
				}
			})
		}
	}
}

// TestQualityOverride: Quality replaces the format's setting for the lossy
// encoders (the output shrinks as it falls), and 0 keeps the setting.
func TestQualityOverride(t *testing.T) {
	tr := New(DefaultConfig())
	src := read(t, "rocket.jpg")
	size := func(f Format, q int) int {
		t.Helper()
		res, err := tr.Render(context.Background(), src, Options{Format: f, Quality: q})
		if err != nil {
			t.Fatalf("%s quality %d: %v", f, q, err)
		}
		if p := inspect(t, res.Data); p.format != f {
			t.Fatalf("%s quality %d: output is %s", f, q, p.format)
		}
		return len(res.Data)
	}
	cfg := DefaultConfig()
	for _, c := range []struct {
		f       Format
		setting int
	}{{FormatJPEG, cfg.JPEGQuality}, {FormatWebP, cfg.WebPQuality}, {FormatAVIF, cfg.AVIFQuality}} {
		low, high, dflt, same := size(c.f, 10), size(c.f, 95), size(c.f, 0), size(c.f, c.setting)
		if low >= high {
			t.Errorf("%s: quality 10 gives %d bytes, quality 95 %d: want fewer", c.f, low, high)
		}
		if dflt != same {
			t.Errorf("%s: quality 0 gives %d bytes, the setting %d gives %d: want the same", c.f, dflt, c.setting, same)
		}
	}
	// PNG is lossless: a quality changes nothing.
	if a, b := size(FormatPNG, 10), size(FormatPNG, 0); a != b {
		t.Errorf("png: quality 10 gives %d bytes, 0 gives %d", a, b)
	}
}
