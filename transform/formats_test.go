package transform

import (
	"context"
	"slices"
	"strings"
	"testing"
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

func TestFormatTableIsConsistent(t *testing.T) {
	seen := map[string]Format{}
	var ranks []int
	for f := range formatCount {
		s := f.spec()
		if s.name == "" || s.mime == "" {
			t.Errorf("format %d has no name or MIME type", f)
		}
		for _, n := range append([]string{s.name}, s.aliases...) {
			key := strings.ToLower(n)
			if g, dup := seen[key]; dup {
				t.Errorf("name %q is both %s and %s", n, g, f)
			}
			seen[key] = f
		}
		if f == FormatUnknown {
			if s.magic != nil || s.load != nil || s.save != nil || s.outputRank != 0 {
				t.Error("the unknown format is sniffable, loadable or encodable")
			}
			continue
		}
		if s.magic == nil || s.load == nil || len(s.operations) == 0 {
			t.Errorf("%s lacks a magic, a loader or its libvips operations", f)
		}
		if (s.outputRank > 0) != (s.save != nil) {
			t.Errorf("%s: output rank %d but saver present %v", f, s.outputRank, s.save != nil)
		}
		if s.outputRank > 0 {
			ranks = append(ranks, s.outputRank)
			if s.mime == formats[FormatUnknown].mime {
				t.Errorf("output %s has no MIME type of its own", f)
			}
		} else if len(s.aliases) > 0 || s.quality != nil {
			t.Errorf("%s is never encoded but has aliases or a quality", f)
		}
	}
	slices.Sort(ranks)
	for i, r := range ranks {
		if r != i+1 {
			t.Fatalf("output ranks %v are not 1..%d", ranks, len(ranks))
		}
	}
	if Format(200).String() != "unknown" || Format(200).MIME() != "application/octet-stream" || Format(200).CanEncode() {
		t.Error("a format beyond the table is not the unknown one")
	}
}

func TestFormatMagicRecognisesSamples(t *testing.T) {
	for f := range formatCount {
		if f.spec().magic == nil {
			continue
		}
		name, ok := formatSamples[f]
		if !ok {
			t.Errorf("%s has no sample in formatSamples", f)
			continue
		}
		src := read(t, name)
		if !f.spec().magic(src) {
			t.Errorf("%s's magic does not recognise %s", f, name)
		}
		if got := Sniff(src[:min(len(src), 4096)]); got != f {
			t.Errorf("%s sniffed as %s, want %s", name, got, f)
		}
		im, err := load(src, f, loadParams{pages: 1})
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
		for _, a := range f.spec().aliases {
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
		for _, op := range f.spec().operations {
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
