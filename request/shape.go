package request

import (
	"math"
	"strconv"
	"strings"

	"image-proxy/imageformat"
)

// The shape parameters (issue 25): width and height, fit, gravity, focus,
// background and blur. Parse reads their syntax and ranges here; the rules
// between them (checkShape) are the gate's, after a preset has been laid
// over the request, so a preset may fix some of them and leave the rest to
// the URL.

// MinBlur and MaxBlur bound ?blur=, a Gaussian sigma in output pixels:
// under 0.3 libvips' mask is a single pixel (no blur at all).
const MinBlur, MaxBlur = 0.3, 100.0

var (
	fitError     = "fit must be one of contain, cover, fill or pad."
	gravityError = "gravity must be one of center, north, south, east, west, northeast, northwest, southeast, southwest, smart or entropy."
)

// parseShape reads the shape parameters into r; each present one makes a
// transform. The first error, in the order below, is the answer.
func parseShape(q *Query, r *Request, maxBox int) error {
	// got checks one parameter's value (single's three results) with
	// parse, which sets r's field; msg is its error, built only then (a
	// hit's parse allocates nothing).
	got := func(parse func(string) bool, msg func() string) func(string, bool, error) error {
		return func(v string, ok bool, err error) error {
			switch {
			case err != nil:
				return err
			case !ok:
				return nil
			case !parse(v):
				return badRequest(msg())
			}
			r.Transform = true
			return nil
		}
	}
	side := func(n *int) func(string) bool {
		return func(v string) bool {
			x, ok := ParseDigits(v)
			*n = x
			return ok && x >= 1 && x <= maxBox
		}
	}
	whole := func(key string) func() string {
		return func() string { return key + " must be a whole number from 1 to " + strconv.Itoa(maxBox) + "." }
	}
	fixed := func(msg string) func() string { return func() string { return msg } }
	for _, err := range []error{
		got(side(&r.Width), whole("width"))(single(q, "width")),
		got(side(&r.Height), whole("height"))(single(q, "height")),
		got(func(v string) (ok bool) { r.Fit, ok = imageformat.ParseFit(v); return }, fixed(fitError))(single(q, "fit")),
		got(func(v string) (ok bool) { r.Gravity, ok = imageformat.ParseGravity(v); return }, fixed(gravityError))(single(q, "gravity")),
		got(func(v string) (ok bool) { r.Focus, ok = ParseFocus(v); return },
			fixed("focus must be X,Y: two decimals from 0 to 1, such as 0.5,0.25."))(single(q, "focus")),
		got(func(v string) (ok bool) { r.Background, ok = imageformat.ParseBackground(v); return },
			fixed("background must be a hex colour RRGGBB or RRGGBBAA, such as ffffff or 00000000."))(single(q, "background")),
		got(func(v string) (ok bool) { r.Blur, ok = parseBlur(v); return }, fixed("blur must be a number from 0.3 to 100."))(single(q, "blur")),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// ParseFocus reads a focal point "X,Y": two decimals of the grammar, each
// from 0 to 1, rounded to 4 decimals (a ten-thousandth of a side is below
// a pixel of any output), so that its canonical spelling is short and
// reads back the same.
func ParseFocus(s string) (imageformat.Focus, bool) {
	xs, ys, ok := strings.Cut(s, ",")
	if !ok {
		return imageformat.Focus{}, false
	}
	x, okx := ParseDecimal(xs)
	y, oky := ParseDecimal(ys)
	if !okx || !oky || x > 1 || y > 1 {
		return imageformat.Focus{}, false
	}
	return imageformat.Focus{X: math.Round(x*1e4) / 1e4, Y: math.Round(y*1e4) / 1e4, Set: true}, true
}

func parseBlur(s string) (float64, bool) {
	b, ok := ParseDecimal(s)
	return b, ok && b >= MinBlur && b <= MaxBlur
}

// conflicts are the pairs no request may give together, a preset and its
// URL included.
func (r Request) conflicts() error {
	switch {
	case r.Size > 0 && (r.Width > 0 || r.Height > 0):
		return badRequest("size and width/height cannot be combined: give size (a square box), or width and/or height.")
	case r.Focus.Set && r.Gravity != imageformat.GravityUnset:
		return badRequest("focus and gravity cannot be combined: a focal point is where a cover crop centres.")
	}
	return nil
}

// CheckShape holds the shape parameters to the rules between them: the
// gate's check once a preset is laid over the request, and POST
// /convert's over its fields.
func (r Request) CheckShape() error {
	if err := r.conflicts(); err != nil {
		return err
	}
	fit := r.Fit.String()
	switch {
	case r.Fit.Crops() && (r.Width == 0 || r.Height == 0):
		return badRequest("fit=" + fit + " needs both width and height.")
	case r.Focus.Set && r.Fit != imageformat.FitCover:
		return badRequest("focus needs fit=cover.")
	case r.Gravity != imageformat.GravityUnset && r.Fit != imageformat.FitCover && r.Fit != imageformat.FitPad:
		return badRequest("gravity needs fit=cover or fit=pad.")
	case r.Fit == imageformat.FitPad && !r.Gravity.Compass():
		return badRequest("gravity=" + r.Gravity.String() + " needs fit=cover: a pad canvas takes center or a compass point.")
	}
	return nil
}

// Sides is the effective box of width and height: each × dpr, rounded, by
// one factor that keeps the larger at most maxBox so the box keeps its
// aspect ratio. A side not given is 0.
func (r Request) Sides(maxBox int) (w, h int) {
	big := max(r.Width, r.Height)
	if big == 0 {
		return 0, 0
	}
	f := min(r.DPR, float64(maxBox)/float64(big))
	return scaleSide(r.Width, f, maxBox), scaleSide(r.Height, f, maxBox)
}

// scaleSide is n × f rounded, between 1 and maxBox; 0 stays 0 (not given).
func scaleSide(n int, f float64, maxBox int) int {
	if n == 0 {
		return 0
	}
	return min(max(1, int(math.Round(float64(n)*f))), maxBox)
}
