package transform

import (
	"math"

	"image-proxy/transform/decode"
)

// plan is every decision a render takes from the header and the options:
// what it produces, and the load it asks the decode layer for.
type plan struct {
	out           Format
	width, height int // of one output frame
	algorithm     Algorithm
	quality       int // Options.Quality: 0 = the format's setting
	// animation: the source has several frames in an animated format,
	// whether or not the output keeps them.
	animation bool
	load      decode.Load
	shape     shape // what happens after orient, upright (shape.go)
}

// familyBox is the box whose shrink-on-load every smaller box of a
// progressive JPEG shares: the DPR 3 variant of a 400 px slot. Without it,
// 400, 800 and 1200 px from a 5120 px JPEG would load at shrinks 8, 4 and
// 4, two decodes; with it all three load at 4, one decode.
const familyBox = 1200

// planFor is newPlan with the family shrink rule. A progressive JPEG
// costs about the same to decode at any shrink (libjpeg reads every scan
// whatever the output scale), so every box up to familyBox loads at
// familyBox's shrink and the variants of one source share one decode. A
// baseline JPEG decodes markedly faster at a finer shrink, so each of its
// boxes keeps its own: a lone variant costs what it would with the decode
// cache off, and only variants that need the same shrink share a decode.
// The rule depends on the source and the box alone, never on the decode
// cache's setting or on which variant came first, so a URL's bytes (and
// its strong ETag) are the same on every replica and in every order.
func planFor(s decode.Source, opts Options) plan {
	p := newPlan(s, opts)
	if !s.ProgressiveJPEG() || familyMember(opts) == 0 || familyMember(opts) >= familyBox {
		return p
	}
	// The family's box is a plain one: a crop of a progressive JPEG shares
	// the decode of the same source's sizes.
	wide := Options{Box: familyBox, Algorithm: opts.Algorithm}
	p.load.Shrink = min(p.load.Shrink, newPlan(s, wide).load.Shrink)
	return p
}

// familyMember is the box that puts opts in the family shrink rule: Box,
// or else the larger of Width and Height; 0 for none.
func familyMember(opts Options) int {
	if opts.Box > 0 {
		return opts.Box
	}
	return max(opts.Width, opts.Height)
}

// newPlan is the plan of opts' bounds alone.
func newPlan(s decode.Source, opts Options) plan {
	h := s.Header
	p := plan{out: opts.Format, algorithm: opts.Algorithm, quality: opts.Quality}
	if p.out == FormatUnknown {
		p.out = defaultOutput(s.Format, h.HasAlpha)
	}
	p.animation = s.Animation()

	// Target size of one frame; never enlarged.
	swapped := !p.animation && h.Orientation >= 5
	var scale float64
	if opts.Fit.Crops() && opts.Width > 0 && opts.Height > 0 {
		scale = p.shapeBox(h, opts, swapped)
	} else {
		scale = fitScale(h, opts, swapped)
		p.width = max(1, int(math.Round(float64(h.Width)*scale)))
		p.height = max(1, int(math.Round(float64(h.PageHeight)*scale)))
	}
	p.shape.background = opts.Background.Or(White).RGBA
	p.shape.blur = opts.Blur

	shortest := min(h.Width, h.PageHeight)
	p.load = decode.Load{Pages: 1, Shrink: shrinkOnLoad(s.Format, scale, opts.Algorithm, shortest)}
	if p.animation && spec(p.out).animated {
		p.load.Pages = -1
	}
	if s.Format == FormatWebP || s.Format == FormatSVG {
		p.load.Scale = loadScale(s.Format, scale, opts.Algorithm, shortest)
	}
	return p
}

// fitScale is the largest scale, at most 1, at which the frame fits every
// bound of opts. swapped: the output is the frame turned a quarter (EXIF
// orientations 5 to 8), so Width bounds the frame's height.
func fitScale(h decode.Header, opts Options, swapped bool) float64 {
	w, ht := h.Width, h.PageHeight
	if swapped {
		w, ht = ht, w
	}
	scale := 1.0
	for _, b := range []struct{ bound, side int }{
		{opts.Box, max(w, ht)}, {opts.Width, w}, {opts.Height, ht},
	} {
		if b.bound > 0 && b.bound < b.side {
			scale = min(scale, float64(b.bound)/float64(b.side))
		}
	}
	return scale
}

// defaultOutput keeps web formats; the rest become PNG with alpha, else JPEG.
func defaultOutput(in Format, hasAlpha bool) Format {
	if in.CanEncode() {
		return in
	}
	if hasAlpha {
		return FormatPNG
	}
	return FormatJPEG
}

// shrinkOnLoad picks libjpeg's DCT-domain shrink (1, 2, 4 or 8), the biggest
// single lever on JPEG cost. auto and thumbnail shrink as far as the target
// allows; lanczos3 keeps a 2× margin for the final filter, as vips_thumbnail does.
func shrinkOnLoad(in Format, scale float64, a Algorithm, shortest int) int {
	if in != FormatJPEG || scale >= 1 {
		return 1
	}
	factor := 1 / scale
	if a == AlgorithmLanczos3 {
		factor /= 2
	}
	for _, s := range []int{8, 4, 2} {
		// libvips 8.14's jpegload aborts the process (a "bad dimensions"
		// assertion) when the shrink leaves a side of no pixels.
		if factor >= float64(s) && shortest >= s {
			return s
		}
	}
	return 1
}

// loadScale is the scale WebP and SVG loaders render at directly.
func loadScale(in Format, scale float64, a Algorithm, shortest int) float64 {
	s := scale // SVG is vector: render at the final size
	if in == FormatWebP && a == AlgorithmLanczos3 {
		s = min(1, 2*scale)
	}
	// A side scaled under a pixel is refused (webpload: "bad image
	// dimensions") or empty; two pixels leave the resize something to do.
	return max(s, min(1, 2/float64(shortest)))
}
