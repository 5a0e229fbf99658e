package transform

import (
	"context"
	"strings"
	"testing"
)

// TestPlaceholdersDecodeSmall: the placeholders' decode asks the loader
// for a reduced image wherever the format can give one, never the full
// size of a large JPEG or WebP.
func TestPlaceholdersDecodeSmall(t *testing.T) {
	e := New(DefaultConfig())
	for _, c := range []struct {
		name   string
		shrink int
		scale  bool // a load scale under 1
	}{
		{"hubble_deep_field.jpg", 8, false},
		{"coffee-progressive.jpg", 4, false},
		{"rocket.jpg", 4, false},
		{"astronaut-animated.webp", 1, true},
	} {
		s, err := e.open(read(t, c.name), "")
		if err != nil {
			t.Fatal(err)
		}
		l := placeholderPlan(s).load
		if l.Shrink != c.shrink || c.scale != (l.ScaleOrOne() < 1) || l.Pages != 1 {
			t.Errorf("%s (%d×%d): placeholders load %+v, want shrink %d, a scale under 1 %t, one frame",
				c.name, s.Header.Width, s.Header.PageHeight, l, c.shrink, c.scale)
		}
	}
}

// TestDescribeEverySource describes every format the server reads: the
// placeholders are there and the LQIP fits its bound.
func TestDescribeEverySource(t *testing.T) {
	e := New(DefaultConfig())
	for _, name := range []string{"rocket.jpg", "rocket-cmyk.jpg", "coffee.avif", "coffee.png", "astronaut-animated.gif",
		"astronaut-animated.webp", "variants/coffee.tif", "variants/coffee.heic", "variants/coffee.jxl", "variants/badge.svg",
		"variants/astronaut-16bit.png", "variants/astronaut-alpha.png"} {
		f, err := e.Describe(context.Background(), read(t, name), Options{Box: 100}, true)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		p := f.Placeholders
		if p.BlurHash == "" || p.ThumbHash == "" || len(p.DominantColor) != 7 || len(p.LQIP) > LQIPMaxBytes ||
			!strings.HasPrefix(p.LQIP, "data:image/webp;base64,") || f.Output == nil || max(f.Output.Width, f.Output.Height) > 100 {
			t.Errorf("%s: %+v %+v", name, f.Output, p)
		}
	}
}
