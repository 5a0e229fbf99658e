package transform

import (
	"context"
	"slices"
	"strings"
	"testing"

	"image-proxy/transform/decode"
)

// formatSamples holds a real file for every format the sniffer knows; a
// new record without one fails TestFormatMagicRecognisesSamples.
var formatSamples = map[Format]string{
	FormatJPEG: "rocket.jpg",
	FormatPNG:  "astronaut.png",
	FormatWebP: "astronaut-animated.webp",
	FormatGIF:  "astronaut-animated.gif",
	FormatAVIF: "coffee.avif",
	FormatHEIF: "variants/coffee.heic",
	FormatTIFF: "variants/coffee.tif",
	FormatJXL:  "variants/coffee.jxl",
	FormatSVG:  "variants/badge.svg",
}

// The loader and saver table agrees with imageformat's: every known format
// is sniffable and loadable, exactly the encodable ones have a saver, and
// only those have aliases or a quality.
func TestFormatTableIsConsistent(t *testing.T) {
	for f := range formatCount {
		s := spec(f)
		if f == FormatUnknown {
			if s.magic != nil || s.load != nil || s.save != nil || f.CanEncode() {
				t.Error("the unknown format is sniffable, loadable or encodable")
			}
			continue
		}
		if s.magic == nil || s.load == nil || len(s.operations) == 0 {
			t.Errorf("%s lacks a magic, a loader or its libvips operations", f)
		}
		if f.CanEncode() != (s.save != nil) || f.CanEncode() != (s.settings != nil) {
			t.Errorf("%s: encodable %v but saver present %v, fingerprint settings present %v", f, f.CanEncode(), s.save != nil, s.settings != nil)
		}
		if !f.CanEncode() && (len(f.Aliases()) > 0 || s.quality != nil) {
			t.Errorf("%s is never encoded but has aliases or a quality", f)
		}
	}
}

func TestFormatMagicRecognisesSamples(t *testing.T) {
	for f := range formatCount {
		if spec(f).magic == nil {
			continue
		}
		name, ok := formatSamples[f]
		if !ok {
			t.Errorf("%s has no sample in formatSamples", f)
			continue
		}
		src := read(t, name)
		if !spec(f).magic(src) {
			t.Errorf("%s's magic does not recognise %s", f, name)
		}
		if got := Sniff(src[:min(len(src), 4096)]); got != f {
			t.Errorf("%s sniffed as %s, want %s", name, got, f)
		}
		im, err := load(src, f, decode.Load{Pages: 1})
		if err != nil {
			t.Errorf("%s does not load as %s: %v", name, f, err)
			continue
		}
		im.Close()
	}
}

// A signature at byte 0 wins over an ftyp box behind it, and an ftyp box
// without an image brand is never read as text.
func TestSniffStagesKeepPrecedence(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Format
	}{
		{"\xff\xd8\xff\xe0ftypavif\x00\x00\x00\x00avif", FormatJPEG},
		{"II*\x00ftypavif\x00\x00\x00\x00avif", FormatTIFF},
		{"\xff\x0a\x00\x00ftypavif\x00\x00\x00\x00avif", FormatJXL},
		{"<?xyftypisom\x00\x00\x00\x00?><svg>", FormatUnknown},
		{"<!--ftypisom\x00\x00\x00\x00--><svg>", FormatUnknown},
	} {
		if got := Sniff([]byte(c.in)); got != c.want {
			t.Errorf("%q: %s, want %s", c.in, got, c.want)
		}
	}
}

func TestEveryOutputEncodes(t *testing.T) {
	src := read(t, "rocket.jpg")
	e := New(DefaultConfig())
	for f := range formatCount {
		if !f.CanEncode() {
			continue
		}
		res, err := e.Render(context.Background(), src, Options{Box: 16, Format: f})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if got := Sniff(res.Data); got != f || res.Format != f {
			t.Errorf("asked for %s, got %s bytes labelled %s", f, got, res.Format)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for f := range formatCount {
		got, ok := ParseFormat(f.String())
		if f.CanEncode() != ok || (ok && got != f) {
			t.Errorf("ParseFormat(%q) = %s, %v", f.String(), got, ok)
		}
		for _, a := range f.Aliases() {
			if got, ok := ParseFormat(strings.ToUpper(a)); !ok || got != f {
				t.Errorf("alias %q resolves to %s, %v", a, got, ok)
			}
		}
	}
	for _, s := range []string{"", "auto", "JPG ", "jpe", "heic", "\u212aif"} {
		if f, ok := ParseFormat(s); ok {
			t.Errorf("ParseFormat(%q) accepted as %s", s, f)
		}
	}
	if f, ok := ParseFormat("WebP"); !ok || f != FormatWebP {
		t.Errorf("ParseFormat is case-sensitive: %s, %v", f, ok)
	}
}

func TestOutputNamesInContractOrder(t *testing.T) {
	want := []string{"avif", "jpeg", "jpg", "png", "webp", "gif"}
	got := OutputNames()
	if !slices.Equal(got, want) {
		t.Fatalf("OutputNames() = %v, want %v", got, want)
	}
	for _, n := range got {
		if _, ok := ParseFormat(n); !ok {
			t.Errorf("listed name %q does not parse", n)
		}
	}
}

func TestAllowListComesFromTheTable(t *testing.T) {
	ops := allowedOperations()
	for f := range formatCount {
		for _, op := range spec(f).operations {
			if !slices.Contains(ops, op) {
				t.Errorf("%s's operation %s is not allowed", f, op)
			}
		}
	}
	// The check runs before anything is blocked, so this leaves libvips as it was.
	if err := restrictOperations([]string{"jpegload_buffer", "nosuchload_buffer"}); err == nil || !strings.Contains(err.Error(), "nosuchload_buffer") {
		t.Errorf("an unknown operation name is accepted: %v", err)
	}
}
