package placeholder

import (
	"bytes"
	"encoding/base64"
	"image/color"
	"strings"
	"testing"

	"github.com/buckket/go-blurhash"

	"image-proxy/internal/testsupport/thumbhashref"
)

// picture is a test picture: a smooth gradient in each channel, so each
// quadrant has its own mean colour, with a little deterministic noise so
// that no DCT coefficient sits exactly between two quantised steps (where
// two cosine implementations' last bits could round it either way); with
// alpha, a band along the top fades to transparent.
func picture(w, h int, alpha bool) Pixels {
	p := Pixels{W: w, H: h, RGBA: make([]byte, 4*w*h)}
	seed := uint32(w*1000 + h)
	for y := range h {
		for x := range w {
			seed = seed*1664525 + 1013904223
			noise := int(seed>>28) - 8
			i := 4 * (y*w + x)
			p.RGBA[i] = byte(40 + 180*x/w + noise)
			p.RGBA[i+1] = byte(40 + 180*y/h + noise)
			p.RGBA[i+2] = byte(210 - 170*(x+y)/(w+h) + noise)
			p.RGBA[i+3] = 255
			if alpha && y < h/5 {
				p.RGBA[i+3] = byte(255 * x / w)
			}
		}
	}
	return p
}

var pictures = []struct {
	name string
	p    Pixels
}{
	{"landscape", picture(100, 75, false)},
	{"portrait", picture(60, 100, false)},
	{"square", picture(64, 64, false)},
	{"alpha", picture(100, 50, true)},
	{"wide", picture(100, 20, false)},
	{"one pixel", Pixels{W: 1, H: 1, RGBA: []byte{10, 200, 30, 255}}},
	{"transparent", Pixels{W: 2, H: 2, RGBA: make([]byte, 16)}},
}

// TestThumbHashIsTheReferences encodes each picture with ours and with the
// reference implementation (node): the bytes must be the same.
func TestThumbHashIsTheReferences(t *testing.T) {
	var jobs []thumbhashref.Job
	for _, c := range pictures {
		jobs = append(jobs, thumbhashref.Job{W: c.p.W, H: c.p.H, RGBA: c.p.RGBA})
	}
	ref := thumbhashref.Run(t, jobs)
	for i, c := range pictures {
		if got := ThumbHash(c.p); !bytes.Equal(got, ref[i].Hash) {
			t.Errorf("%s: ThumbHash %x, the reference encodes %x", c.name, got, ref[i].Hash)
		}
	}
}

// tolerance is how far (of 255) a decoded placeholder's quadrant mean may
// be from the picture's: ThumbHash's decoder boosts saturation by a
// quarter and both formats keep only the lowest frequencies, 4 bits each;
// a wrong grid, channel or orientation is off by far more (80 to 180 here).
const tolerance = 30

// TestHashesDecodeToThePicture decodes each placeholder with its format's
// decoder (the reference ThumbHash decoder, go-blurhash's) and compares
// the mean colour of each quadrant with the picture's.
func TestHashesDecodeToThePicture(t *testing.T) {
	var jobs []thumbhashref.Job
	var sets []Set
	for _, c := range pictures[:4] {
		s, err := Of(c.p)
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, s)
		h, _ := base64.StdEncoding.DecodeString(s.ThumbHash)
		jobs = append(jobs, thumbhashref.Job{Hash: h})
	}
	decoded := thumbhashref.Run(t, jobs)
	for i, c := range pictures[:4] {
		want := thumbhashref.Quadrants(c.p.W, c.p.H, c.p.RGBA)
		d := decoded[i]
		if err := thumbhashref.Resembles(thumbhashref.Quadrants(d.W, d.H, d.RGBA), want, tolerance); err != nil {
			t.Errorf("%s: ThumbHash %s: %v", c.name, sets[i].ThumbHash, err)
		}
		img, err := blurhash.Decode(sets[i].BlurHash, c.p.W, c.p.H, 1)
		if err != nil {
			t.Fatalf("%s: BlurHash %q does not decode: %v", c.name, sets[i].BlurHash, err)
		}
		px := make([]byte, 0, 4*c.p.W*c.p.H)
		for y := range c.p.H {
			for x := range c.p.W {
				n := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				px = append(px, n.R, n.G, n.B, n.A)
			}
		}
		if err := thumbhashref.Resembles(thumbhashref.Quadrants(c.p.W, c.p.H, px), want, tolerance); err != nil {
			t.Errorf("%s: BlurHash %s: %v", c.name, sets[i].BlurHash, err)
		}
	}
}

func TestBlurHashComponentsFollowTheAspect(t *testing.T) {
	for _, c := range []struct{ w, h, x, y int }{{100, 75, 4, 3}, {60, 100, 3, 4}, {64, 64, 4, 4}, {100, 1, 4, 3}} {
		s, err := BlurHash(picture(c.w, c.h, false))
		if err != nil {
			t.Fatal(err)
		}
		x, y, err := blurhash.Components(s)
		if err != nil || x != c.x || y != c.y {
			t.Errorf("%d × %d: %q has %d × %d components (%v), want %d × %d", c.w, c.h, s, x, y, err, c.x, c.y)
		}
	}
}

func TestDominantColour(t *testing.T) {
	// Three quarters grey, one quarter red: grey dominates, where the
	// mean would be a brownish grey.
	p := Pixels{W: 4, H: 4, RGBA: make([]byte, 64)}
	for i := 0; i < 16; i++ {
		c := []byte{128, 128, 128, 255}
		if i%4 == 0 {
			c = []byte{250, 0, 0, 255}
		}
		copy(p.RGBA[4*i:], c)
	}
	if got := Dominant(p); got != "#808080" {
		t.Errorf("Dominant = %s, want #808080", got)
	}
	if got := Dominant(Pixels{W: 1, H: 1, RGBA: []byte{1, 2, 3, 0}}); got != "#ffffff" {
		t.Errorf("a transparent picture: %s, want #ffffff", got)
	}
}

func TestCheckRefusesWhatAHashCannotTake(t *testing.T) {
	for _, p := range []Pixels{{W: 0, H: 1}, {W: 101, H: 1, RGBA: make([]byte, 404)}, {W: 2, H: 2, RGBA: make([]byte, 15)}} {
		if _, err := Of(p); err == nil || !strings.Contains(err.Error(), "placeholder") {
			t.Errorf("%d × %d with %d bytes: %v, want a refusal", p.W, p.H, len(p.RGBA), err)
		}
	}
}

// FuzzPlaceholders: any pixels of any allowed size give every placeholder
// without a panic, the ThumbHash at least its header long.
func FuzzPlaceholders(f *testing.F) {
	f.Add(uint8(3), uint8(2), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(100), uint8(1), []byte{255})
	f.Fuzz(func(t *testing.T, w, h uint8, seed []byte) {
		p := Pixels{W: int(w)%MaxSide + 1, H: int(h)%MaxSide + 1}
		p.RGBA = make([]byte, 4*p.W*p.H)
		for i := range p.RGBA {
			if len(seed) > 0 {
				p.RGBA[i] = seed[i%len(seed)] + byte(i)
			}
		}
		s, err := Of(p)
		th, _ := base64.StdEncoding.DecodeString(s.ThumbHash)
		if err != nil || len(th) < 5 || len(s.BlurHash) < 6 || len(s.DominantColor) != 7 {
			t.Errorf("%d×%d: %+v %v", p.W, p.H, s, err)
		}
	})
}
