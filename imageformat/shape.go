package imageformat

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// The shape of an output beyond its box: how it fills a width × height box
// (Fit), which part of the picture a crop keeps or where a padded picture
// sits (Gravity), a focal point (Focus) and the colour of new pixels
// (Background). request parses them and transform acts on them; they live
// here, beside Algorithm, so both name the same values without the
// grammar importing libvips.

// Fit is how the output fills a width × height box. The zero value is
// "not given", which behaves as FitContain: a request that names contain
// keeps its spelling in the canonical form.
type Fit uint8

const (
	FitUnset   Fit = iota
	FitContain     // inside the box, aspect kept
	FitCover       // the box exactly, what overflows cropped
	FitFill        // the box exactly, stretched
	FitPad         // contain, then the canvas extended to the box
)

var fitNames = [...]string{"", "contain", "cover", "fill", "pad"}

func (f Fit) String() string {
	if int(f) < len(fitNames) {
		return fitNames[f]
	}
	return ""
}

// Crops reports whether the fit makes the output exactly the box.
func (f Fit) Crops() bool { return f == FitCover || f == FitFill || f == FitPad }

// ParseFit accepts a fit's name (not the empty one), case-insensitively.
func ParseFit(s string) (Fit, bool) { return parseName[Fit](fitNames[:], s) }

// Gravity is which part of the picture a cover crop keeps, or where the
// picture sits on a pad canvas. The zero value is "not given": the centre.
type Gravity uint8

const (
	GravityUnset Gravity = iota
	GravityCenter
	GravityNorth
	GravitySouth
	GravityEast
	GravityWest
	GravityNorthEast
	GravityNorthWest
	GravitySouthEast
	GravitySouthWest
	GravitySmart   // libvips' attention (saliency) measure
	GravityEntropy // libvips' entropy measure
)

var gravityNames = [...]string{"", "center", "north", "south", "east", "west",
	"northeast", "northwest", "southeast", "southwest", "smart", "entropy"}

func (g Gravity) String() string {
	if int(g) < len(gravityNames) {
		return gravityNames[g]
	}
	return ""
}

// Compass reports whether g is a place (the centre or a compass point),
// not a measure of the picture: the gravities a pad canvas takes.
func (g Gravity) Compass() bool { return g < GravitySmart }

// Anchor is where g puts a picture in a larger frame, as fractions of the
// room left on each axis: 0 the left (top) edge, 1 the right (bottom).
func (g Gravity) Anchor() (x, y float64) {
	x, y = 0.5, 0.5
	switch g {
	case GravityNorth, GravityNorthEast, GravityNorthWest:
		y = 0
	case GravitySouth, GravitySouthEast, GravitySouthWest:
		y = 1
	}
	switch g {
	case GravityWest, GravityNorthWest, GravitySouthWest:
		x = 0
	case GravityEast, GravityNorthEast, GravitySouthEast:
		x = 1
	}
	return x, y
}

// ParseGravity accepts a gravity's name (not the empty one),
// case-insensitively.
func ParseGravity(s string) (Gravity, bool) { return parseName[Gravity](gravityNames[:], s) }

func parseName[T ~uint8](names []string, s string) (T, bool) {
	for i, n := range names {
		if i > 0 && EqualFold(s, n) {
			return T(i), true
		}
	}
	return 0, false
}

// Focus is a focal point of the upright source, as fractions of its width
// and height (0 to 1); the zero value is "none".
type Focus struct {
	X, Y float64
	Set  bool
}

// String is the point as the grammar writes it: "X,Y", each in its
// shortest decimal; "" when none.
func (f Focus) String() string {
	if !f.Set {
		return ""
	}
	return strconv.FormatFloat(f.X, 'f', -1, 64) + "," + strconv.FormatFloat(f.Y, 'f', -1, 64)
}

// Background is the colour of new pixels (a pad canvas) and of what alpha
// is flattened onto; the zero value is "not given": opaque white.
type Background struct {
	RGBA [4]uint8
	Set  bool
}

// White is the background when none is given.
var White = Background{RGBA: [4]uint8{255, 255, 255, 255}, Set: true}

// Or is b, or d when b is not given.
func (b Background) Or(d Background) Background {
	if b.Set {
		return b
	}
	return d
}

// ParseBackground reads RRGGBB (opaque) or RRGGBBAA, hex digits of either
// case.
func ParseBackground(s string) (Background, bool) {
	if len(s) != 6 && len(s) != 8 {
		return Background{}, false
	}
	var b Background
	n, err := hex.Decode(b.RGBA[:], []byte(s))
	if err != nil || n != len(s)/2 {
		return Background{}, false
	}
	if n == 3 {
		b.RGBA[3] = 255
	}
	b.Set = true
	return b, true
}

// String is the colour as the grammar writes it: lowercase RRGGBB when
// opaque, else RRGGBBAA; "" when not given.
func (b Background) String() string {
	if !b.Set {
		return ""
	}
	s := hex.EncodeToString(b.RGBA[:])
	if b.RGBA[3] == 255 {
		s = s[:6]
	}
	return strings.ToLower(s)
}
