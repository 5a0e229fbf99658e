package transform

import (
	"context"
	"fmt"

	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// The pipeline reads top to bottom, one stage a file below it:
//
//	open   sniff (magic.go), the header (decode), the pixel limit
//	plan   every decision from the header and the options (plan.go)
//	decode the source at the plan's load, from the one place that loads
//	       (decode: streamed, or shared through the decode cache)
//	steps  resize, sRGB, alpha, orient, on the render's own image (steps.go)
//	encode the output format's saver (encode.go)
//
// RenderMany (many.go) runs the same stages with one decode per load.

// Render decodes src, fits it in opts' bounds, and encodes it.
func (e *Engine) Render(ctx context.Context, src []byte, opts Options) (_ Result, err error) {
	e.running.Add(1)
	defer e.idle()
	dec := stage(ctx, "transform.decode")
	defer func() { dec.End(err) }() // a failed decode; ended below when it succeeds
	s, err := e.open(src, opts.Source)
	if err != nil {
		return Result{}, err
	}
	p := planFor(s, opts)
	if ctx.Err() != nil {
		return Result{}, canceled(ctx)
	}
	img, made, err := e.decodeFor(ctx, s, p.load, opts)
	if err != nil {
		return Result{}, fromDecode(err)
	}
	dec.End(nil)
	defer img.Close()
	res, err := e.derive(ctx, s, img.Image, p)
	// After the render: the response does not wait for the decode's keeping.
	e.keepDecode(made, p.load, opts, err)
	return res, err
}

// open sniffs src and reads its header, refusing what no render decodes:
// a type off the allow-list, a header that does not read, a source over
// the pixel limit. id is the caller's identity of src (Options.Source).
func (e *Engine) open(src []byte, id string) (decode.Source, error) {
	in := Sniff(src[:min(len(src), 4096)])
	if in == FormatUnknown {
		return decode.Source{}, unsupported()
	}
	f := spec(in)
	s := decode.Source{Format: in, Loader: f.load, Animated: f.animated, ID: id, Bytes: src}
	h, err := s.ReadHeader()
	if err != nil {
		return decode.Source{}, invalid(err)
	}
	if err := e.checkPixels(h); err != nil {
		return decode.Source{}, err
	}
	s.Header = h
	return s, nil
}

// checkPixels refuses a source over the limit before any pixel is decoded.
func (e *Engine) checkPixels(h decode.Header) error {
	n := int64(h.Width) * int64(h.PageHeight) * int64(h.Pages)
	if n <= e.cfg.MaxSourcePixels {
		return nil
	}
	return &Error{Kind: KindTooLarge, Limit: e.cfg.MaxSourcePixels,
		Err: fmt.Errorf("%d×%d×%d pixels, limit %d", h.Width, h.PageHeight, h.Pages, e.cfg.MaxSourcePixels)}
}

// derive runs p's steps on img, the render's own image of s decoded at
// p.load, and encodes it.
func (e *Engine) derive(ctx context.Context, s decode.Source, img *vips.Image, p plan) (Result, error) {
	if err := p.process(ctx, s, img); err != nil {
		return Result{}, err
	}
	return e.finish(ctx, s, img, p)
}

// finish encodes img into the Result.
func (e *Engine) finish(ctx context.Context, s decode.Source, img *vips.Image, p plan) (_ Result, err error) {
	sp := stage(ctx, "transform.encode")
	defer func() { sp.End(err) }()
	sp.Str("image.format", p.out.String())
	if ctx.Err() != nil {
		return Result{}, canceled(ctx)
	}
	data, err := e.encode(img, p.out, p.quality)
	if err != nil {
		// Decoding is lazy: a truncated source often fails only here.
		return Result{}, broken(s, p.load, "encode", err)
	}
	return Result{Data: data, Format: p.out, Width: img.Width(), Height: vipsx.PageHeight(img), Frames: vipsx.Pages(img)}, nil
}
