package transform

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// fuzzOutputs are the outputs FuzzRender asks for; AVIF is left out because
// its encoder would cost most of every execution and sees no source bytes.
var fuzzOutputs = []Format{FormatUnknown, FormatJPEG, FormatPNG, FormatWebP, FormatGIF}

// fuzzSeeds are small valid images of every source format, as Go encodes
// them, as libvips encodes them and as shipped in data/images (the small
// files only: big seeds make every mutation slow), plus the hostile headers
// of TestRenderErrors.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 12, 7))
	for y := range 7 {
		for x := range 12 {
			img.Set(x, y, color.NRGBA{uint8(20 * x), uint8(30 * y), 200, uint8(255 - 10*x)})
		}
	}
	var seeds [][]byte
	encode := func(enc func(*bytes.Buffer) error) {
		var b bytes.Buffer
		if err := enc(&b); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b.Bytes())
	}
	encode(func(b *bytes.Buffer) error { return png.Encode(b, img) })
	encode(func(b *bytes.Buffer) error { return jpeg.Encode(b, img, nil) })
	encode(func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) })
	encode(func(b *bytes.Buffer) error {
		pal := image.NewPaletted(image.Rect(0, 0, 5, 4), color.Palette{color.Black, color.White})
		pal.Pix[3] = 1
		return gif.EncodeAll(b, &gif.GIF{Image: []*image.Paletted{pal, pal}, Delay: []int{5, 5}})
	})
	encode(func(b *bytes.Buffer) error { return tiff.Encode(b, img, nil) })
	encode(func(b *bytes.Buffer) error { return tiff.Encode(b, img, &tiff.Options{Compression: tiff.Deflate}) })
	seeds = append(seeds, []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="9" height="5"><rect width="4" height="5" fill="red"/></svg>`))

	rocket := read(f, "rocket.jpg")
	for _, out := range []Format{FormatJPEG, FormatPNG, FormatWebP, FormatGIF, FormatAVIF} {
		res, err := New(DefaultConfig()).Render(context.Background(), rocket, Options{Box: 8, Format: out})
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, res.Data)
	}
	for _, name := range []string{"variants/badge.svg", "variants/astronaut-16bit.png", "astronaut-animated.webp",
		"coffee.avif", "variants/coffee.jxl", "variants/coffee.heic"} {
		seeds = append(seeds, read(f, name))
	}
	return append(seeds, pngHeader(60000, 60000), jpegHeader(65000, 65000), gifFrames(100, 100, 30))
}

func FuzzRender(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		out := uint8(i)
		f.Add(s, uint8(16), out)
		// Truncations: a loader must fail cleanly at any cut.
		f.Add(s[:len(s)/2], uint8(16), out)
		f.Add(s[:min(len(s), 40)], uint8(16), out)
	}
	// A pixel limit well above every seed keeps a mutated header from making
	// each execution a decode of millions of pixels.
	cfg := DefaultConfig()
	cfg.MaxSourcePixels = 1 << 22
	tr := New(cfg)
	f.Fuzz(func(t *testing.T, src []byte, box, out uint8) {
		opts := Options{Box: 1 + int(box)%64, Format: fuzzOutputs[int(out)%len(fuzzOutputs)]}
		orig := bytes.Clone(src)
		res, err := tr.Render(context.Background(), src, opts)
		if !bytes.Equal(src, orig) {
			t.Fatal("Render modified its source buffer (shared with the cache)")
		}
		sniffed := Sniff(src[:min(len(src), 4096)])
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			switch te.Kind {
			case KindUnsupported, KindInvalidImage, KindTooLarge:
			default:
				// Garbage is the client's problem, never a server fault.
				t.Fatalf("kind %d for a %s source: %v", te.Kind, sniffed, err)
			}
			if (te.Kind == KindUnsupported) != (sniffed == FormatUnknown) {
				t.Fatalf("kind %d for a source sniffed as %s", te.Kind, sniffed)
			}
			return
		}
		if sniffed == FormatUnknown {
			t.Fatal("rendered a source the sniffer refuses")
		}
		if opts.Format != FormatUnknown && res.Format != opts.Format {
			t.Fatalf("format %s, asked for %s", res.Format, opts.Format)
		}
		if got := Sniff(res.Data); got != res.Format {
			t.Fatalf("output bytes sniff as %s, result says %s", got, res.Format)
		}
		if res.Width < 1 || res.Height < 1 || res.Width > opts.Box || res.Height > opts.Box || res.Frames < 1 {
			t.Fatalf("%dx%d, %d frames, in a box of %d", res.Width, res.Height, res.Frames, opts.Box)
		}
		w, h, ok := decodeOutput(t, res)
		if ok && (w != res.Width || h != res.Height) {
			t.Fatalf("output decodes as %dx%d, result says %dx%d", w, h, res.Width, res.Height)
		}
	})
}

// decodeOutput decodes an output with Go's decoders; ok is false for the
// outputs they cannot read (AVIF, animated WebP).
func decodeOutput(t *testing.T, res Result) (w, h int, ok bool) {
	t.Helper()
	r := bytes.NewReader(res.Data)
	var (
		img image.Image
		err error
	)
	switch res.Format {
	case FormatGIF:
		var g *gif.GIF
		if g, err = gif.DecodeAll(r); err == nil {
			return g.Config.Width, g.Config.Height, true
		}
	case FormatWebP:
		if res.Frames > 1 {
			return 0, 0, false
		}
		img, err = webp.Decode(r)
	case FormatJPEG, FormatPNG:
		img, _, err = image.Decode(r)
	default:
		return 0, 0, false
	}
	if err != nil {
		t.Fatalf("%s output does not decode: %v", res.Format, err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy(), true
}
