package transform

import (
	"context"

	"image-proxy/transform/internal/vips"
)

// NewObserved returns an Engine whose decode cache reports to obs; cfg
// must be valid.
func NewObserved(cfg Config, obs Observer) *Engine {
	e := &Engine{cfg: cfg}
	if cfg.DecodeCacheSize > 0 {
		e.decodes = newDecodeCache(cfg.DecodeCacheSize, cfg.DecodeCacheTTL, obs, e.trimIfIdle)
	}
	return e
}

// Close drops the decode cache. Renders still running free what they use
// when they finish; call it once no render runs, before Shutdown.
func (e *Engine) Close() {
	if e.decodes != nil {
		e.decodes.close()
	}
}

// DecodeCacheBytes is the memory the decode cache holds now.
func (e *Engine) DecodeCacheBytes() int64 {
	if e.decodes == nil {
		return 0
	}
	return e.decodes.bytes()
}

// trimIfIdle hands memory back once the cache emptied with no render running.
func (e *Engine) trimIfIdle() {
	if e.running.Load() == 0 {
		releaseMemory()
	}
}

// shares tells whether a source's decode goes through the decode cache
// (whether or not it is kept): still images whose loaders shrink in steps
// or not at all. WebP and SVG load at the exact output scale, so two boxes
// would never share a decode; animations would hold every frame.
func (e *Engine) shares(in Format, h header) bool {
	return e.decodes != nil && in != FormatWebP && in != FormatSVG && !(h.pages > 1 && spec(in).animated)
}

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
func (e *Engine) planFor(in Format, h header, opts Options) plan {
	p := newPlan(in, h, opts)
	if !familyShrink(in, h) || opts.Box == 0 || opts.Box >= familyBox {
		return p
	}
	wide := opts
	wide.Box = familyBox
	p.load.shrink = min(p.load.shrink, newPlan(in, h, wide).load.shrink)
	return p
}

// familyShrink tells whether a source's small boxes load at familyBox's
// shrink. Only JPEG loads with a shrink other than 1; among JPEGs, only a
// progressive one gains nothing from a finer shrink.
func familyShrink(in Format, h header) bool { return in == FormatJPEG && h.progressive }

// reusable tells whether this render's decode goes through the decode
// cache: the caller named the source, the decode fits the budget
// (estimated from the header), and it is worth keeping. A decode whose
// cost barely depends on the box (a progressive JPEG, or a format that
// always loads whole) is kept from the first render of its source. A
// baseline JPEG at its own shrink is kept only when the same load of the
// same source was asked for within the TTL: the second variant keeps it
// for the third and later, and a lone variant streams, as fast as with the
// cache off.
func (e *Engine) reusable(in Format, h header, p plan, opts Options) bool {
	if !e.shares(in, h) || opts.Source == "" {
		return false
	}
	s := int64(max(1, p.load.shrink))
	w, ht := (int64(h.width)+s-1)/s, (int64(h.pageHeight)+s-1)/s
	if w*ht*int64(h.pelBytes) > e.cfg.DecodeCacheSize {
		return false
	}
	if in != FormatJPEG || familyShrink(in, h) {
		return true
	}
	return e.decodes.wanted(decodeKey{source: opts.Source, load: p.load})
}

// renderReused renders from the cached decode of the source, decoding it
// (once for every concurrent render of the same source) when it is not
// cached.
func (e *Engine) renderReused(ctx context.Context, src []byte, in Format, p plan, opts Options) (Result, error) {
	key := decodeKey{source: opts.Source, load: p.load}
	d, err := e.decodes.acquire(ctx, key, opts.Gate, func() (*vips.Image, error) {
		img, err := load(src, in, p.load)
		if err != nil {
			return nil, broken(src, in, p.load, "load", err)
		}
		// The loader streams: without the copy every variant would decode
		// the source again as its pipeline pulled pixels.
		if err := holdMapped(img); err != nil {
			img.Close()
			return nil, broken(src, in, p.load, "decode", err)
		}
		return img, nil
	})
	if err != nil {
		return Result{}, err
	}
	defer e.decodes.release(d)
	return e.derive(ctx, src, d.img, p)
}
