package transform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"testing"
	"time"
)

// manySources are one still of each kind RenderMany decodes itself; the
// WebP is made from the PNG so no fixture has to be added.
func manySources(t *testing.T) map[string][]byte {
	t.Helper()
	webp, err := New(DefaultConfig()).Render(context.Background(), read(t, "coffee.png"), Options{Format: FormatWebP})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"jpeg":             read(t, "rocket.jpg"),
		"progressive jpeg": read(t, "coffee-progressive.jpg"),
		"cmyk jpeg":        read(t, "rocket-cmyk.jpg"),
		"rotated jpeg":     read(t, "rocket-exif-orientation-6.jpg"),
		"png":              read(t, "coffee.png"),
		"alpha png":        read(t, "astronaut.png"),
		"webp":             webp.Data,
	}
}

// manyOptions mixes boxes that shrink on load differently (and one larger
// than every fixture, and 0 for none), every output format and each
// algorithm.
func manyOptions() []Options {
	var opts []Options
	for _, box := range []int{0, 40, 150, 333, 5000} {
		for _, f := range []Format{FormatUnknown, FormatJPEG, FormatPNG, FormatWebP, FormatAVIF, FormatGIF} {
			opts = append(opts, Options{Box: box, Format: f})
		}
	}
	for _, a := range []Algorithm{AlgorithmLanczos3, AlgorithmThumbnail} {
		opts = append(opts, Options{Box: 100, Format: FormatWebP, Algorithm: a}, Options{Box: 300, Format: FormatJPEG, Algorithm: a})
	}
	return opts
}

func TestRenderManyMatchesRender(t *testing.T) {
	tr := New(DefaultConfig())
	opts := manyOptions()
	for name, src := range manySources(t) {
		t.Run(name, func(t *testing.T) {
			results, errs := tr.RenderMany(context.Background(), src, opts)
			if len(results) != len(opts) || len(errs) != len(opts) {
				t.Fatalf("%d results and %d errors for %d options", len(results), len(errs), len(opts))
			}
			for i, o := range opts {
				want, err := tr.Render(context.Background(), src, o)
				if err != nil {
					t.Fatalf("Render %+v: %v", o, err)
				}
				if errs[i] != nil {
					t.Errorf("%+v: %v", o, errs[i])
					continue
				}
				got := results[i]
				if got.Format != want.Format || got.Width != want.Width || got.Height != want.Height || got.Frames != want.Frames {
					t.Errorf("%+v: %s %d×%d×%d, Render gives %s %d×%d×%d", o,
						got.Format, got.Width, got.Height, got.Frames, want.Format, want.Width, want.Height, want.Frames)
				}
				g, w := inspect(t, got.Data), inspect(t, want.Data)
				if g != w {
					t.Errorf("%+v: output %+v, Render's %+v", o, g, w)
				}
				// One cache key, one set of bytes: warm and live agree.
				if !bytes.Equal(got.Data, want.Data) {
					t.Errorf("%+v: %d bytes differ from Render's %d", o, len(got.Data), len(want.Data))
				}
			}
		})
	}
}

// TestRenderManyPixels compares lossless outputs with Render's: each
// option is derived from a decode at its own load, so every pixel is the
// same, also where the options' loads differ.
func TestRenderManyPixels(t *testing.T) {
	tr := New(DefaultConfig())
	for _, c := range []struct {
		src       string
		opts      []Options
		same      bool    // every option loads as Render would
		meanBelow float64 // mean absolute difference per sample, 0-255
	}{
		{"coffee.png", []Options{{Box: 1200, Format: FormatPNG}, {Box: 100, Format: FormatPNG}}, true, 0},
		{"rocket.jpg", []Options{{Box: 90, Format: FormatPNG}}, true, 0},
		// Both shrink 4× on load alone.
		{"rocket.jpg", []Options{{Box: 90, Format: FormatPNG}, {Box: 100, Format: FormatPNG}}, true, 0},
		// lanczos3 keeps a 2× margin: 2× on load where auto takes 4×, so two decodes.
		{"rocket.jpg", []Options{{Box: 90, Format: FormatPNG}, {Box: 100, Format: FormatPNG, Algorithm: AlgorithmLanczos3}}, true, 0},
		// rocket is 640 wide: 90 shrinks 4× on load, 300 2×, 0 not at all.
		{"rocket.jpg", []Options{{Box: 300, Format: FormatPNG}, {Box: 90, Format: FormatPNG}}, true, 0},
		{"rocket.jpg", []Options{{Format: FormatPNG}, {Box: 90, Format: FormatPNG}, {Box: 40, Format: FormatPNG, Algorithm: AlgorithmThumbnail}}, true, 0},
		{"rocket-exif-orientation-6.jpg", []Options{{Format: FormatPNG}, {Box: 90, Format: FormatPNG}, {Box: 300, Format: FormatPNG}}, true, 0},
		{"hubble_deep_field.jpg", []Options{{Box: 2200, Format: FormatPNG}, {Box: 1200, Format: FormatPNG}, {Box: 720, Format: FormatPNG}, {Box: 360, Format: FormatPNG}}, true, 0},
	} {
		t.Run(fmt.Sprint(c.src, c.opts), func(t *testing.T) {
			src := read(t, c.src)
			results, errs := tr.RenderMany(context.Background(), src, c.opts)
			for i, o := range c.opts {
				if errs[i] != nil {
					t.Fatalf("%+v: %v", o, errs[i])
				}
				want, err := tr.Render(context.Background(), src, o)
				if err != nil {
					t.Fatal(err)
				}
				maxDiff, mean := pixelDiff(t, results[i].Data, want.Data)
				t.Logf("%+v: %d×%d, max difference %d, mean %.3f", o, want.Width, want.Height, maxDiff, mean)
				if c.same && maxDiff != 0 {
					t.Errorf("%+v: differs from Render (max %d) though it loads the same", o, maxDiff)
				}
				if !c.same && mean >= c.meanBelow {
					t.Errorf("%+v: mean difference %.3f, want under %g", o, mean, c.meanBelow)
				}
			}
		})
	}
}

// pixelDiff is the largest and the mean absolute difference between two
// PNGs of the same size, per 8-bit sample.
func pixelDiff(t *testing.T, a, b []byte) (int, float64) {
	t.Helper()
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if ia.Bounds() != ib.Bounds() {
		t.Fatalf("sizes %v and %v", ia.Bounds(), ib.Bounds())
	}
	maxDiff, sum, n := 0, 0, 0
	r := ia.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			for i, v := range samples(ia, x, y) {
				d := abs(v - samples(ib, x, y)[i])
				maxDiff = max(maxDiff, d)
				sum += d
				n++
			}
		}
	}
	return maxDiff, float64(sum) / float64(n)
}

func samples(im image.Image, x, y int) [4]int {
	r, g, b, a := im.At(x, y).RGBA()
	return [4]int{int(r >> 8), int(g >> 8), int(b >> 8), int(a >> 8)}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestRenderManyErrors(t *testing.T) {
	rocket := read(t, "rocket.jpg")
	png := read(t, "astronaut.png")
	opts := []Options{{Box: 100, Format: FormatWebP}, {Box: 300, Format: FormatJPEG}, {Format: FormatPNG}}
	for _, c := range []struct {
		name string
		src  []byte
		max  int64
		kind ErrorKind
	}{
		{"empty", nil, 0, KindUnsupported},
		{"pdf", []byte("%PDF-1.7\n%%EOF"), 0, KindUnsupported},
		{"truncated jpeg", rocket[:len(rocket)/2], 0, KindInvalidImage},
		{"jpeg header only", rocket[:600], 0, KindInvalidImage},
		{"truncated png", png[:len(png)/2], 0, KindInvalidImage},
		{"garbage after png magic", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 100)...), 0, KindInvalidImage},
		{"png claiming 60000x60000", pngHeader(60000, 60000), 0, KindTooLarge},
		{"over the pixel limit", rocket, 640*427 - 1, KindTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if c.max > 0 {
				cfg.MaxSourcePixels = c.max
			}
			tr := New(cfg)
			results, errs := tr.RenderMany(context.Background(), c.src, opts)
			for i, o := range opts {
				if results[i].Data != nil {
					t.Errorf("%+v: a result beside the error", o)
				}
				// As in TestRenderErrors: libvips may refuse a claimed
				// size as corrupt before we see it as too large.
				lenient := c.kind == KindTooLarge && KindOf(errs[i]) == KindInvalidImage
				if errs[i] == nil || KindOf(errs[i]) != c.kind && !lenient {
					t.Errorf("%+v: %v, want kind %s", o, errs[i], c.kind)
				}
				if _, err := tr.Render(context.Background(), c.src, o); KindOf(err) != KindOf(errs[i]) {
					t.Errorf("%+v: Render says %v, RenderMany %v", o, err, errs[i])
				}
			}
		})
	}
}

// A step that fails on a valid source is ours, as in Render (no encoder
// for TIFF), and does not spoil the options beside it.
func TestRenderManyInternalFailure(t *testing.T) {
	src := read(t, "rocket.jpg")
	tr := New(DefaultConfig())
	results, errs := tr.RenderMany(context.Background(), src, []Options{{Box: 100, Format: FormatTIFF}, {Box: 100, Format: FormatJPEG}})
	if KindOf(errs[0]) != KindInternal || errs[0] == nil {
		t.Errorf("tiff: %v, want internal", errs[0])
	}
	if errs[1] != nil || results[1].Format != FormatJPEG || results[1].Width != 100 {
		t.Errorf("jpeg beside a failing tiff: %+v, %v", results[1], errs[1])
	}
}

func TestRenderManyNoOptions(t *testing.T) {
	tr := New(DefaultConfig())
	for _, src := range [][]byte{read(t, "rocket.jpg"), nil} {
		results, errs := tr.RenderMany(context.Background(), src, nil)
		if len(results) != 0 || len(errs) != 0 {
			t.Errorf("%d results, %d errors for no options", len(results), len(errs))
		}
	}
}

func TestRenderManyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, errs := New(DefaultConfig()).RenderMany(ctx, read(t, "rocket.jpg"), []Options{{Box: 100}, {Box: 200}})
	for i, err := range errs {
		if KindOf(err) != KindCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("option %d: %v, want canceled", i, err)
		}
	}
}

// Animations go through Render one option at a time.
func TestRenderManyAnimation(t *testing.T) {
	tr := New(DefaultConfig())
	for _, name := range []string{"astronaut-animated.gif", "astronaut-animated.webp"} {
		src := read(t, name)
		opts := []Options{{Box: 100, Format: FormatWebP}, {Box: 50, Format: FormatGIF}, {Box: 80, Format: FormatJPEG}}
		results, errs := tr.RenderMany(context.Background(), src, opts)
		for i, o := range opts {
			want, err := tr.Render(context.Background(), src, o)
			if err != nil || errs[i] != nil {
				t.Fatalf("%s %+v: Render %v, RenderMany %v", name, o, err, errs[i])
			}
			g := results[i]
			if g.Format != want.Format || g.Width != want.Width || g.Height != want.Height || g.Frames != want.Frames {
				t.Errorf("%s %+v: %+v, Render %+v", name, o, g, want)
			}
		}
	}
}

// Each result carries its share of the call: its own derive, measured,
// plus an equal part of the decode and header it shared. The shares are
// parts of the call, so they add up to no more than its time; a failed
// option carries none (it stays the zero Result).
func TestRenderManyElapsed(t *testing.T) {
	tr := New(DefaultConfig())
	still := []Options{{Box: 100, Format: FormatWebP}, {Box: 120, Format: FormatJPEG}, {Box: 100, Format: FormatTIFF}, {Box: 300, Format: FormatAVIF}}
	anim := []Options{{Box: 100, Format: FormatWebP}, {Box: 50, Format: FormatGIF}, {Box: 80, Format: FormatTIFF}}
	for _, c := range []struct {
		name string
		src  string
		opts []Options
	}{
		{"still, one shared decode", "rocket.jpg", still},
		{"animation, one Render each", "astronaut-animated.gif", anim},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			results, errs := tr.RenderMany(context.Background(), read(t, c.src), c.opts)
			call := time.Since(start)
			var sum time.Duration
			for i, o := range c.opts {
				sum += results[i].Elapsed
				switch {
				case o.Format == FormatTIFF && (errs[i] == nil || results[i].Elapsed != 0):
					t.Errorf("%+v: %v, elapsed %v; want a failure with no time", o, errs[i], results[i].Elapsed)
				case o.Format != FormatTIFF && (errs[i] != nil || results[i].Elapsed <= 0):
					t.Errorf("%+v: %v, elapsed %v; want a result with its time", o, errs[i], results[i].Elapsed)
				}
			}
			if sum > call {
				t.Errorf("shares add up to %v, more than the call's %v", sum, call)
			}
		})
	}
}
