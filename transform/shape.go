package transform

import (
	"math"

	"image-proxy/imageformat"
	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// White is the background when the options give none.
var White = imageformat.White

// shape is what a render does after orient, on the upright picture at its
// resized size: the cover crop, the pad canvas, the blur. The zero value
// (with a white background) is a render of before: no step added.
type shape struct {
	fit        Fit
	w, h       int // cover and fill: the output; pad: the canvas
	gravity    Gravity
	focus      Focus
	background [4]uint8 // resolved: white when the options give none
	blur       float64
}

// shapeBox plans a cover, fill or pad box: p's resized size (stored
// orientation, as resize works before orient) and p.shape; it returns the
// scale shrink-on-load goes by. uw × uh is the upright frame.
//
// Never enlarged: for cover and fill the box is scaled down by one factor
// until it fits the source, so the output keeps the box's aspect ratio at
// the largest size the source allows; pad's canvas is the box, the picture
// inside it is not enlarged.
func (p *plan) shapeBox(h decode.Header, opts Options, swapped bool) float64 {
	uw, uh := h.Width, h.PageHeight
	if swapped {
		uw, uh = uh, uw
	}
	bw, bh := float64(opts.Width), float64(opts.Height)
	p.shape = shape{fit: opts.Fit, w: opts.Width, h: opts.Height, gravity: opts.Gravity, focus: opts.Focus}
	var rw, rh int // the resized upright frame
	var scale float64
	if opts.Fit == FitPad {
		scale = min(1, bw/float64(uw), bh/float64(uh))
		rw, rh = scaled(uw, scale, opts.Width), scaled(uh, scale, opts.Height)
	} else {
		f := min(1, float64(uw)/bw, float64(uh)/bh)
		p.shape.w, p.shape.h = scaled(opts.Width, f, uw), scaled(opts.Height, f, uh)
		// The less reduced axis decides the load: both must keep their pixels.
		scale = max(float64(p.shape.w)/float64(uw), float64(p.shape.h)/float64(uh))
		rw, rh = p.shape.w, p.shape.h
		if opts.Fit == FitCover {
			rw, rh = max(rw, scaled(uw, scale, uw)), max(rh, scaled(uh, scale, uh))
		}
	}
	p.width, p.height = rw, rh
	if swapped {
		p.width, p.height = rh, rw
	}
	return scale
}

// scaled is n × f rounded, from 1 to most.
func scaled(n int, f float64, most int) int {
	return min(max(1, int(math.Round(float64(n)*f))), most)
}

// steps are the shape's steps, after orient.
func (sh shape) steps(out Format) []step {
	var st []step
	switch sh.fit {
	case FitCover:
		st = append(st, step{"crop", sh.crop})
	case FitPad:
		st = append(st, step{"pad", func(im *vips.Image) error { return sh.pad(im, out) }})
	}
	if sh.blur > 0 {
		st = append(st, step{"blur", func(im *vips.Image) error {
			return eachFrame(im, func(f *vips.Image) error { return f.Gaussblur(sh.blur, nil) })
		}})
	}
	return st
}

// crop cuts the cover box out of every frame at one place: where the
// focal point, the gravity or (smart, entropy) libvips' measure of the
// first frame puts it.
func (sh shape) crop(im *vips.Image) error {
	w, h := im.Width(), vipsx.PageHeight(im)
	if w == sh.w && h == sh.h {
		return nil
	}
	left, top, err := sh.origin(im, w, h)
	if err != nil {
		return err
	}
	return eachFrame(im, func(f *vips.Image) error { return f.ExtractArea(left, top, sh.w, sh.h) })
}

// origin is the top left corner of the crop in a w × h frame.
func (sh shape) origin(im *vips.Image, w, h int) (left, top int, err error) {
	switch {
	case sh.focus.Set:
		return centred(sh.focus.X, w, sh.w), centred(sh.focus.Y, h, sh.h), nil
	case sh.gravity == GravitySmart || sh.gravity == GravityEntropy:
		return sh.measure(im, w, h)
	}
	ax, ay := sh.gravity.Anchor()
	return int(math.Round(float64(w-sh.w) * ax)), int(math.Round(float64(h-sh.h) * ay)), nil
}

// centred is where a span of n starts so that its centre is at the
// fraction at of size, as far as the edges allow.
func centred(at float64, size, n int) int {
	return min(max(0, int(math.Round(at*float64(size)-float64(n)/2))), size-n)
}

// measure lets libvips' smartcrop cut the first frame (attention for
// smart, entropy) and reads where it cut: every frame of an animation is
// then cut there alike.
func (sh shape) measure(im *vips.Image, w, h int) (left, top int, err error) {
	// The measure reads the frame more than once; a sequential load
	// cannot serve that, and im is at its resized size by now.
	if err := vipsx.HoldInMemory(im); err != nil {
		return 0, 0, err
	}
	first, err := im.Copy(nil)
	if err != nil {
		return 0, 0, err
	}
	defer first.Close()
	if h != im.Height() {
		if err := first.ExtractArea(0, 0, w, h); err != nil {
			return 0, 0, err
		}
	}
	o := &vips.SmartcropOptions{Interesting: vips.InterestingAttention}
	if sh.gravity == GravityEntropy {
		o.Interesting = vips.InterestingEntropy
	}
	if err := first.Smartcrop(sh.w, sh.h, o); err != nil {
		return 0, 0, err
	}
	// Where it cut, not its attention centre: entropy reports none.
	left, top = vipsx.Origin(first)
	return min(max(0, left), w-sh.w), min(max(0, top), h-sh.h), nil
}

// pad extends every frame to the canvas, the picture placed by gravity,
// the new pixels the background. A background with transparency gives an
// output that can hold it an alpha channel; JPEG takes its colour alone.
func (sh shape) pad(im *vips.Image, out Format) error {
	w, h := im.Width(), vipsx.PageHeight(im)
	if w == sh.w && h == sh.h {
		return nil
	}
	if !im.HasAlpha() && sh.background[3] < 255 && out != FormatJPEG {
		if err := im.BandjoinConst([]float64{255}); err != nil {
			return err
		}
	}
	bg := make([]float64, im.Bands())
	for i := range bg {
		bg[i] = float64(sh.background[min(i, 3)])
	}
	ax, ay := sh.gravity.Anchor()
	x, y := int(math.Round(float64(sh.w-w)*ax)), int(math.Round(float64(sh.h-h)*ay))
	return eachFrame(im, func(f *vips.Image) error {
		return f.Embed(x, y, sh.w, sh.h, &vips.EmbedOptions{Extend: vips.ExtendBackground, Background: bg})
	})
}

// eachFrame runs fn on every frame of im alike and stacks the results
// again (a still is one frame): an operation on the whole strip would
// reach across frames.
func eachFrame(im *vips.Image, fn func(*vips.Image) error) error {
	pages := vipsx.Pages(im)
	if pages == 1 {
		return fn(im)
	}
	ph := vipsx.PageHeight(im)
	frames := make([]*vips.Image, 0, pages)
	defer func() {
		for _, f := range frames {
			f.Close()
		}
	}()
	for i := range pages {
		f, err := im.Copy(nil)
		if err != nil {
			return err
		}
		frames = append(frames, f)
		if err := f.ExtractArea(0, i*ph, im.Width(), ph); err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	joined, err := vips.NewArrayjoin(frames, &vips.ArrayjoinOptions{Across: 1})
	if err != nil {
		return err
	}
	fh := frames[0].Height()
	vipsx.Take(im, joined)
	return im.SetPageHeight(fh)
}
