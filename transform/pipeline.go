package transform

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

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
// sniff → header check → load with shrink-on-load → resize → orient →
// sRGB → alpha → encode.
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
	animated := pages > 1 && (in == FormatGIF || in == FormatWebP) && (out == FormatGIF || out == FormatWebP)

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
	lp := loadParams{pages: 1, shrink: shrinkOnLoad(in, scale, opts.Algorithm)}
	if animated {
		lp.pages = -1
	}
	if in == FormatWebP || in == FormatSVG {
		lp.scale = loadScale(in, scale, opts.Algorithm)
	}
	img, err := load(src, in, lp)
	if err != nil {
		return Result{}, invalid(err)
	}
	defer img.Close()

	steps := []struct {
		name string
		run  func(*vips.Image) error
	}{
		{"resize", func(im *vips.Image) error { return resize(im, targetW, targetH, opts.Algorithm) }},
		{"orient", orient},
		{"colour", toSRGB},
		{"alpha", func(im *vips.Image) error { return alpha(im, out) }},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return Result{}, errCanceled
		}
		if err := s.run(img); err != nil {
			return Result{}, invalid(fmt.Errorf("%s: %w", s.name, err))
		}
	}
	if ctx.Err() != nil {
		return Result{}, errCanceled
	}
	data, err := t.encode(img, out)
	if err != nil {
		// Lazy decoding means a truncated source often fails only here.
		return Result{}, invalid(err)
	}
	frames := pagesOf(img)
	return Result{Data: data, Format: out, Width: img.Width(), Height: pageHeightOf(img), Frames: frames}, nil
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
func shrinkOnLoad(in Format, scale float64, a Algorithm) int {
	if in != FormatJPEG || scale >= 1 {
		return 1
	}
	factor := 1 / scale
	if a == AlgorithmLanczos3 {
		factor /= 2
	}
	for _, s := range []int{8, 4, 2} {
		if factor >= float64(s) {
			return s
		}
	}
	return 1
}

// loadScale is the scale WebP and SVG loaders render at directly.
func loadScale(in Format, scale float64, a Algorithm) float64 {
	if in == FormatSVG {
		return scale // vector: render at the final size
	}
	if a == AlgorithmLanczos3 {
		return min(1, 2*scale)
	}
	return scale
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
func orient(im *vips.Image) error {
	if im.Orientation() <= 1 {
		return nil
	}
	if err := im.Autorot(nil); err != nil {
		return err
	}
	return im.RemoveOrientation()
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
