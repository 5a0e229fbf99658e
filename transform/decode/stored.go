package decode

import (
	"context"
	"fmt"
	"time"

	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// Stored is a load of a source whose decode is kept beyond this process
// (transform's persisted decodes): Load returns the kept decode, checked
// against the load, or nil when there is none.
type Stored struct {
	Load func() *vips.Image
}

// DecodeStored is Decode for a load whose decode is kept beyond the
// process. The render that would decode tries st.Load first (inside the
// decode cache's flight, so concurrent renders of the source share it);
// when nothing is kept it decodes the source into memory, never streamed,
// and made is a view of that decode for the caller to keep: the caller
// closes it. The pixels and metadata are the same either way, so are the
// renders (a view of a held decode renders byte for byte as a stream).
func (d *Decoder) DecodeStored(ctx context.Context, s Source, l Load, gate Gate, st Stored) (img *Image, made *vips.Image, err error) {
	decodeOnce := func(inMemory func(*vips.Image) error) (*vips.Image, error) {
		if im := st.Load(); im != nil {
			return im, nil
		}
		im, err := hold(s, l, inMemory)
		if err == nil {
			made, err = im.Copy(nil)
			if err != nil {
				im.Close()
				return nil, &Error{Step: "copy", Err: err}
			}
		}
		return im, err
	}
	if !d.fits(s, l) {
		im, err := decodeOnce(vipsx.HoldInMemory)
		if err != nil {
			return nil, nil, err
		}
		return &Image{Image: im}, made, nil
	}
	ran := false
	k, err := d.cache.acquire(ctx, key{source: s.ID, load: l}, gate, func() (*vips.Image, error) {
		ran = true
		return decodeOnce(holdMapped)
	})
	if err == nil && ctx.Err() != nil {
		d.cache.release(k)
		err = canceled(ctx)
	}
	if err != nil {
		if made != nil {
			made.Close()
		}
		return nil, nil, err
	}
	// A decode the cache held already (a first render decoded it without
	// keeping it) is kept by the first render that asks to keep it: it
	// costs a save, not a decode. One made here or read back is not.
	if d.cache.handOver(k) && !ran {
		if c, err := k.img.Copy(nil); err == nil { // else: not kept, still rendered
			made = c
		}
	}
	img, err = view(k.img, func() { d.cache.release(k) })
	if err != nil && made != nil {
		made.Close()
		made = nil
	}
	return img, made, err
}

// renderedMemory and maxRendered bound what KeepsNow remembers: a load
// rendered once is remembered for a day, or until 16384 later ones push
// it out (a key is a source identity and a load: about 2 MB in all).
const (
	renderedMemory = 24 * time.Hour
	maxRendered    = 16384
)

// KeepsNow tells whether a render of s at l that finds no kept decode
// keeps the one it makes (DecodeStored), or renders as Decode would
// (DecodeUnkept): any render after the first of the same load of the same
// source (that decodes: one served by the decode cache has nothing to
// keep), so that a photo asked once costs what it did before. Keeping
// costs a render a few copies of the decode (saving it, writing it to the
// tiers: measured ~10 % of a lone progressive render, more for a
// baseline JPEG, which would otherwise stream); the long tail pays one
// more decode per load instead. Which renders keep changes the cost of
// later ones, never a byte: a kept decode renders as the source does.
func (d *Decoder) KeepsNow(s Source, l Load) bool {
	return d.renders.sighted(key{source: s.ID, load: l}, d.now())
}

// DecodeUnkept is Decode for a load whose decode is kept beyond the
// process by another render: the kept one when st has it (read by this
// render alone, outside the decode cache), else the source as Decode
// decodes it (a lone baseline JPEG streams).
func (d *Decoder) DecodeUnkept(ctx context.Context, s Source, l Load, gate Gate, st Stored) (*Image, error) {
	if im := st.Load(); im != nil {
		return &Image{Image: im}, nil
	}
	return d.Decode(ctx, s, l, gate)
}

// Matches checks that im can be s decoded at l: one frame of the size l
// decodes to, with the pixel size the header reads. A kept decode that
// does not is not used.
func (s Source) Matches(im *vips.Image, l Load) error {
	w, h := s.Header.Width, s.Header.PageHeight
	if l.Shrink > 1 {
		// The loader's size at that shrink (libvips' own rounding), from
		// its header: no pixel is decoded.
		head, err := s.load(l)
		if err != nil {
			return err
		}
		w, h = head.Width(), vipsx.PageHeight(head)
		head.Close()
	}
	if im.Width() != w || im.Height() != h || pelBytes(im) != s.Header.PelBytes {
		return fmt.Errorf("kept decode is %d×%d of %d-byte pixels, want %d×%d of %d",
			im.Width(), im.Height(), pelBytes(im), w, h, s.Header.PelBytes)
	}
	return nil
}

// HoldStored is Hold for a load whose decode is kept beyond the process:
// the kept decode when st has one, else the source decoded, with made as
// in DecodeStored.
func (d *Decoder) HoldStored(s Source, l Load, st Stored) (_ *Held, made *vips.Image, _ error) {
	if im := st.Load(); im != nil {
		return &Held{img: im}, nil, nil
	}
	held, err := d.Hold(s, l)
	if err != nil {
		return nil, nil, err
	}
	if made, err = held.img.Copy(nil); err != nil {
		held.Close()
		return nil, nil, &Error{Step: "copy", Err: err}
	}
	return held, made, nil
}
