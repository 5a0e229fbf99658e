package transform

import (
	"context"

	"image-proxy/transform/internal/vips"
)

// RenderMany renders every option from one decode of src and returns one
// Result and one error per option, in the order of opts; exactly one of the
// two is set for each.
//
// Each result matches Render's for the same option in format, dimensions
// and orientation. The pixels can differ slightly where Render alone would
// have shrunk on load further: the decode here is at the smallest shrink
// any option asks for, so that the largest variant loses nothing.
//
// The decoded image is held in memory while the variants are derived: at
// most the source's pixels at that shrink, so never over MaxSourcePixels
// (times bands and sample size). Animated sources are rendered one option
// at a time through Render: holding every frame would cost more than the
// decode it saves.
func (e *Engine) RenderMany(ctx context.Context, src []byte, opts []Options) ([]Result, []error) {
	results := make([]Result, len(opts))
	errs := make([]error, len(opts))
	if len(opts) == 0 {
		return results, errs
	}
	fail := func(err error) ([]Result, []error) {
		for i := range errs {
			errs[i] = err
		}
		return results, errs
	}
	e.running.Add(1)
	defer e.idle()

	in := Sniff(src[:min(len(src), 4096)])
	if in == FormatUnknown {
		return fail(unsupported())
	}
	h, err := readHeader(src, in)
	if err != nil {
		return fail(invalid(err))
	}
	if err := e.checkPixels(h); err != nil {
		return fail(err)
	}
	if h.pages > 1 && in.spec().animated {
		for i, o := range opts {
			results[i], errs[i] = e.Render(ctx, src, o)
		}
		return results, errs
	}

	plans := make([]plan, len(opts))
	for i, o := range opts {
		plans[i] = e.planFor(in, h, o)
	}
	lp := sharedLoad(plans)
	if ctx.Err() != nil {
		return fail(canceled(ctx))
	}
	img, err := load(src, in, lp)
	if err != nil {
		return fail(broken(src, in, lp, "load", err))
	}
	defer img.Close()
	// The loader streams: without this copy every variant would decode
	// the source again as its pipeline pulled pixels. A failure here is the
	// decode's: the loaders fail on error.
	if err := holdInMemory(img); err != nil {
		return fail(broken(src, in, lp, "decode", err))
	}
	for i, p := range plans {
		p.load = lp
		results[i], errs[i] = e.derive(ctx, src, img, p)
	}
	return results, errs
}

// sharedLoad is the one load that serves every plan: the least JPEG shrink
// and the largest WebP or SVG scale among them, so each variant starts from
// at least as many pixels as Render would give it.
func sharedLoad(plans []plan) loadParams {
	lp := plans[0].load
	for _, p := range plans[1:] {
		lp.shrink = min(lp.shrink, p.load.shrink)
		lp.scale = max(lp.scale, p.load.scale)
	}
	return lp
}

// derive runs one plan's steps and encoding on a view of the decoded
// image. Every step replaces the view's image rather than changing it, so
// the decoded pixels and their metadata stay as loaded for the next plan.
func (e *Engine) derive(ctx context.Context, src []byte, decoded *vips.Image, p plan) (Result, error) {
	if ctx.Err() != nil {
		return Result{}, canceled(ctx)
	}
	img, err := decoded.Copy(nil)
	if err != nil {
		return Result{}, internal("copy", err)
	}
	defer img.Close()
	if err := p.process(ctx, src, img); err != nil {
		return Result{}, err
	}
	return e.finish(ctx, src, img, p)
}
