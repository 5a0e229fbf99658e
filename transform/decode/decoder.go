package decode

import (
	"context"
	"time"

	"image-proxy/imageformat"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// Gate bounds how many renders work at once (the caller's slots). The
// caller holds it while it renders; a render leaves it while waiting for
// another render's decode of the same source and enters again before it
// works, so a waiting render does not keep a slot idle.
type Gate interface {
	Leave()
	Enter(ctx context.Context) error
}

// Observer receives the decode cache's events; nil fields are skipped.
// It is how a caller turns them into metrics.
type Observer struct {
	DecodeLookup func(hit bool)   // a render found its decode (done or running), or decoded
	DecodeBytes  func(size int64) // bytes the cache holds, after every change
	// StoredDecode: a render read a kept decode (transform's persisted
	// decodes): used, or rejected (it did not load, or is not the
	// decode of the load asked for) and decoded instead.
	StoredDecode func(used bool)
}

// Options configure a Decoder.
type Options struct {
	Budget   int64         // bytes of decodes kept; 0 = no cache, every decode streams
	TTL      time.Duration // how long a decode is kept
	Observer Observer
	// Idle is called when expiry emptied the cache: the caller may hand
	// the memory back to the system if no render runs.
	Idle func()
	// Now is the cache's clock; nil means time.Now. Tests move time by hand.
	Now func() time.Time
	// Decoding, when set, is called before each decode the cache runs, on
	// the render that runs it: tests count decodes, and hold one so that
	// other renders find it running.
	Decoding func()
}

// Decoder hands renders their decoded source. It is safe for concurrent use.
type Decoder struct {
	cache *cache // nil when Options.Budget is 0
	// renders is which loads of baseline JPEGs were rendered once, for
	// transform's persisted decodes (KeepsNow).
	renders *sightings
	now     func() time.Time
}

// New returns a Decoder; with a budget, it keeps decodes for the next
// variants of the same source.
func New(o Options) *Decoder {
	d := &Decoder{renders: newSightingsOf(renderedMemory, maxRendered), now: o.Now}
	if d.now == nil {
		d.now = time.Now
	}
	if o.Budget > 0 {
		d.cache = newCache(o)
	}
	return d
}

// Image is a decoded source lent to one render, which may change it: its
// own streaming load, or a view of a decode shared with other renders.
// Close gives back both.
type Image struct {
	*vips.Image
	release func() // nil, or gives back the shared decode
}

// Close closes the render's image, then gives back what it shared.
func (im *Image) Close() {
	im.Image.Close()
	if im.release != nil {
		im.release()
	}
}

// Decode returns s decoded at l for one render. When the decode is worth
// keeping (keeps) it comes from the cache, decoded once for every
// concurrent render of the same source, and the render gets a view of it;
// otherwise the render gets its own load, which streams. While it waits
// for another render's decode it leaves gate (nil: none). A failure is an
// *Error.
func (d *Decoder) Decode(ctx context.Context, s Source, l Load, gate Gate) (*Image, error) {
	if !d.keeps(s, l) {
		img, err := s.load(l)
		if err != nil {
			return nil, s.Failed(l, "load", err)
		}
		return &Image{Image: img}, nil
	}
	k, err := d.cache.acquire(ctx, key{source: s.ID, load: l}, gate, func() (*vips.Image, error) {
		return hold(s, l, holdMapped)
	})
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		d.cache.release(k)
		return nil, canceled(ctx)
	}
	return view(k.img, func() { d.cache.release(k) })
}

// keeps tells whether this decode goes through the cache: the caller named
// the source, its format loads alike for every box (not WebP or SVG, which
// load at the exact output scale, nor an animation, which would hold every
// frame), the decode fits the budget (estimated from the header), and it
// is worth keeping. A decode whose cost barely depends on the box (a
// progressive JPEG, or a format that always loads whole) is kept from the
// first render of its source. A baseline JPEG at its own shrink is kept
// only when the same load of the same source was asked for within the
// TTL: the second variant keeps it for the third and later, and a lone
// variant streams, as fast as with the cache off.
func (d *Decoder) keeps(s Source, l Load) bool {
	if s.Format == imageformat.WebP || s.Format == imageformat.SVG || s.Animation() || !d.fits(s, l) {
		return false
	}
	if s.Format != imageformat.JPEG || s.ProgressiveJPEG() {
		return true
	}
	return d.cache.wanted(key{source: s.ID, load: l})
}

// fits tells whether the cache may keep s decoded at l: there is a cache,
// the caller named the source, and the decode fits the budget (estimated
// from the header).
func (d *Decoder) fits(s Source, l Load) bool {
	if d.cache == nil || s.ID == "" {
		return false
	}
	w, h := s.DecodedSize(l)
	return int64(w)*int64(h)*int64(s.Header.PelBytes) <= d.cache.budget
}

// DecodedSize is at least the size of one frame of s decoded at l with a
// shrink (Scale unset), from the header alone: a shrunk side rounded up.
func (s Source) DecodedSize(l Load) (w, h int) {
	sh := max(1, l.Shrink)
	return (s.Header.Width + sh - 1) / sh, (s.Header.PageHeight + sh - 1) / sh
}

// Held is a source decoded into memory at one load, for several renders
// to take views of (transform's RenderMany). It is not in the cache.
type Held struct{ img *vips.Image }

// Hold decodes s at l into memory. Close it when every view is taken.
func (d *Decoder) Hold(s Source, l Load) (*Held, error) {
	img, err := hold(s, l, vipsx.HoldInMemory)
	if err != nil {
		return nil, err
	}
	return &Held{img: img}, nil
}

// View is a render's own image over the held pixels.
func (h *Held) View() (*Image, error) { return view(h.img, nil) }

// Close frees the pixels once the last view is closed.
func (h *Held) Close() { h.img.Close() }

// Close drops every kept decode; renders still using one free it when
// they finish.
func (d *Decoder) Close() {
	if d.cache != nil {
		d.cache.close()
	}
}

// Bytes is the memory the cache holds now.
func (d *Decoder) Bytes() int64 {
	if d.cache == nil {
		return 0
	}
	return d.cache.bytes()
}

// hold loads s at l and decodes every pixel into memory with inMemory. The
// loader streams: without the copy every render sharing the decode would
// decode the source again as its pipeline pulled pixels. A failure in the
// copy is the decode's: the loaders fail on error.
func hold(s Source, l Load, inMemory func(*vips.Image) error) (*vips.Image, error) {
	img, err := s.load(l)
	if err != nil {
		return nil, s.Failed(l, "load", err)
	}
	if err := inMemory(img); err != nil {
		img.Close()
		return nil, s.Failed(l, "decode", err)
	}
	return img, nil
}

// view is a render's own image over shared pixels: every step replaces
// the view's image rather than changing it, so the shared pixels and their
// metadata stay as loaded for the next render.
func view(shared *vips.Image, release func()) (*Image, error) {
	img, err := shared.Copy(nil)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, &Error{Step: "copy", Err: err}
	}
	return &Image{Image: img, release: release}, nil
}

func canceled(ctx context.Context) *Error {
	return &Error{Step: "wait", Err: context.Cause(ctx), Canceled: true}
}
