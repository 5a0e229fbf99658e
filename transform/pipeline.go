package transform

/*
#cgo pkg-config: vips
#include <vips/vips.h>

// upright holds in's pixels in memory and turns them there. A rotation
// reads its input out of order, which a sequentially loaded pipeline
// cannot serve; by now in is at its output size, so the copy is small.
static VipsImage *upright(VipsImage *in) {
	VipsImage *mem = vips_image_copy_memory(in);
	if (!mem)
		return NULL;
	VipsImage *out = NULL;
	int rc = vips_autorot(mem, &out, NULL);
	g_object_unref(mem);
	return rc ? NULL : out;
}
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

// Transformer renders with one set of encoder settings. It holds no libvips
// state and is safe for concurrent use.
type Transformer struct {
	cfg         Config
	running     atomic.Int64
	trimPending atomic.Bool
}

// trimAfter is how long renders must have stopped before freed memory is
// handed back: long enough never to fire under steady load (the next render
// would only fault the pages back in), short enough that RSS falls soon
// after a burst.
const trimAfter = 2 * time.Second

// New returns a Transformer; cfg must be valid.
func New(cfg Config) *Transformer { return &Transformer{cfg: cfg} }

// idle is called when a render ends; the last one out schedules a trim.
func (t *Transformer) idle() {
	if t.running.Add(-1) != 0 || !t.trimPending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(trimAfter, func() {
		t.trimPending.Store(false)
		if t.running.Load() == 0 {
			releaseMemory()
		}
	})
}

// Validate checks every setting against its range.
func (c Config) Validate() error {
	for _, r := range []struct {
		name      string
		v, lo, hi int
	}{
		{"JPEG quality", c.JPEGQuality, 0, 100},
		{"WebP quality", c.WebPQuality, 0, 100},
		{"WebP effort", c.WebPEffort, 0, 6},
		{"AVIF quality", c.AVIFQuality, 0, 100},
		{"AVIF speed", c.AVIFSpeed, 1, 10},
		{"PNG compression", c.PNGCompression, 0, 9},
	} {
		if r.v < r.lo || r.v > r.hi {
			return fmt.Errorf("%s must be from %d to %d, not %d", r.name, r.lo, r.hi, r.v)
		}
	}
	if c.MaxSourcePixels < 1 {
		return errors.New("the source pixel limit must be at least 1")
	}
	return nil
}

var (
	errCanceled    = &Error{Kind: KindCanceled, Msg: "the request was cancelled"}
	errUnsupported = &Error{Kind: KindUnsupported, Msg: "the file is not an image type this server handles"}
)

func invalid(err error) error {
	return &Error{Kind: KindInvalidImage, Msg: "The image is corrupt or truncated and cannot be transformed.", Err: err}
}

func internal(step string, err error) error {
	return &Error{Kind: KindInternal, Msg: "The image could not be processed.", Err: fmt.Errorf("%s: %w", step, err)}
}

// Render decodes src, fits it in opts.Box, and encodes it. The steps:
// sniff → header check → load with shrink-on-load → resize → sRGB → alpha
// → orient → encode.
func (t *Transformer) Render(ctx context.Context, src []byte, opts Options) (Result, error) {
	t.running.Add(1)
	defer t.idle()
	in := Sniff(src[:min(len(src), 4096)])
	if in == FormatUnknown {
		return Result{}, errUnsupported
	}

	// Header: the named loader only reads the header until pixels are needed.
	head, err := load(src, in, loadParams{pages: 1})
	if err != nil {
		return Result{}, invalid(err)
	}
	width, pageHeight, pages, hasAlpha := head.Width(), pageHeightOf(head), framesInFile(head), head.HasAlpha()
	head.Close()
	if int64(width)*int64(pageHeight)*int64(pages) > t.cfg.MaxSourcePixels {
		return Result{}, &Error{Kind: KindTooLarge,
			Msg: fmt.Sprintf("The image has more than %d pixels (width × height × frames).", t.cfg.MaxSourcePixels)}
	}

	out := opts.Format
	if out == FormatUnknown {
		out = defaultOutput(in, hasAlpha)
	}
	animation := pages > 1 && (in == FormatGIF || in == FormatWebP)
	animated := animation && (out == FormatGIF || out == FormatWebP)

	// Target size of one frame; never enlarged.
	scale := 1.0
	if longest := max(width, pageHeight); opts.Box > 0 && opts.Box < longest {
		scale = float64(opts.Box) / float64(longest)
	}
	targetW := max(1, int(math.Round(float64(width)*scale)))
	targetH := max(1, int(math.Round(float64(pageHeight)*scale)))

	if ctx.Err() != nil {
		return Result{}, errCanceled
	}
	shortest := min(width, pageHeight)
	lp := loadParams{pages: 1, shrink: shrinkOnLoad(in, scale, opts.Algorithm, shortest)}
	if animated {
		lp.pages = -1
	}
	if in == FormatWebP || in == FormatSVG {
		lp.scale = loadScale(in, scale, opts.Algorithm, shortest)
	}
	img, err := load(src, in, lp)
	if err != nil {
		return Result{}, broken(src, in, lp, "load", err)
	}
	defer img.Close()

	steps := []struct {
		name string
		run  func(*vips.Image) error
	}{
		{"resize", func(im *vips.Image) error { return resize(im, targetW, targetH, opts.Algorithm) }},
		{"colour", toSRGB},
		{"alpha", func(im *vips.Image) error { return alpha(im, out) }},
		// Last, so the copy it makes is of the smallest pixels: output
		// size, 8-bit, flattened.
		{"orient", func(im *vips.Image) error {
			if animation {
				// Not rotated, whichever frames are kept: the same
				// source comes out the same way up as GIF, WebP or a still.
				return nil
			}
			return orient(im)
		}},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return Result{}, errCanceled
		}
		if err := s.run(img); err != nil {
			return Result{}, broken(src, in, lp, s.name, err)
		}
	}
	if ctx.Err() != nil {
		return Result{}, errCanceled
	}
	data, err := t.encode(img, out)
	if err != nil {
		// Decoding is lazy: a truncated source often fails only here.
		return Result{}, broken(src, in, lp, "encode", err)
	}
	frames := pagesOf(img)
	return Result{Data: data, Format: out, Width: img.Width(), Height: pageHeightOf(img), Frames: frames}, nil
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

type loadParams struct {
	pages  int     // 1, or -1 for every frame
	shrink int     // JPEG only
	scale  float64 // WebP and SVG only; 0 = 1
}

// load calls the loader for in by name; nothing else ever parses src.
func load(src []byte, in Format, p loadParams) (*vips.Image, error) {
	// Sequential access lets libvips stream the decode through the pipeline
	// instead of holding the whole decoded image.
	const access = vips.AccessSequential
	// Truncated or corrupt data is an error rather than grey filling.
	const failOn = vips.FailOnError
	scale := p.scale
	if scale == 0 {
		scale = 1
	}
	switch in {
	case FormatJPEG:
		return vips.NewJpegloadBuffer(src, &vips.JpegloadBufferOptions{Shrink: max(1, p.shrink), Access: access, FailOn: failOn})
	case FormatPNG:
		return vips.NewPngloadBuffer(src, &vips.PngloadBufferOptions{Access: access, FailOn: failOn})
	case FormatWebP:
		return vips.NewWebploadBuffer(src, &vips.WebploadBufferOptions{N: p.pages, Scale: scale, Access: access, FailOn: failOn})
	case FormatGIF:
		return vips.NewGifloadBuffer(src, &vips.GifloadBufferOptions{N: p.pages, Access: access, FailOn: failOn})
	case FormatAVIF, FormatHEIF:
		return vips.NewHeifloadBuffer(src, &vips.HeifloadBufferOptions{N: 1, Access: access, FailOn: failOn})
	case FormatTIFF:
		return vips.NewTiffloadBuffer(src, &vips.TiffloadBufferOptions{N: 1, Access: access, FailOn: failOn})
	case FormatJXL:
		return vips.NewJxlloadBuffer(src, &vips.JxlloadBufferOptions{Access: access, FailOn: failOn})
	case FormatSVG:
		// Always from memory: from a path, librsvg would resolve
		// references to files beside it.
		return vips.NewSvgloadBuffer(src, &vips.SvgloadBufferOptions{Dpi: 72, Scale: scale, Access: access, FailOn: failOn})
	}
	return nil, errors.New("no loader")
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
	out := C.upright(cImage(im))
	runtime.KeepAlive(im)
	if out == nil {
		return vipsError()
	}
	adopt(im, out)
	return im.RemoveOrientation()
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
