package transform

/*
#cgo pkg-config: vips
#include <vips/vips.h>
*/
import "C"

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"image-proxy/placeholder"
	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// Facts are what format=json answers about a source: the source itself,
// the output a render with the same options makes (when asked), and the
// placeholders a page paints while the image loads.
type Facts struct {
	Source       SourceFacts
	Output       *OutputFacts // nil unless Describe was asked for it
	Placeholders Placeholders
}

// SourceFacts describe the source as stored. Width and Height are upright
// (EXIF orientation 5 to 8 swaps them), as a render draws it; an animation
// is never turned, as a render never turns one.
type SourceFacts struct {
	Width, Height int
	Format        Format
	Bytes         int
	Orientation   int // EXIF, 1 when the file has none
	HasAlpha      bool
	Animated      bool // several frames in a format that animates
	Frames        int
	Colorspace    string // libvips' interpretation, as it names it: srgb, b-w, cmyk, rgb16, grey16, …
}

// OutputFacts are the exact dimensions (of one frame) and the format a
// Render with the same options returns, without encoding it.
type OutputFacts struct {
	Width, Height int
	Format        Format
}

// Placeholders are computed from the source decoded small (placeholder.
// MaxSide at most, with the loader's shrink-on-load where it has one),
// never from the full-size pixels; the LQIP is at most LQIPMaxBytes.
type Placeholders = placeholder.Set

// LQIPMaxBytes bounds the LQIP data URI: small enough to inline in HTML
// for every image of a page.
const LQIPMaxBytes = 1024

// lqipSides are the longest sides the LQIP is tried at, largest first,
// until its data URI fits LQIPMaxBytes; lqipQuality is its WebP quality.
var lqipSides = []int{32, 24, 16, 8}

const lqipQuality = 40

// Describe reads src's header and decodes it small for the placeholders;
// with output, it also plans the render opts asks for and reports that
// render's size and format. It shares the decode cache and opts.Gate as a
// render does.
func (e *Engine) Describe(ctx context.Context, src []byte, opts Options, output bool) (_ Facts, err error) {
	e.running.Add(1)
	defer e.idle()
	sp := stage(ctx, "transform.describe")
	defer func() { sp.End(err) }()
	s, err := e.open(src, opts.Source)
	if err != nil {
		return Facts{}, err
	}
	f := Facts{Source: sourceFacts(s)}
	if output {
		p := planFor(s, opts)
		w, h := p.outputSize(s)
		f.Output = &OutputFacts{Width: w, Height: h, Format: p.out}
	}
	small := placeholderPlan(s)
	img, made, err := e.decodeFor(ctx, s, small.load, opts)
	if err != nil {
		return Facts{}, fromDecode(err)
	}
	defer img.Close()
	f.Source.Colorspace = colourspaceName(img.Interpretation())
	err = small.process(ctx, s, img.Image)
	if err == nil {
		if f.Placeholders, err = e.placeholders(img.Image); err != nil {
			err = broken(s, small.load, "placeholders", err)
		}
	}
	e.keepDecode(made, small.load, opts, err)
	if err != nil {
		return Facts{}, err
	}
	return f, nil
}

// placeholderPlan is the small render the placeholders are computed from:
// the first frame, upright, with alpha, in a placeholder.MaxSide box, at
// the shrink-on-load (JPEG) or load scale (WebP, SVG) of that box alone —
// not the family's shrink a progressive JPEG's renders share, which keeps
// more pixels than a placeholder needs.
func placeholderPlan(s decode.Source) plan {
	return newPlan(s, Options{Box: placeholder.MaxSide, Format: FormatPNG, Algorithm: AlgorithmAuto})
}

// outputSize is the upright size of one output frame of p: the shape's
// box when it crops, stretches or pads, else the resized frame, turned
// when orient turns it.
func (p plan) outputSize(s decode.Source) (w, h int) {
	if p.shape.fit.Crops() {
		return p.shape.w, p.shape.h
	}
	if !p.animation && s.Header.Orientation >= 5 {
		return p.height, p.width
	}
	return p.width, p.height
}

func sourceFacts(s decode.Source) SourceFacts {
	h := s.Header
	w, ht := h.Width, h.PageHeight
	if !s.Animation() && h.Orientation >= 5 {
		w, ht = ht, w
	}
	return SourceFacts{Width: w, Height: ht, Format: s.Format, Bytes: len(s.Bytes), Orientation: max(1, h.Orientation),
		HasAlpha: h.HasAlpha, Animated: s.Animation(), Frames: h.Pages}
}

// placeholders computes the hashes and the LQIP from im, the small upright
// sRGB picture, which it holds in memory first: both read its pixels.
func (e *Engine) placeholders(im *vips.Image) (Placeholders, error) {
	if im.Bands() == 3 {
		if err := im.BandjoinConst([]float64{255}); err != nil {
			return Placeholders{}, err
		}
	}
	if im.Bands() != 4 || im.BandFormat() != vips.BandFormatUchar {
		return Placeholders{}, fmt.Errorf("placeholders need 8-bit RGBA, have %d bands", im.Bands())
	}
	if err := vipsx.HoldInMemory(im); err != nil {
		return Placeholders{}, err
	}
	px, err := rgba(im)
	if err != nil {
		return Placeholders{}, err
	}
	set, err := placeholder.Of(placeholder.Pixels{W: im.Width(), H: vipsx.PageHeight(im), RGBA: px})
	if err != nil {
		return Placeholders{}, err
	}
	set.LQIP, err = e.lqip(im)
	return set, err
}

// lqip is a tiny WebP of im as a data URI: the largest of lqipSides whose
// URI fits LQIPMaxBytes. The browser scales it up smoothly, which blurs it.
func (e *Engine) lqip(im *vips.Image) (string, error) {
	for _, side := range lqipSides {
		small, err := im.Copy(nil)
		if err != nil {
			return "", err
		}
		scale := min(1, float64(side)/float64(max(im.Width(), im.Height())))
		w, h := max(1, int(math.Round(float64(im.Width())*scale))), max(1, int(math.Round(float64(im.Height())*scale)))
		err = resize(small, w, h, AlgorithmLanczos3)
		var data []byte
		if err == nil {
			data, err = e.encode(small, FormatWebP, lqipQuality)
		}
		small.Close()
		if err != nil {
			return "", err
		}
		uri := "data:image/webp;base64," + base64.StdEncoding.EncodeToString(data)
		if len(uri) <= LQIPMaxBytes {
			return uri, nil
		}
	}
	return "", errors.New("no LQIP fits its bound")
}

// rgba copies im's pixels out, row by row.
func rgba(im *vips.Image) ([]byte, error) {
	var n C.size_t
	buf := C.vips_image_write_to_memory(cImage(im), &n)
	runtime.KeepAlive(im)
	if buf == nil {
		return nil, vipsx.Error()
	}
	defer C.g_free(C.gpointer(buf))
	return C.GoBytes(unsafe.Pointer(buf), C.int(n)), nil
}

// colourspaceName is libvips' own name of an interpretation
// (vips_enum_nick), so the answer reads as vipsheader's.
func colourspaceName(i vips.Interpretation) string {
	if name, ok := colourspaces[i]; ok {
		return name
	}
	return "multiband"
}

var colourspaces = map[vips.Interpretation]string{
	vips.InterpretationBW: "b-w", vips.InterpretationSrgb: "srgb", vips.InterpretationRgb: "rgb",
	vips.InterpretationCmyk: "cmyk", vips.InterpretationRgb16: "rgb16", vips.InterpretationGrey16: "grey16",
	vips.InterpretationLab: "lab", vips.InterpretationLabs: "labs", vips.InterpretationLabq: "labq",
	vips.InterpretationScrgb: "scrgb", vips.InterpretationXyz: "xyz", vips.InterpretationLch: "lch",
	vips.InterpretationCmc: "cmc", vips.InterpretationHsv: "hsv", vips.InterpretationYxy: "yxy",
	vips.InterpretationMultiband: "multiband",
}
