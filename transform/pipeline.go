package transform

/*
#cgo pkg-config: vips
#include <vips/vips.h>

static VipsImage *to_memory(VipsImage *in) { return vips_image_copy_memory(in); }
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"image-proxy/transform/internal/vips"
)

// Engine renders with one set of encoder settings. It holds no libvips
// state and is safe for concurrent use.
type Engine struct {
	cfg         Config
	running     atomic.Int64
	trimPending atomic.Bool
	decodes     *decodeCache // nil when IMAGE_PROXY_DECODE_CACHE_SIZE is 0
}

// trimAfter is how long renders must have stopped before freed memory is
// handed back: long enough never to fire under steady load (the next render
// would only fault the pages back in), short enough that RSS falls soon
// after a burst.
const trimAfter = 2 * time.Second

// New returns an Engine; cfg must be valid.
func New(cfg Config) *Engine { return NewObserved(cfg, Observer{}) }

// idle is called when a render ends; the last one out schedules a trim.
func (e *Engine) idle() {
	if e.running.Add(-1) != 0 || !e.trimPending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(trimAfter, func() {
		e.trimPending.Store(false)
		if e.running.Load() == 0 {
			releaseMemory()
		}
	})
}

func unsupported() error {
	return &Error{Kind: KindUnsupported, Err: errors.New("no format on the allow-list matches the first bytes")}
}

func canceled(ctx context.Context) error {
	return &Error{Kind: KindCanceled, Err: context.Cause(ctx)}
}

func invalid(err error) error { return &Error{Kind: KindInvalidImage, Err: err} }

func internal(step string, err error) error {
	return &Error{Kind: KindInternal, Err: fmt.Errorf("%s: %w", step, err)}
}

// Render decodes src, fits it in opts.Box, and encodes it: sniff → read
// the header → plan → load with shrink-on-load → process (resize, sRGB,
// alpha, orient) → encode.
func (e *Engine) Render(ctx context.Context, src []byte, opts Options) (_ Result, err error) {
	e.running.Add(1)
	defer e.idle()
	dec := stage(ctx, "transform.decode")
	defer func() { dec.End(err) }() // a failed decode; ended below when it succeeds
	in := Sniff(src[:min(len(src), 4096)])
	if in == FormatUnknown {
		return Result{}, unsupported()
	}
	h, err := readHeader(src, in)
	if err != nil {
		return Result{}, invalid(err)
	}
	if err := e.checkPixels(h); err != nil {
		return Result{}, err
	}
	p := e.planFor(in, h, opts)
	if ctx.Err() != nil {
		return Result{}, canceled(ctx)
	}
	if e.reusable(in, h, p, opts) {
		return e.renderReused(ctx, src, in, p, opts)
	}
	img, err := load(src, in, p.load)
	if err != nil {
		return Result{}, broken(src, in, p.load, "load", err)
	}
	dec.End(nil)
	defer img.Close()
	if err := p.process(ctx, src, img); err != nil {
		return Result{}, err
	}
	return e.finish(ctx, src, img, p)
}

// header is what the source's header says, before any pixel is decoded.
type header struct {
	width, pageHeight int
	pages             int // frames in the file
	hasAlpha          bool
	pelBytes          int // bands × sample size, as loaded
	orientation       int // EXIF orientation, 0 or 1 when none
	// progressive: a JPEG in several scans. libjpeg decodes every scan
	// whatever the shrink, so a finer shrink saves it little (reuse.go).
	progressive bool
}

// readHeader reads the header only: the named loader decodes nothing until
// pixels are asked for.
func readHeader(src []byte, in Format) (header, error) {
	head, err := load(src, in, loadParams{pages: 1})
	if err != nil {
		return header{}, err
	}
	defer head.Close()
	return header{width: head.Width(), pageHeight: pageHeightOf(head), pages: framesInFile(head), hasAlpha: head.HasAlpha(),
		pelBytes: pelBytes(head), orientation: head.Orientation(), progressive: interlaced(head)}, nil
}

// interlaced reads the flag libvips' JPEG, PNG and GIF loaders set for a
// progressive or interlaced file; absent means sequential.
func interlaced(im *vips.Image) bool {
	v, err := im.GetInt("interlaced")
	return err == nil && v != 0
}

// checkPixels refuses a source over the limit before any pixel is decoded.
func (e *Engine) checkPixels(h header) error {
	n := int64(h.width) * int64(h.pageHeight) * int64(h.pages)
	if n <= e.cfg.MaxSourcePixels {
		return nil
	}
	return &Error{Kind: KindTooLarge, Limit: e.cfg.MaxSourcePixels,
		Err: fmt.Errorf("%d×%d×%d pixels, limit %d", h.width, h.pageHeight, h.pages, e.cfg.MaxSourcePixels)}
}

// plan is every decision Render takes from the header and the options.
type plan struct {
	in, out       Format
	width, height int // of one output frame
	algorithm     Algorithm
	quality       int // Options.Quality: 0 = the format's setting
	// animation: the source has several frames in an animated format,
	// whether or not the output keeps them.
	animation bool
	load      loadParams
}

func newPlan(in Format, h header, opts Options) plan {
	p := plan{in: in, out: opts.Format, algorithm: opts.Algorithm, quality: opts.Quality}
	if p.out == FormatUnknown {
		p.out = defaultOutput(in, h.hasAlpha)
	}
	p.animation = h.pages > 1 && spec(in).animated

	// Target size of one frame; never enlarged.
	scale := fitScale(h, opts, !p.animation && h.orientation >= 5)
	p.width = max(1, int(math.Round(float64(h.width)*scale)))
	p.height = max(1, int(math.Round(float64(h.pageHeight)*scale)))

	shortest := min(h.width, h.pageHeight)
	p.load = loadParams{pages: 1, shrink: shrinkOnLoad(in, scale, opts.Algorithm, shortest)}
	if p.animation && spec(p.out).animated {
		p.load.pages = -1
	}
	if in == FormatWebP || in == FormatSVG {
		p.load.scale = loadScale(in, scale, opts.Algorithm, shortest)
	}
	return p
}

// fitScale is the largest scale, at most 1, at which the frame fits every
// bound of opts. swapped: the output is the frame turned a quarter (EXIF
// orientations 5 to 8), so Width bounds the frame's height.
func fitScale(h header, opts Options, swapped bool) float64 {
	w, ht := h.width, h.pageHeight
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

type step struct {
	name string
	run  func(*vips.Image) error
}

func (p plan) steps() []step {
	return []step{
		{"resize", func(im *vips.Image) error { return resize(im, p.width, p.height, p.algorithm) }},
		{"colour", toSRGB},
		{"alpha", func(im *vips.Image) error { return alpha(im, p.out) }},
		// Last, so the copy it makes is of the smallest pixels: output
		// size, 8-bit, flattened.
		{"orient", func(im *vips.Image) error {
			if p.animation {
				// Not rotated, whichever frames are kept: the same
				// source comes out the same way up as GIF, WebP or a still.
				return nil
			}
			return orient(im)
		}},
	}
}

// process runs the steps on img in place, checking ctx between them.
func (p plan) process(ctx context.Context, src []byte, img *vips.Image) (err error) {
	sp := stage(ctx, "transform.resize")
	defer func() { sp.End(err) }()
	sp.Int("image.width", p.width)
	sp.Int("image.height", p.height)
	for _, s := range p.steps() {
		if ctx.Err() != nil {
			return canceled(ctx)
		}
		if err := s.run(img); err != nil {
			return broken(src, p.in, p.load, s.name, err)
		}
	}
	return nil
}

// finish encodes img into the Result.
func (e *Engine) finish(ctx context.Context, src []byte, img *vips.Image, p plan) (_ Result, err error) {
	sp := stage(ctx, "transform.encode")
	defer func() { sp.End(err) }()
	sp.Str("image.format", p.out.String())
	if ctx.Err() != nil {
		return Result{}, canceled(ctx)
	}
	data, err := e.encode(img, p.out, p.quality)
	if err != nil {
		// Decoding is lazy: a truncated source often fails only here.
		return Result{}, broken(src, p.in, p.load, "encode", err)
	}
	return Result{Data: data, Format: p.out, Width: img.Width(), Height: pageHeightOf(img), Frames: pagesOf(img)}, nil
}

// broken classifies a failure after the header loaded. Only a source that
// does not decode is the client's problem (422); when it decodes, the
// failure is ours (500) and err, libvips' text, goes to the log. The extra
// decode runs on this error path only.
func broken(src []byte, in Format, lp loadParams, step string, err error) error {
	if derr := decodes(src, in, lp); derr != nil {
		return invalid(fmt.Errorf("%s: %w (decoding the source: %v)", step, err, derr))
	}
	return internal(step, err)
}

// decodes runs the render's own load (same loader, shrink and fail-on
// setting) over every pixel, and nothing else: what fails here is the file.
// The pixels stream in order into a sum, so nothing can read out of order
// and memory stays as small as a render's.
func decodes(src []byte, in Format, lp loadParams) error {
	im, err := load(src, in, lp)
	if err != nil {
		return err
	}
	defer im.Close()
	_, err = im.Avg()
	return err
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

// framesInFile is the source's frame count, whatever was loaded.
func framesInFile(im *vips.Image) int {
	if n, err := im.GetInt("n-pages"); err == nil && n > 1 {
		return n
	}
	return 1
}

// pagesOf is the number of frames stacked in this image.
func pagesOf(im *vips.Image) int { return im.Height() / pageHeightOf(im) }

func pageHeightOf(im *vips.Image) int {
	if ph := im.PageHeight(); ph > 0 && ph <= im.Height() && im.Height()%ph == 0 {
		return ph
	}
	return im.Height()
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

// resize brings one frame to w×h (every frame of an animation alike).
func resize(im *vips.Image, w, h int, a Algorithm) error {
	pages := pagesOf(im)
	ph := pageHeightOf(im)
	if im.Width() == w && ph == h {
		return nil
	}
	kernel := vips.KernelLanczos3
	if a == AlgorithmThumbnail {
		kernel = vips.KernelLinear
	}
	hscale := float64(w) / float64(im.Width())
	vscale := float64(h) / float64(ph)
	if err := im.Resize(hscale, &vips.ResizeOptions{Kernel: kernel, Vscale: vscale}); err != nil {
		return err
	}
	if pages > 1 {
		if im.Height() != h*pages {
			return fmt.Errorf("animation resized to %d rows, want %d", im.Height(), h*pages)
		}
		return im.SetPageHeight(h)
	}
	return nil
}

// orient applies the EXIF orientation so the output is upright without it.
// libheif applies HEIF's irot and imir itself, and heifload then drops the
// tag, so HEIF sources come here already upright and untagged.
func orient(im *vips.Image) error {
	if im.Orientation() <= 1 {
		return nil
	}
	// A rotation reads its input out of order, which a sequentially loaded
	// pipeline cannot serve; by now im is at its output size, so the copy
	// is small.
	if err := holdInMemory(im); err != nil {
		return err
	}
	if err := im.Autorot(nil); err != nil {
		return err
	}
	return im.RemoveOrientation()
}

// holdInMemory decodes every pixel of im into memory and makes im hold
// that copy.
func holdInMemory(im *vips.Image) error {
	out := C.to_memory(cImage(im))
	runtime.KeepAlive(im)
	if out == nil {
		return vipsError()
	}
	adopt(im, out)
	return nil
}

// adopt makes im hold out, releasing what it held: the bindings' own
// setImage, which they do not export (they have no copy_memory either).
// cImage reads the same field.
func adopt(im *vips.Image, out *C.VipsImage) {
	v := reflect.ValueOf(im).Elem()
	field := func(name string, kind reflect.Kind) unsafe.Pointer {
		f := v.FieldByName(name)
		if f.Kind() != kind {
			panic("vips.Image has no " + kind.String() + " field " + name)
		}
		return unsafe.Pointer(f.UnsafeAddr())
	}
	p := (**C.VipsImage)(field("image", reflect.Pointer))
	old := *p
	*p = out
	// The cached page height belongs to the old image.
	*(*int)(field("pageHeight", reflect.Int)) = 0
	C.g_object_unref(C.gpointer(old))
}

// toSRGB converts every source to 8-bit sRGB: through the embedded ICC
// profile when there is one (CMYK, Adobe RGB, Display P3), else libvips'
// own conversions (fallback CMYK profile, 16-bit and greyscale).
func toSRGB(im *vips.Image) error {
	if im.HasICCProfile() {
		err := im.IccTransform("srgb", &vips.IccTransformOptions{Embedded: true, Intent: vips.IntentRelative, Depth: 8})
		if err == nil {
			// Now plain sRGB: drop the profile (savers would otherwise
			// embed libvips' sRGB profile, kilobytes per image).
			return im.RemoveICCProfile()
		}
		// A broken profile is no reason to refuse the image.
	}
	if im.Interpretation() != vips.InterpretationSrgb || im.BandFormat() != vips.BandFormatUchar {
		return im.Colourspace(vips.InterpretationSrgb, nil)
	}
	return nil
}

// alpha flattens onto white for JPEG, the one output without transparency.
func alpha(im *vips.Image, out Format) error {
	if out != FormatJPEG || !im.HasAlpha() {
		return nil
	}
	return im.Flatten(&vips.FlattenOptions{Background: []float64{255, 255, 255}})
}
