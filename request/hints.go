package request

import (
	"slices"
	"strings"

	"image-proxy/setting"
)

// Client hints: request headers a browser sends about itself, which the
// server may let choose part of the answer. Each is honoured only when
// IMAGE_PROXY_CLIENT_HINTS lists it:
//
//   - dpr: Sec-CH-DPR multiplies size, width and height (today's rule).
//   - width: Sec-CH-Width (or the legacy Width), the slot's width in device
//     pixels, becomes the width of a transform that gives neither size nor
//     width, rounded up to the next allowed size or to a multiple of
//     WidthStep so a cache holds a handful of variants, not one a pixel.
//   - save-data: Save-Data: on lowers the quality of a transform that fixes
//     none (in its URL or its preset) to IMAGE_PROXY_SAVE_DATA_QUALITY.
//
// A hint is applied after the signature is checked, and picks from a set
// the operator bounds (allowed sizes or steps, one quality), so a signed
// URL stays valid whatever the browser sends, and cannot be made to ask
// for anything its signer could not have. A hint is advisory: one that
// does not read (not a number, zero, negative) is ignored and one too
// large is capped, never refused.

// HintsConfig is which client hints the server honours.
type HintsConfig struct {
	// ClientHints lists the hints honoured: dpr, width, save-data, comma
	// separated, or none. Empty is the default, dpr.
	ClientHints string `env:"IMAGE_PROXY_CLIENT_HINTS" envDefault:"dpr"`
	// SaveDataQuality is the quality of a Save-Data request; 0 is
	// DefaultSaveDataQuality.
	SaveDataQuality int `env:"IMAGE_PROXY_SAVE_DATA_QUALITY" envDefault:"50"`
}

// WidthStep is what a hinted width is rounded up to a multiple of when
// IMAGE_PROXY_ALLOWED_SIZES lists no sizes: a phone's 360 to 430 CSS px
// at DPR 2 to 3 falls in 8 steps, and a whole layout's slots in a few
// dozen variants.
const WidthStep = 100

// DefaultSaveDataQuality is IMAGE_PROXY_SAVE_DATA_QUALITY's default.
const DefaultSaveDataQuality = 50

// Hints are the client hint headers of one request, raw.
type Hints struct {
	DPR      string // Sec-CH-DPR
	Width    string // Sec-CH-Width, or Width when that is absent
	SaveData string // Save-Data
}

// Vary names the hint headers that could have changed an answer: each is
// set exactly when a request differing only in that header could get
// other bytes, so a cache keeps one answer per value only where it must.
type Vary uint8

const (
	VaryDPR      Vary = 1 << iota // Sec-CH-DPR
	VaryWidth                     // Sec-CH-Width and Width
	VarySaveData                  // Save-Data
)

// hintSet is HintsConfig parsed.
type hintSet struct {
	dpr, width, saveData bool
	saveDataQuality      int
}

// AcceptCH is the Accept-CH value advertising the hints honoured that a
// browser sends only when asked (Save-Data it sends unasked); "" for none.
func (g *Gate) AcceptCH() string {
	var names []string
	if g.hints.dpr {
		names = append(names, "Sec-CH-DPR")
	}
	if g.hints.width {
		names = append(names, "Sec-CH-Width")
	}
	return strings.Join(names, ", ")
}

// parse reads the setting; the error names it.
func (c HintsConfig) parse() (hintSet, error) {
	h := hintSet{saveDataQuality: c.SaveDataQuality}
	if h.saveDataQuality == 0 {
		h.saveDataQuality = DefaultSaveDataQuality
	}
	if err := setting.CheckRange("IMAGE_PROXY_SAVE_DATA_QUALITY", int64(h.saveDataQuality), 1, 100); err != nil {
		return h, err
	}
	list := strings.TrimSpace(c.ClientHints)
	switch strings.ToLower(list) {
	case "":
		list = "dpr"
	case "none":
		return h, nil
	}
	for name := range strings.SplitSeq(list, ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "dpr":
			h.dpr = true
		case "width":
			h.width = true
		case "save-data":
			h.saveData = true
		default:
			return h, &setting.Error{Name: "IMAGE_PROXY_CLIENT_HINTS", Value: c.ClientHints,
				Allowed: "a comma-separated list of dpr, width and save-data, or none"}
		}
	}
	return h, nil
}

// Hinted is Request with every client hint the server honours: the same
// steps, then the hints (after the signature and the preset), and the
// hint headers that could have changed the answer.
func (g *Gate) Hinted(rel string, q *Query, h Hints) (Request, Vary, error) {
	if !g.hints.dpr {
		h.DPR = ""
	}
	r, err := Parse(q, h.DPR, g.maxBox)
	if err != nil {
		return r, 0, err
	}
	if err := g.verify(rel, r, q); err != nil {
		return r, 0, g.refuse(err)
	}
	r, vary, err := g.apply(r, h)
	if err != nil {
		return r, 0, g.refuse(err)
	}
	return r, vary, nil
}

// hint applies the width and Save-Data hints to r, a transform whose
// preset is laid over it and whose shape is valid, and says which hint
// headers could change the answer (Sec-CH-DPR's rule is today's: a box
// from size, width or height that no dpr parameter fixes).
func (g *Gate) hint(r Request, h Hints) (Request, Vary) {
	var vary Vary
	if !r.Transform {
		return r, 0
	}
	if g.hints.width && r.Size == 0 && r.Width == 0 {
		vary |= VaryWidth
		if w, ok := WidthHint(h.Width, g.maxBox); ok {
			r = r.withDeviceWidth(g.roundWidth(w), g.maxBox)
		}
	}
	if g.hints.dpr && !r.DPRQuery && (r.Size > 0 || r.Height > 0 || r.Width > 0 && vary&VaryWidth == 0) {
		vary |= VaryDPR
	}
	if g.hints.saveData && r.Quality == 0 && !r.JSON {
		vary |= VarySaveData
		if strings.EqualFold(strings.TrimSpace(h.SaveData), "on") {
			r.Quality = g.hints.saveDataQuality
		}
	}
	return r, vary
}

// WidthHint reads a width hint: a whole number of device pixels, capped at
// maxBox. Anything else (not digits, zero, a sign, a fraction) reads as
// no hint.
func WidthHint(v string, maxBox int) (int, bool) {
	v = strings.TrimSpace(v)
	if len(v) > 9 && strings.Trim(v, "0123456789") == "" && strings.Trim(v, "0") != "" {
		return maxBox, true // more digits than any screen: capped
	}
	n, ok := ParseDigits(v)
	if !ok || n == 0 {
		return 0, false
	}
	return min(n, maxBox), true
}

// roundWidth rounds a hinted width up to the next allowed size (the
// largest when it is past them all), or without allowed sizes up to a
// multiple of WidthStep, at most maxBox.
func (g *Gate) roundWidth(w int) int {
	if g.sizes != nil {
		i, _ := slices.BinarySearch(g.sizes, w)
		return g.sizes[min(i, len(g.sizes)-1)]
	}
	return min((w+WidthStep-1)/WidthStep*WidthStep, g.maxBox)
}

// withDeviceWidth sets the width to w device pixels. The hint is already
// in device pixels, so dpr must not multiply it again: a height given
// with it is brought to device pixels here, and dpr to 1.
func (r Request) withDeviceWidth(w, maxBox int) Request {
	if r.Height > 0 {
		r.Height = min(maxBox, max(1, int(float64(r.Height)*r.DPR+0.5)))
	}
	r.Width, r.DPR = w, 1
	return r
}

// String is the hint headers of v, in a fixed order, as Vary lists them.
func (v Vary) String() string {
	var names []string
	if v&VaryDPR != 0 {
		names = append(names, "Sec-CH-DPR")
	}
	if v&VaryWidth != 0 {
		names = append(names, "Sec-CH-Width", "Width")
	}
	if v&VarySaveData != 0 {
		names = append(names, "Save-Data")
	}
	return strings.Join(names, ", ")
}

// Honoured is h with only the hints the server honours kept: every header
// value Hinted reads, so a caller may remember Hinted's answer by them.
func (g *Gate) Honoured(h Hints) Hints {
	if !g.hints.dpr {
		h.DPR = ""
	}
	if !g.hints.width {
		h.Width = ""
	}
	if !g.hints.saveData {
		h.SaveData = ""
	}
	return h
}
