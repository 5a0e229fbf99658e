package transform

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"

	"image-proxy/imageformat"
	"image-proxy/transform/internal/vips"
)

var (
	shapeGround = [3]uint8{20, 40, 160}
	shapeMarker = [3]uint8{250, 30, 30}
)

// picture is a w×h RGB picture of shapeGround with a shapeMarker square of
// side m at (mx, my), and, when checker, a black and white checkerboard of
// 24 px cells there instead: a high-contrast subject.
func picture(w, h, mx, my, m int, checker bool) []byte {
	px := make([]byte, 0, w*h*3)
	for y := range h {
		for x := range w {
			c := shapeGround
			if x >= mx && x < mx+m && y >= my && y < my+m {
				c = shapeMarker
				if checker {
					v := uint8(255 * ((x/24 + y/24) % 2))
					c = [3]uint8{v, v, v}
				}
			}
			px = append(px, c[:]...)
		}
	}
	return px
}

// pngOf encodes RGB pixels (frames of height ph stacked, when ph < h, as
// an animated GIF).
func pngOf(t testing.TB, px []byte, w, h, ph int) []byte {
	t.Helper()
	im, err := vips.NewImageFromMemory(px, w, h, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if ph < h {
		if err := im.SetPageHeight(ph); err != nil {
			t.Fatal(err)
		}
		b, err := im.GifsaveBuffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b, err := im.PngsaveBuffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// near reports whether the pixel (x, y) of im is within 60 of c.
func near(t testing.TB, im *vips.Image, x, y int, c [3]uint8) bool {
	t.Helper()
	p, err := im.Getpoint(x, y)
	if err != nil || len(p) < 3 {
		t.Fatalf("pixel (%d,%d): %v %v", x, y, p, err)
	}
	return colourDistance(p, c) < 60
}

func render(t testing.TB, e *Engine, src []byte, o Options) (Result, *vips.Image) {
	t.Helper()
	res, err := e.Render(context.Background(), src, o)
	if err != nil {
		t.Fatalf("%+v: %v", o, err)
	}
	im := decodedOutput(t, res.Data)
	t.Cleanup(im.Close)
	if im.Width() != res.Width || im.Height() != res.Height*res.Frames {
		t.Fatalf("%+v: result says %d×%d, output is %d×%d", o, res.Width, res.Height, im.Width(), im.Height())
	}
	return res, im
}

var compass = []Gravity{imageformat.GravityCenter, imageformat.GravityNorth, imageformat.GravitySouth, imageformat.GravityEast,
	imageformat.GravityWest, imageformat.GravityNorthEast, imageformat.GravityNorthWest, imageformat.GravitySouthEast,
	imageformat.GravitySouthWest}

// TestCoverGravity: a marker placed where a gravity points (a corner, an
// edge's middle, the centre) is in the same place of a cover crop with
// that gravity, and gone with the gravity opposite on the cropped axis.
// A wide source is cropped across, a tall one down, so each gravity is
// proved on the axis where it matters.
func TestCoverGravity(t *testing.T) {
	e := New(DefaultConfig())
	for _, g := range compass {
		ax, ay := g.Anchor()
		for _, s := range []struct {
			name   string
			w, h   int
			anchor float64 // on the cropped axis
		}{{"wide", 400, 200, ax}, {"tall", 200, 400, ay}} {
			t.Run(fmt.Sprintf("%s/%s", g, s.name), func(t *testing.T) {
				const m = 40 // marker side in the source: 20 px out
				src := pngOf(t, picture(s.w, s.h, int(float64(s.w-m)*ax), int(float64(s.h-m)*ay), m, false), s.w, s.h, s.h)
				res, im := render(t, e, src, Options{Fit: FitCover, Width: 100, Height: 100, Gravity: g, Format: FormatPNG})
				if res.Width != 100 || res.Height != 100 {
					t.Fatalf("%d×%d, want 100×100", res.Width, res.Height)
				}
				x, y := int(80*ax)+10, int(80*ay)+10
				if !near(t, im, x, y, shapeMarker) {
					t.Errorf("the marker is not at (%d,%d)", x, y)
				}
				if s.anchor == 0.5 {
					return // the centre: the opposite is itself
				}
				opposite := map[float64]Gravity{0: imageformat.GravityEast, 1: imageformat.GravityWest}[s.anchor]
				if s.name == "tall" {
					opposite = map[float64]Gravity{0: imageformat.GravitySouth, 1: imageformat.GravityNorth}[s.anchor]
				}
				_, im = render(t, e, src, Options{Fit: FitCover, Width: 100, Height: 100, Gravity: opposite, Format: FormatPNG})
				for _, p := range [][2]int{{x, y}, {50, 50}, {10, 10}, {90, 90}, {10, 90}, {90, 10}} {
					if near(t, im, p[0], p[1], shapeMarker) {
						t.Errorf("gravity %s keeps the marker at %v", opposite, p)
					}
				}
			})
		}
	}
}

// TestCoverFocus: a focal point on the marker keeps it, centred as far as
// the edges allow; one elsewhere loses it.
func TestCoverFocus(t *testing.T) {
	e := New(DefaultConfig())
	// 600×200 with the marker centred at (480, 100): 0.8, 0.5.
	src := pngOf(t, picture(600, 200, 460, 80, 40, false), 600, 200, 200)
	_, im := render(t, e, src, Options{Fit: FitCover, Width: 100, Height: 100, Focus: Focus{X: 0.8, Y: 0.5, Set: true}, Format: FormatPNG})
	if !near(t, im, 50, 50, shapeMarker) || near(t, im, 30, 50, shapeMarker) || near(t, im, 70, 50, shapeMarker) {
		t.Error("focus 0.8,0.5 does not centre the marker")
	}
	// At the edge: the crop stops at the picture's right side.
	_, im = render(t, e, src, Options{Fit: FitCover, Width: 100, Height: 100, Focus: Focus{X: 1, Y: 0, Set: true}, Format: FormatPNG})
	if !near(t, im, 40, 50, shapeMarker) || near(t, im, 80, 50, shapeMarker) {
		t.Error("focus 1,0 is not the right-hand crop")
	}
	_, im = render(t, e, src, Options{Fit: FitCover, Width: 100, Height: 100, Focus: Focus{X: 0.2, Y: 0.5, Set: true}, Format: FormatPNG})
	for x := 5; x < 100; x += 10 {
		if near(t, im, x, 50, shapeMarker) {
			t.Errorf("focus 0.2,0.5 keeps the marker at x %d", x)
		}
	}
}

// TestSmartCrop: smart (attention) and entropy keep a high-contrast
// subject placed off-centre, which a centre crop loses.
func TestSmartCrop(t *testing.T) {
	e := New(DefaultConfig())
	src := pngOf(t, picture(900, 300, 660, 90, 120, true), 900, 300, 300) // subject at 0.8 across
	for _, g := range []Gravity{GravitySmart, GravityEntropy, imageformat.GravityCenter} {
		_, im := render(t, e, src, Options{Fit: FitCover, Width: 100, Height: 100, Gravity: g, Format: FormatPNG})
		cells := 0 // samples on the checkerboard's black or white
		for y := 2; y < 100; y += 4 {
			for x := 2; x < 100; x += 4 {
				if near(t, im, x, y, [3]uint8{0, 0, 0}) || near(t, im, x, y, [3]uint8{255, 255, 255}) {
					cells++
				}
			}
		}
		if kept := cells > 20; kept != (g != imageformat.GravityCenter) {
			t.Errorf("gravity %s: %d of 625 samples on the subject", g, cells)
		}
	}
}

// TestFillAndPad: fill stretches to the box; pad places the contained
// picture by gravity on a canvas of the background colour, transparent
// where the output holds alpha and the colour asks for it.
func TestFillAndPad(t *testing.T) {
	e := New(DefaultConfig())
	src := pngOf(t, picture(200, 100, 0, 0, 100, false), 200, 100, 100) // left half marker
	res, im := render(t, e, src, Options{Fit: FitFill, Width: 100, Height: 100, Format: FormatPNG})
	if res.Width != 100 || res.Height != 100 || !near(t, im, 25, 50, shapeMarker) || !near(t, im, 75, 50, shapeGround) ||
		!near(t, im, 45, 5, shapeMarker) || !near(t, im, 55, 95, shapeGround) {
		t.Errorf("fill: %d×%d, not the stretched picture", res.Width, res.Height)
	}
	green := Background{RGBA: [4]uint8{0, 200, 0, 255}, Set: true}
	for _, c := range []struct {
		g          Gravity
		top        int // of the 100×50 picture on the 100×100 canvas
		out        Format
		background Background
	}{
		{imageformat.GravityNorth, 0, FormatPNG, green}, {imageformat.GravitySouth, 50, FormatJPEG, green},
		{imageformat.GravityUnset, 25, FormatWebP, green}, {imageformat.GravityNorthWest, 0, FormatPNG, Background{}},
	} {
		res, im := render(t, e, src, Options{Fit: FitPad, Width: 100, Height: 100, Gravity: c.g, Background: c.background, Format: c.out})
		rgba := c.background.Or(White).RGBA
		bg := [3]uint8(rgba[:3])
		if res.Width != 100 || res.Height != 100 {
			t.Fatalf("pad %s: %d×%d", c.g, res.Width, res.Height)
		}
		for y := 2; y < 100; y += 4 {
			inside := y >= c.top+2 && y < c.top+48
			outside := y < c.top-2 || y >= c.top+52
			switch {
			case inside && (!near(t, im, 20, y, shapeMarker) || !near(t, im, 80, y, shapeGround)):
				t.Errorf("pad %s %s: row %d is not the picture", c.g, c.out, y)
			case outside && (!near(t, im, 20, y, bg) || !near(t, im, 80, y, bg)):
				t.Errorf("pad %s %s: row %d is not the background %v", c.g, c.out, y, bg)
			}
		}
	}
	// Transparent: the canvas's alpha is 0 where the picture is not.
	res, err := e.Render(context.Background(), src, Options{Fit: FitPad, Width: 100, Height: 100,
		Background: Background{Set: true}, Format: FormatPNG})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := vips.NewPngloadBuffer(res.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	top, _ := raw.Getpoint(50, 5)
	mid, _ := raw.Getpoint(50, 50)
	if raw.Bands() != 4 || top[3] != 0 || mid[3] != 255 {
		t.Errorf("transparent pad: %d bands, alpha %v above and %v inside", raw.Bands(), top, mid)
	}
}

// TestBlur: blur keeps the size and changes the pixels, most at an edge.
func TestBlur(t *testing.T) {
	e := New(DefaultConfig())
	src := pngOf(t, picture(200, 100, 0, 0, 100, false), 200, 100, 100)
	_, sharp := render(t, e, src, Options{Width: 100, Format: FormatPNG})
	res, blurred := render(t, e, src, Options{Width: 100, Blur: 5, Format: FormatPNG})
	if res.Width != 100 || res.Height != 50 {
		t.Fatalf("%d×%d", res.Width, res.Height)
	}
	a, _ := sharp.Getpoint(48, 25)
	b, _ := blurred.Getpoint(48, 25)
	if colourDistance(a, [3]uint8{uint8(b[0]), uint8(b[1]), uint8(b[2])}) < 30 {
		t.Errorf("blur 5 leaves the edge at %v (sharp %v)", b, a)
	}
}

// TestNeverEnlarge: cover and fill on a source smaller than the box scale
// the box down by one factor (its aspect ratio kept); pad's canvas is the
// box, the picture in it not enlarged.
func TestNeverEnlarge(t *testing.T) {
	e := New(DefaultConfig())
	src := pngOf(t, picture(300, 100, 0, 0, 10, false), 300, 100, 100)
	for _, c := range []struct {
		fit          Fit
		w, h         int
		wantW, wantH int
	}{
		{FitCover, 400, 200, 200, 100}, {FitFill, 400, 200, 200, 100}, {FitCover, 600, 100, 300, 50},
		{FitCover, 150, 400, 38, 100}, {FitFill, 1000, 1000, 100, 100}, {FitPad, 400, 200, 400, 200},
		{FitCover, 300, 100, 300, 100},
	} {
		res, im := render(t, e, src, Options{Fit: c.fit, Width: c.w, Height: c.h, Format: FormatPNG})
		if res.Width != c.wantW || res.Height != c.wantH {
			t.Errorf("%s %d×%d: %d×%d, want %d×%d", c.fit, c.w, c.h, res.Width, res.Height, c.wantW, c.wantH)
		}
		if c.fit == FitPad && (!near(t, im, 55, 55, shapeMarker) || !near(t, im, 60, 60, shapeGround) || !near(t, im, 5, 5, [3]uint8{255, 255, 255})) {
			t.Error("pad: the picture is not at its own size in the middle of the canvas")
		}
	}
}

// TestCropOrientation: crops are in upright coordinates: for every EXIF
// orientation, a cover crop keeps the part of the upright picture its
// gravity or focal point names (the fixtures of orientation_test.go).
func TestCropOrientation(t *testing.T) {
	e := New(DefaultConfig())
	const w, h = 300, 200 // upright; the marker covers its top-left 50% × 40%
	for o := 1; o <= 8; o++ {
		for _, f := range []Format{FormatJPEG, FormatPNG} {
			src := orientedSource(t, f, w, h, o)
			for _, c := range []struct {
				name string
				opts Options
				left float64 // of the crop in the resized upright picture (150×100)
			}{
				{"west", Options{Gravity: imageformat.GravityWest}, 0},
				{"east", Options{Gravity: imageformat.GravityEast}, 50},
				{"focus", Options{Focus: Focus{X: 0.1, Y: 0.9, Set: true}}, 0},
				{"north", Options{Gravity: imageformat.GravityNorth}, 25},
			} {
				opts := c.opts
				opts.Fit, opts.Width, opts.Height, opts.Format = FitCover, 100, 100, FormatPNG
				_, im := render(t, e, src, opts)
				for y := 3; y < 100; y += 6 {
					for x := 3; x < 100; x += 6 {
						sx, sy := (float64(x)+c.left)*2, float64(y)*2 // upright source coordinates
						if math.Abs(sx-0.5*w) < 6 || math.Abs(sy-0.4*h) < 6 {
							continue // the marker's edge
						}
						want := groundRGB
						if sx < 0.5*w && sy < 0.4*h {
							want = markerRGB
						}
						if p, _ := im.Getpoint(x, y); colourDistance(p, want) > 90 {
							t.Fatalf("orientation %d %s %s: pixel (%d,%d) is %v, want %v", o, f, c.name, x, y, p, want)
						}
					}
				}
			}
		}
	}
}

// animation is a 3-frame 300×100 GIF: the checkerboard subject on the
// right of the first frame, on the left of the others (not quite at the
// same place: the GIF saver merges identical frames).
func animation(t testing.TB) []byte {
	var px []byte
	for _, mx := range []int{200, 0, 20} {
		px = append(px, picture(300, 100, mx, 10, 80, true)...)
	}
	return pngOf(t, px, 300, 300, 100)
}

// TestAnimatedCrop: every frame of an animation is cut at one place;
// smart and entropy measure the first frame only, so the later frames,
// whose subject has moved, are cut where the first frame's subject was.
func TestAnimatedCrop(t *testing.T) {
	e := New(DefaultConfig())
	src := animation(t)
	subject := func(im *vips.Image, frame int) bool {
		n := 0
		for y := 2; y < 100; y += 4 {
			for x := 2; x < 100; x += 4 {
				if near(t, im, x, frame*100+y, [3]uint8{0, 0, 0}) || near(t, im, x, frame*100+y, [3]uint8{255, 255, 255}) {
					n++
				}
			}
		}
		return n > 20
	}
	for _, c := range []struct {
		opts Options
		want [3]bool // the subject in each output frame
	}{
		{Options{Gravity: GravitySmart}, [3]bool{true, false, false}},
		{Options{Gravity: GravityEntropy}, [3]bool{true, false, false}},
		{Options{Gravity: imageformat.GravityWest}, [3]bool{false, true, true}},
		{Options{Focus: Focus{X: 0.8, Y: 0.5, Set: true}}, [3]bool{true, false, false}},
	} {
		for _, out := range []Format{FormatGIF, FormatWebP} {
			o := c.opts
			o.Fit, o.Width, o.Height, o.Format = FitCover, 100, 100, out
			res, err := e.Render(context.Background(), src, o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames != 3 || res.Width != 100 || res.Height != 100 {
				t.Fatalf("%+v: %d frames of %d×%d", o, res.Frames, res.Width, res.Height)
			}
			var im *vips.Image
			if out == FormatGIF {
				im, err = vips.NewGifloadBuffer(res.Data, &vips.GifloadBufferOptions{N: -1})
			} else {
				im, err = vips.NewWebploadBuffer(res.Data, &vips.WebploadBufferOptions{N: -1})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			// The GIF saver merges identical frames (two frames cut where
			// neither has the subject): the frames it kept are checked.
			for f := range im.Height() / 100 {
				if got := subject(im, f); got != c.want[f] {
					t.Errorf("%s %+v: frame %d has the subject: %t, want %t", out, c.opts, f, got, c.want[f])
				}
			}
		}
	}
	// Pad and blur are per frame too: the size and the frame count hold.
	res, err := e.Render(context.Background(), src, Options{Fit: FitPad, Width: 200, Height: 200, Blur: 2, Format: FormatGIF})
	if err != nil || res.Frames != 3 || res.Width != 200 || res.Height != 200 {
		t.Fatalf("pad: %+v %v", res, err)
	}
}

// TestCoverShrinksOnLoad: a cover crop of a 5120×2880 JPEG to 400×400
// loads at a JPEG shrink (the plan's load, what the decoder is asked
// for), and the decode the cache keeps is that small, not the full size.
func TestCoverShrinksOnLoad(t *testing.T) {
	src := texturedJPEG(t, 5120, 2880, 1)
	ce := newCachingEngine(t, 256<<20)
	s, err := ce.open(src, "")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Fit: FitCover, Width: 400, Height: 400, Gravity: GravitySmart, Format: FormatWebP, Source: "big"}
	p := planFor(s, o)
	if p.load.Shrink != 4 {
		t.Errorf("cover 400×400 of 5120×2880 loads at shrink %d, want 4 (the 2880 px side to 720, over 400)", p.load.Shrink)
	}
	res, err := ce.Render(context.Background(), src, o)
	if err != nil || res.Width != 400 || res.Height != 400 {
		t.Fatalf("%+v %v", res, err)
	}
	if got, full := ce.latest.Load(), int64(5120*2880*3); got == 0 || got > full/16 {
		t.Errorf("the kept decode is %d bytes; full size is %d", got, full)
	}
}

// TestCropsShareDecodes: crops go through the decode cache and RenderMany
// like any variant: the same bytes streamed, reused or rendered together,
// one decode for a family of crops and plain sizes of one source.
func TestCropsShareDecodes(t *testing.T) {
	src := texturedJPEG(t, 2400, 1350, 2)
	opts := []Options{
		{Box: 400, Format: FormatWebP},
		{Fit: FitCover, Width: 400, Height: 400, Format: FormatWebP},
		{Fit: FitCover, Width: 1200, Height: 630, Gravity: GravitySmart, Format: FormatJPEG},
		{Fit: FitCover, Width: 300, Height: 400, Focus: Focus{X: 0.2, Y: 0.3, Set: true}, Format: FormatPNG},
		{Fit: FitFill, Width: 200, Height: 200, Format: FormatWebP},
		{Fit: FitPad, Width: 300, Height: 300, Background: Background{RGBA: [4]uint8{0, 0, 0, 0}, Set: true}, Format: FormatPNG},
		{Width: 500, Blur: 3, Format: FormatJPEG},
	}
	plain := New(DefaultConfig())
	want := make([][]byte, len(opts))
	for i, o := range opts {
		res, err := plain.Render(context.Background(), src, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		want[i] = res.Data
	}
	results, errs := plain.RenderMany(context.Background(), src, opts)
	ce := newCachingEngine(t, 256<<20)
	for i, o := range opts {
		if errs[i] != nil || !bytes.Equal(results[i].Data, want[i]) {
			t.Errorf("%+v: RenderMany differs from Render (%v)", o, errs[i])
		}
		o.Source = "one source"
		res, err := ce.Render(context.Background(), src, o)
		if err != nil || !bytes.Equal(res.Data, want[i]) {
			t.Errorf("%+v: the cached decode gives other bytes (%v)", o, err)
		}
	}
	if n := ce.decodeCount(); n != 1 {
		t.Errorf("%d decodes for one family of a progressive JPEG, want 1", n)
	}
}

// TestShapesDoNotLeak: the shape steps make and drop images of their own
// (a copy per frame, the smartcrop measure, the joined frames): rendering
// them many times must not grow the process.
func TestShapesDoNotLeak(t *testing.T) {
	e := New(DefaultConfig())
	anim, still := animation(t), read(t, "rocket.jpg")
	render := func() {
		for _, c := range []struct {
			src  []byte
			opts Options
		}{
			{anim, Options{Fit: FitCover, Width: 80, Height: 80, Gravity: GravitySmart, Blur: 1, Format: FormatGIF}},
			{anim, Options{Fit: FitPad, Width: 120, Height: 120, Format: FormatWebP}},
			{still, Options{Fit: FitCover, Width: 200, Height: 100, Gravity: GravityEntropy, Format: FormatJPEG}},
			{still, Options{Fit: FitPad, Width: 300, Height: 300, Background: Background{Set: true}, Blur: 2, Format: FormatPNG}},
		} {
			if _, err := e.Render(context.Background(), c.src, c.opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 20 {
		render()
	}
	before := residentBytes(t)
	for range 100 {
		render()
	}
	grown := residentBytes(t) - before
	t.Logf("resident set grew by %d KB", grown>>10)
	if grown > 10<<20 {
		t.Errorf("400 shaped renders grew the resident set by %d MB", grown>>20)
	}
}
