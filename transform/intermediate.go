package transform

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"strconv"

	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
)

// The stored intermediate (issue 27). A large source's long tail — one
// more width, one more format, days apart, on any replica — would decode
// the whole original every time. Instead every variant that fits in the
// source's intermediate (the source resized to IntermediateSize on its
// longest side, in sRGB, encoded) is rendered from the intermediate's
// stored bytes: made on first need, stored in the result tiers, read back.
//
// Same URL, same bytes: which sources and variants go through it depends
// on the source (its bytes, size and dimensions) and the variant alone,
// never on arrival order or on whether the intermediate was stored
// already, because the variant is always derived from the encoded
// intermediate, decoded, even by the render that has just made it.
// Decoding the same bytes gives the same pixels on every replica.

// intermediateRule names how an intermediate is made: its encoders and
// their settings (below), its resampling. Change it whenever they change,
// so every key naming an intermediate changes with the bytes.
const intermediateRule = "i1"

// intermediateQuality is the JPEG intermediate's quality: at 90 and over
// libvips keeps full chroma resolution. Measured (luma SSIM against the
// direct render, 5120×2880 sources, 1280×720 intermediate): 0.992–0.997
// for JPEG and PNG outputs of 200–800 px, 0.98 for a 1200 px PNG; 97
// instead of 92 moved no variant by more than 0.01.
const intermediateQuality = 92

// intermediatePNGCompression: an intermediate with alpha is PNG, lossless;
// the fastest zlib level, since it is written once and read often.
const intermediatePNGCompression = 1

// maxIntermediateSize bounds IMAGE_PROXY_INTERMEDIATE_SIZE.
const maxIntermediateSize = 8192

// Intermediate is the rule of the stored intermediate, from the settings:
// what a variant's key names (request.Intermediates) so that a change of
// the settings changes the keys of exactly the variants it may change.
type Intermediate struct {
	Side     int   // IMAGE_PROXY_INTERMEDIATE_SIZE: the longest side; 0 = off
	MinBytes int64 // IMAGE_PROXY_INTERMEDIATE_MIN_SOURCE_BYTES
}

// Intermediate is c's rule.
func (c Config) Intermediate() Intermediate {
	return Intermediate{Side: c.IntermediateSize, MinBytes: c.IntermediateMinBytes}
}

// Tag is what the key of a variant that may be rendered through the
// intermediate holds: the side and the rule ("im1600.i1"); "" when off.
func (r Intermediate) Tag() string {
	if r.Side == 0 {
		return ""
	}
	return "im" + strconv.Itoa(r.Side) + "." + intermediateRule
}

// IntermediateStore keeps one source's intermediate where every replica
// finds it (the caller's result tiers, under the source's identity, so a
// replaced source never finds an old one). A render given one in Options
// goes through the intermediate whenever its variant fits in it.
type IntermediateStore interface {
	// Cached returns the intermediate when a tier on this machine holds
	// it, without waiting.
	Cached(ctx context.Context) ([]byte, bool)
	// Fetch returns the stored intermediate from any tier, or runs make
	// once for every concurrent caller and stores what it returns. The
	// caller has left its Gate: make runs in a slot of its own.
	Fetch(ctx context.Context, make func(context.Context) ([]byte, error)) ([]byte, error)
}

// intermediateSize is the intermediate of s: its width and height, and
// whether s gets one. It depends on s alone: a still raster source whose
// longest side is at least twice IntermediateSize gets one, reduced by the
// largest whole factor that keeps that side at least IntermediateSize (a
// JPEG's by its loader's shrink, 2, 4 or 8, the way a direct render
// starts), so the variants rendered from it resample almost exactly as
// they would from the source.
func (e *Engine) intermediateSize(s decode.Source) (w, h, factor int, ok bool) {
	side := e.cfg.IntermediateSize
	if side == 0 || s.Animation() || s.Format == FormatSVG {
		return 0, 0, 0, false
	}
	W, H := s.Header.Width, s.Header.PageHeight
	k := max(W, H) / side
	if k < 2 {
		return 0, 0, 0, false
	}
	if s.Format == FormatJPEG {
		k = min(8, 1<<(bits.Len(uint(k))-1))
		// The loader's size at that shrink, as a direct render gets it
		// (its header: no pixel is decoded).
		im, err := s.Stream(decode.Load{Pages: 1, Shrink: k})
		if err != nil {
			return 0, 0, 0, false
		}
		defer im.Close()
		return im.Width(), im.Height(), k, true
	}
	return max(1, int(math.Round(float64(W)/float64(k)))), max(1, int(math.Round(float64(H)/float64(k)))), k, true
}

// throughIntermediate tells whether the render of p goes through the
// intermediate of s, and its size: the caller gave a store, s gets one,
// and p's resized image (before a crop) fits in it, so the intermediate
// holds every pixel the variant needs.
func (e *Engine) throughIntermediate(s decode.Source, p plan, opts Options) (w, h int, ok bool) {
	if opts.Intermediate == nil || p.load.Pages != 1 {
		return 0, 0, false
	}
	w, h, _, ok = e.intermediateSize(s)
	return w, h, ok && p.width <= w && p.height <= h
}

// fromIntermediate renders p from the intermediate of s (w × h): the
// stored one, or one made now, always decoded from its encoded bytes.
func (e *Engine) fromIntermediate(ctx context.Context, s decode.Source, p plan, w, h int, opts Options) (Result, error) {
	data, err := e.intermediate(ctx, s, w, h, opts)
	if err != nil {
		return Result{}, err
	}
	is, err := e.open(data, intermediateID(opts.Source))
	if err != nil {
		return Result{}, internal("intermediate", err)
	}
	if is.Header.Width != w || is.Header.PageHeight != h {
		return Result{}, internal("intermediate", fmt.Errorf("stored intermediate is %d×%d, want %d×%d",
			is.Header.Width, is.Header.PageHeight, w, h))
	}
	// The source's reduction and the intermediate's shrink together are
	// the shrink the direct render loads at, and the resize after it is
	// the same: the variant resamples as it would from the source.
	_, _, k, _ := e.intermediateSize(s)
	ip := p
	ip.load = decode.Load{Pages: 1, Shrink: max(1, p.load.Shrink/k)}
	if ctx.Err() != nil {
		return Result{}, canceled(ctx)
	}
	img, err := e.decoder.Decode(ctx, is, ip.load, opts.Gate)
	if err != nil {
		return Result{}, fromDecode(err)
	}
	defer img.Close()
	// The intermediate is stored as the source is, not turned upright: the
	// plan's sizes are the source's stored orientation, and orient (last
	// of the steps) turns it as it would the source.
	if o := s.Header.Orientation; o > 1 {
		if err := img.SetOrientation(o); err != nil {
			return Result{}, internal("intermediate", err)
		}
	}
	return e.derive(ctx, is, img.Image, ip)
}

// intermediateID is the decode cache's identity of a source's
// intermediate: renders of it share its decode as they would the source's.
func intermediateID(source string) string {
	if source == "" {
		return ""
	}
	return source + "|" + intermediateRule
}

// intermediate returns the encoded intermediate of s from opts' store,
// made when no tier has it. While another render (here or on another
// replica) makes it the caller waits outside its gate.
func (e *Engine) intermediate(ctx context.Context, s decode.Source, w, h int, opts Options) ([]byte, error) {
	if data, ok := opts.Intermediate.Cached(ctx); ok {
		return data, nil
	}
	if opts.Gate != nil {
		opts.Gate.Leave()
	}
	data, err := opts.Intermediate.Fetch(ctx, func(ctx context.Context) ([]byte, error) {
		return e.makeIntermediate(ctx, s, w, h)
	})
	if opts.Gate != nil {
		if gerr := opts.Gate.Enter(ctx); gerr != nil && err == nil {
			err = fromDecode(&decode.Error{Step: "wait", Err: gerr, Canceled: true})
		}
	}
	return data, err
}

// makeIntermediate reduces s to w × h: a JPEG decoded at its shrink, any
// other source resized; then 8-bit sRGB, encoded: JPEG without chroma
// subsampling, or PNG when it has alpha.
func (e *Engine) makeIntermediate(ctx context.Context, s decode.Source, w, h int) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, canceled(ctx)
	}
	_, _, k, _ := e.intermediateSize(s)
	l := decode.Load{Pages: 1}
	if s.Format == FormatJPEG {
		l.Shrink = k
	}
	img, err := s.Stream(l)
	if err != nil {
		return nil, fromDecode(err)
	}
	defer img.Close()
	if err := resize(img, w, h, AlgorithmAuto); err != nil {
		return nil, broken(s, l, "intermediate resize", err)
	}
	if err := toSRGB(img); err != nil {
		return nil, broken(s, l, "intermediate colour", err)
	}
	data, err := encodeIntermediate(img)
	if err != nil {
		// Decoding is lazy: a truncated source often fails only here.
		return nil, broken(s, l, "intermediate encode", err)
	}
	return data, nil
}

// encodeIntermediate writes im without metadata: JPEG, or PNG with alpha.
func encodeIntermediate(im *vips.Image) ([]byte, error) {
	if im.HasAlpha() {
		return im.PngsaveBuffer(&vips.PngsaveBufferOptions{Compression: intermediatePNGCompression, Strip: true})
	}
	return im.JpegsaveBuffer(&vips.JpegsaveBufferOptions{Q: intermediateQuality, Strip: true})
}
