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
	return e.decodes != nil && in != FormatWebP && in != FormatSVG && !(h.pages > 1 && in.spec().animated)
}

// planFor is newPlan with the decode cache's shrink rule: while the cache
// is on, every box up to familyBox loads at familyBox's shrink, so the
// variants of one source share one decode. The rule depends on the box
// alone, so whether a decode was reused never changes the pixels.
func (e *Engine) planFor(in Format, h header, opts Options) plan {
	p := newPlan(in, h, opts)
	if !e.shares(in, h) || opts.Box == 0 || opts.Box >= familyBox {
		return p
	}
	wide := opts
	wide.Box = familyBox
	p.load.shrink = min(p.load.shrink, newPlan(in, h, wide).load.shrink)
	return p
}

// reusable tells whether this render's decode may be kept: the caller named
// the source, and the decode fits the budget (estimated from the header).
func (e *Engine) reusable(in Format, h header, p plan, opts Options) bool {
	if !e.shares(in, h) || opts.Source == "" {
		return false
	}
	s := int64(max(1, p.load.shrink))
	w, ht := (int64(h.width)+s-1)/s, (int64(h.pageHeight)+s-1)/s
	return w*ht*int64(h.pelBytes) <= e.cfg.DecodeCacheSize
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
