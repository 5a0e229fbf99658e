package request

import (
	"strings"
	"testing"
	"unicode/utf8"

	"image-proxy/fault"
	"image-proxy/imageformat"
)

var (
	focusHalf = imageformat.Focus{X: 0.5, Y: 0.25, Set: true}
	bgRed     = imageformat.Background{RGBA: [4]uint8{255, 0, 0, 255}, Set: true}
)

// TestParseShape: each shape parameter's syntax and range, and its one
// spelling in the canonical form.
func TestParseShape(t *testing.T) {
	for _, c := range []struct {
		query, canonical string
		want             Request
	}{
		{"width=400", "width=400", Request{Transform: true, DPR: 1, Width: 400}},
		{"height=0300&width=1", "height=300&width=1", Request{Transform: true, DPR: 1, Width: 1, Height: 300}},
		{"fit=COVER&width=4&height=3", "fit=cover&height=3&width=4", Request{Transform: true, DPR: 1, Width: 4, Height: 3, Fit: imageformat.FitCover}},
		{"fit=contain", "fit=contain", Request{Transform: true, DPR: 1, Fit: imageformat.FitContain}},
		{"gravity=NorthEast", "gravity=northeast", Request{Transform: true, DPR: 1, Gravity: imageformat.GravityNorthEast}},
		{"gravity=smart", "gravity=smart", Request{Transform: true, DPR: 1, Gravity: imageformat.GravitySmart}},
		{"focus=.5,0.250", "focus=0.5,0.25", Request{Transform: true, DPR: 1, Focus: focusHalf}},
		{"focus=0.123456,0.99999", "focus=0.1235,1", Request{Transform: true, DPR: 1, Focus: imageformat.Focus{X: 0.1235, Y: 1, Set: true}}},
		{"focus=0,1", "focus=0,1", Request{Transform: true, DPR: 1, Focus: imageformat.Focus{X: 0, Y: 1, Set: true}}},
		{"background=FF0000", "background=ff0000", Request{Transform: true, DPR: 1, Background: bgRed}},
		{"background=ff0000FF", "background=ff0000", Request{Transform: true, DPR: 1, Background: bgRed}},
		{"background=00000000", "background=00000000", Request{Transform: true, DPR: 1, Background: imageformat.Background{Set: true}}},
		{"blur=0.3", "blur=0.3", Request{Transform: true, DPR: 1, Blur: 0.3}},
		{"blur=100.0", "blur=100", Request{Transform: true, DPR: 1, Blur: 100}},
	} {
		r, err := Parse(values(c.query), "", 4000)
		if err != nil || r != c.want || r.Canonical() != c.canonical {
			t.Errorf("%q: %+v %q (%v), want %+v %q", c.query, r, r.Canonical(), err, c.want, c.canonical)
		}
	}
}

// TestShapeErrors: every refusal of a shape parameter is a 400 naming it.
func TestShapeErrors(t *testing.T) {
	for query, says := range map[string]string{
		"width=0":                 "width must be a whole number from 1 to 4000.",
		"width=4001":              "width must be a whole number from 1 to 4000.",
		"height=-1":               "height must be a whole number from 1 to 4000.",
		"height=1.5":              "height must be a whole number from 1 to 4000.",
		"width=1&width=2":         "width must be given only once.",
		"fit=crop":                "fit must be one of contain, cover, fill or pad.",
		"fit=":                    "fit must not be empty.",
		"gravity=top":             "gravity must be one of center, north, south, east, west, northeast, northwest, southeast, southwest, smart or entropy.",
		"focus=0.5":               "focus must be X,Y: two decimals from 0 to 1, such as 0.5,0.25.",
		"focus=1.1,0":             "focus must be X,Y: two decimals from 0 to 1, such as 0.5,0.25.",
		"focus=0.5,0.5,0.5":       "focus must be X,Y: two decimals from 0 to 1, such as 0.5,0.25.",
		"focus=-0,0":              "focus must be X,Y: two decimals from 0 to 1, such as 0.5,0.25.",
		"focus=1e-1,0":            "focus must be X,Y: two decimals from 0 to 1, such as 0.5,0.25.",
		"background=fff":          "background must be a hex colour RRGGBB or RRGGBBAA, such as ffffff or 00000000.",
		"background=gg0000":       "background must be a hex colour RRGGBB or RRGGBBAA, such as ffffff or 00000000.",
		"background=%23ff0000":    "background must be a hex colour RRGGBB or RRGGBBAA, such as ffffff or 00000000.",
		"blur=0.2":                "blur must be a number from 0.3 to 100.",
		"blur=101":                "blur must be a number from 0.3 to 100.",
		"blur=NaN":                "blur must be a number from 0.3 to 100.",
		"width=10&size=10":        "",
		"width=10&fit=unknown&x=": "fit must be one of contain, cover, fill or pad.",
	} {
		if says == "" {
			continue // a rule between parameters: the gate's (TestShapeRules)
		}
		_, err := Parse(values(query), "", 4000)
		if fe, ok := fault.As(err); !ok || fe.Kind != fault.BadRequest || err.Error() != says {
			t.Errorf("%q: %v, want 400 %q", query, err, says)
		}
	}
}

// TestShapeRules: the rules between shape parameters, checked by the gate
// after a preset is laid over the request, so a preset that fixes part of
// a shape combines with a URL that gives the rest, and cannot be escaped.
func TestShapeRules(t *testing.T) {
	c := ControlsConfig{AllowQuality: true, SignPassthrough: true,
		Presets: "card=width:1200,height:630,fit:cover;square=size:300;smart=gravity:smart;pin=focus:0.2,0.8,fit:cover"}
	g, err := NewGate(c, 4000, newRefusals())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct{ query, says string }{
		{"width=10&size=10", "size and width/height cannot be combined: give size (a square box), or width and/or height."},
		{"height=10&size=10", "size and width/height cannot be combined: give size (a square box), or width and/or height."},
		{"fit=cover&width=10", "fit=cover needs both width and height."},
		{"fit=fill&height=10", "fit=fill needs both width and height."},
		{"fit=pad", "fit=pad needs both width and height."},
		{"fit=cover&width=1&height=1&gravity=north&focus=0.5,0.5", "focus and gravity cannot be combined: a focal point is where a cover crop centres."},
		{"width=1&height=1&focus=0.5,0.5", "focus needs fit=cover."},
		{"fit=pad&width=1&height=1&focus=0.5,0.5", "focus needs fit=cover."},
		{"width=1&height=1&gravity=north", "gravity needs fit=cover or fit=pad."},
		{"fit=fill&width=1&height=1&gravity=north", "gravity needs fit=cover or fit=pad."},
		{"fit=pad&width=1&height=1&gravity=smart", "gravity=smart needs fit=cover: a pad canvas takes center or a compass point."},
		{"fit=pad&width=1&height=1&gravity=entropy", "gravity=entropy needs fit=cover: a pad canvas takes center or a compass point."},
		{"preset=card&size=100", "size and width/height cannot be combined: give size (a square box), or width and/or height."},
		{"preset=square&width=100", "size and width/height cannot be combined: give size (a square box), or width and/or height."},
		{"preset=card&focus=0.5,0.5&gravity=north", "focus and gravity cannot be combined: a focal point is where a cover crop centres."},
		{"preset=smart&fit=cover&width=5&height=5&focus=0.5,0.5", "focus and gravity cannot be combined: a focal point is where a cover crop centres."},
		{"preset=pin&gravity=north&width=5&height=5", "focus and gravity cannot be combined: a focal point is where a cover crop centres."},
		{"preset=smart", "gravity needs fit=cover or fit=pad."},
		// Accepted: what the preset leaves open, the URL may give.
		{"preset=card&gravity=north", ""},
		{"preset=card&fit=contain&width=5", ""},
		{"preset=smart&fit=cover&width=5&height=5", ""},
		{"preset=pin&width=5&height=5", ""},
		{"fit=pad&width=1&height=1&gravity=southwest&background=00000000&blur=2", ""},
		{"fit=contain&width=1&height=1", ""},
	} {
		r, err := g.Request("a.jpg", values(x.query), "")
		if x.says == "" {
			if err != nil {
				t.Errorf("%q: %v", x.query, err)
			}
			if strings.HasPrefix(x.query, "preset=card") && (r.Width != 1200 || r.Height != 630 || r.Fit != imageformat.FitCover) {
				t.Errorf("%q escaped the preset: %+v", x.query, r)
			}
			continue
		}
		if fe, ok := fault.As(err); !ok || fe.Kind != fault.BadRequest || err.Error() != x.says {
			t.Errorf("%q: %v, want 400 %q", x.query, err, x.says)
		}
	}
}

// TestSides: dpr multiplies both sides by one factor, and the cap at the
// maximum scales the box by one factor too (its aspect ratio kept).
func TestSides(t *testing.T) {
	for _, c := range []struct {
		query, hint string
		w, h        int
	}{
		{"width=400&height=300", "", 400, 300},
		{"width=400&height=300&dpr=2", "", 800, 600},
		{"width=400&height=300", "1.5", 600, 450},
		{"width=333", "", 333, 0},
		{"height=333&dpr=1.5", "", 0, 500},
		{"width=3000&height=1500&dpr=2", "", 4000, 2000}, // capped: the larger side at 4000, the other by the same factor
		{"width=1000&height=4000&dpr=3", "", 1000, 4000},
		{"width=4000&height=1&dpr=10", "", 4000, 1},
		{"size=400", "", 0, 0},
	} {
		r, err := Parse(values(c.query), c.hint, 4000)
		if err != nil {
			t.Fatal(err)
		}
		if w, h := r.Sides(4000); w != c.w || h != c.h {
			t.Errorf("%q (hint %q): %d×%d, want %d×%d", c.query, c.hint, w, h, c.w, c.h)
		}
	}
}

// TestAllowedSides: with IMAGE_PROXY_ALLOWED_SIZES each given side must
// be allowed; snapping scales both sides by the one factor that brings the
// larger to an allowed size, never each on its own.
func TestAllowedSides(t *testing.T) {
	cfg := ControlsConfig{AllowQuality: true, SignPassthrough: true, AllowedSizes: "300,400,800,1200",
		Presets: "card=width:1000,height:500,fit:cover"}
	exact, err := NewGate(cfg, 4000, newRefusals())
	if err != nil {
		t.Fatal(err)
	}
	cfg.SnapSizes = true
	snap, err := NewGate(cfg, 4000, newRefusals())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		snap        bool
		query, hint string
		w, h        int // effective sides; 0, 0 with says
		says        string
	}{
		{false, "width=400&height=300", "", 400, 300, ""},
		{false, "width=400&height=300&dpr=2", "", 800, 600, "width and height × dpr must each come to one of 300, 400, 800, 1200 pixels; they come to 800 × 600."},
		{false, "width=400&height=300", "2", 400, 300, ""}, // the hint is advisory: tried at dpr 1
		{false, "width=400&height=400", "2", 800, 800, ""},
		{false, "width=400", "", 400, 0, ""},
		{false, "width=400&height=250", "", 0, 0, "width and height × dpr must each come to one of 300, 400, 800, 1200 pixels; they come to 400 × 250."},
		{false, "preset=card", "", 1000, 500, ""}, // a preset's box is the operator's
		{true, "width=1000&height=500", "", 1200, 600, ""},
		{true, "width=500&height=1000", "", 600, 1200, ""},
		{true, "width=350&height=100&dpr=2", "", 800, 229, ""},
		{true, "width=2000&height=1000", "", 1200, 600, ""}, // past the largest: down to it
		{true, "height=333", "", 0, 400, ""},
		{true, "width=400&height=300", "", 400, 300, ""},
	} {
		g := exact
		if c.snap {
			g = snap
		}
		r, err := g.Request("a.jpg", values(c.query), c.hint)
		if c.says != "" {
			if err == nil || err.Error() != c.says {
				t.Errorf("%q: %v, want %q", c.query, err, c.says)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		if w, h := r.Sides(4000); w != c.w || h != c.h {
			t.Errorf("snap %t %q (hint %q): %d×%d, want %d×%d", c.snap, c.query, c.hint, w, h, c.w, c.h)
		}
	}
}

// TestPresetShapes: a preset fixes shape parameters, focus's X,Y included
// (its comma continues the value); the old syntax reads as before.
func TestPresetShapes(t *testing.T) {
	table, err := parsePresets("card=width:1200,height:630,fit:cover,gravity:smart;"+
		"face=fit:cover, focus:0.3, 0.7 ,width:100,height:100;pad=fit:pad,background:00000000,blur:2;old=size:400,quality:75", 4000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Request{
		"card": {DPR: 1, Width: 1200, Height: 630, Fit: imageformat.FitCover, Gravity: imageformat.GravitySmart},
		"face": {DPR: 1, Width: 100, Height: 100, Fit: imageformat.FitCover, Focus: imageformat.Focus{X: 0.3, Y: 0.7, Set: true}},
		"pad":  {DPR: 1, Fit: imageformat.FitPad, Background: imageformat.Background{Set: true}, Blur: 2},
		"old":  {DPR: 1, Size: 400, Quality: 75},
	}
	for name, w := range want {
		if table[name] != w {
			t.Errorf("%s: %+v, want %+v", name, table[name], w)
		}
	}
	for spec, says := range map[string]string{
		"a=size:1,0.5":              `entry "a=size:1,0.5": "0.5" must be key:value, such as size:400`,
		"a=focus:0.5":               `entry "a=focus:0.5": focus must be X,Y: two decimals from 0 to 1, such as 0.5,0.25.`,
		"a=focus:0.5,0.5,0.5":       `entry "a=focus:0.5,0.5,0.5": "0.5" must be key:value, such as size:400`,
		"a=size:10,width:10":        `entry "a=size:10,width:10": size and width/height cannot be combined: give size (a square box), or width and/or height.`,
		"a=gravity:north,focus:0,0": `entry "a=gravity:north,focus:0,0": focus and gravity cannot be combined: a focal point is where a cover crop centres.`,
		"a=fit:crop":                `entry "a=fit:crop": fit must be one of contain, cover, fill or pad.`,
	} {
		if _, err := parsePresets(spec, 4000); err == nil || err.Error() != says {
			t.Errorf("%q: %v, want %q", spec, err, says)
		}
	}
}

// TestShapeKeys: a key holds every shape field given, the defaults
// spelled out share the key of the defaults left out, and a request with
// no shape parameter keeps the key it had before they existed (pinned).
func TestShapeKeys(t *testing.T) {
	vs := Variants{MaxBox: 4000, Encoders: NewEncoders(fingerprints{})}
	key := func(query string) string {
		r, err := Parse(values(query), "", 4000)
		if err != nil {
			t.Fatal(err)
		}
		return vs.Of("file:cat.jpg|1|2|3", r, "").Key()
	}
	pinned := map[string]string{
		"size=400&format=webp&quality=70":                                                     "v1|file:cat.jpg|1|2|3|400|webp|auto|webp|q70",
		"size=300&dpr=2&format=jpeg":                                                          "v1|file:cat.jpg|1|2|3|600|jpeg|auto|jpeg",
		"format=png&resize_algorithm=thumbnail":                                               "v1|file:cat.jpg|1|2|3|0|png|thumbnail|png",
		"fit=cover&width=120&height=60&gravity=smart&dpr=2&format=webp":                       "v1|file:cat.jpg|1|2|3|0|webp|auto|webp|w240|h120|fcover|gsmart",
		"fit=cover&width=10&height=10&focus=0.5,0.25&background=00000080&blur=2.5&format=png": "v1|file:cat.jpg|1|2|3|0|png|auto|png|w10|h10|fcover|p0.5,0.25|bg00000080|blur2.5",
	}
	for q, want := range pinned {
		if got := key(q); got != want {
			t.Errorf("%q: key %q, want %q", q, got, want)
		}
	}
	same := [][2]string{
		{"width=10&height=5&format=png", "width=10&height=5&fit=contain&format=png"},
		{"fit=cover&width=10&height=5&format=png", "fit=cover&width=10&height=5&gravity=center&format=png"},
		{"format=jpeg", "format=jpeg&background=FFFFFF"},
		{"format=jpeg&blur=2", "format=jpeg&blur=2.0"},
	}
	for _, p := range same {
		if key(p[0]) != key(p[1]) {
			t.Errorf("%q and %q: keys %q and %q", p[0], p[1], key(p[0]), key(p[1]))
		}
	}
}

// FuzzParseFocus: the focal point parser never panics, and what it
// accepts is in range and written back to a value it reads the same.
func FuzzParseFocus(f *testing.F) {
	for _, s := range []string{"0.5,0.25", "1,0", ".5,.", "0.5", "1.0000000000001,0", ",", "0,0,0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := ParseFocus(s)
		if !ok {
			return
		}
		if !p.Set || p.X < 0 || p.X > 1 || p.Y < 0 || p.Y > 1 {
			t.Fatalf("%q: %+v", s, p)
		}
		again, ok := ParseFocus(p.String())
		if !ok || again != p {
			t.Fatalf("%q → %q → %+v", s, p.String(), again)
		}
	})
}

// FuzzShapeQuery: any accepted query with shape parameters round-trips
// through its canonical form and keeps its sides within the maximum.
func FuzzShapeQuery(f *testing.F) {
	for _, s := range []string{"fit=cover&width=400&height=300&gravity=smart&dpr=2.5", "focus=0.1,0.9&fit=cover&width=1&height=1",
		"background=ABCDEF12&blur=.3&fit=pad&width=4000&height=4000", "width=4000&dpr=10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		if !utf8.ValidString(query) {
			return
		}
		r, err := Parse(values(query), "", 4000)
		if err != nil {
			return
		}
		again, err := Parse(values(r.Canonical()), "", 4000)
		if err != nil || again != r {
			t.Fatalf("%q → %q → %+v (%v), want %+v", query, r.Canonical(), again, err, r)
		}
		w, h := r.Sides(4000)
		if w > 4000 || h > 4000 || (r.Width > 0) != (w > 0) || (r.Height > 0) != (h > 0) {
			t.Fatalf("%q: sides %d×%d", query, w, h)
		}
	})
}
