package imageformat

import "testing"

func TestShapeNames(t *testing.T) {
	for _, c := range []struct {
		s  string
		f  Fit
		ok bool
	}{{"contain", FitContain, true}, {"COVER", FitCover, true}, {"fill", FitFill, true}, {"Pad", FitPad, true}, {"", FitUnset, false}, {"crop", FitUnset, false}} {
		if f, ok := ParseFit(c.s); f != c.f || ok != c.ok || ok && f.String() != fitNames[f] {
			t.Errorf("ParseFit(%q) = %v %t", c.s, f, ok)
		}
	}
	for g := GravityCenter; g <= GravityEntropy; g++ {
		if back, ok := ParseGravity(g.String()); !ok || back != g {
			t.Errorf("gravity %d: %q reads as %v %t", g, g.String(), back, ok)
		}
		if g.Compass() != (g < GravitySmart) {
			t.Errorf("%s: compass %t", g, g.Compass())
		}
	}
	if x, y := GravitySouthWest.Anchor(); x != 0 || y != 1 {
		t.Errorf("southwest anchors at %v,%v", x, y)
	}
	if _, ok := ParseGravity(""); ok {
		t.Error("an empty gravity parses")
	}
}

// FuzzParseBackground: what parses is written back in one spelling that
// reads the same colour.
func FuzzParseBackground(f *testing.F) {
	for _, s := range []string{"ffffff", "FF000080", "00000000", "fff", "gggggg", "ff00ff0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, ok := ParseBackground(s)
		if !ok {
			return
		}
		again, ok := ParseBackground(b.String())
		if !ok || again != b || !b.Set || len(s) == 6 && b.RGBA[3] != 255 {
			t.Fatalf("%q → %+v → %q → %+v", s, b, b.String(), again)
		}
	})
}
