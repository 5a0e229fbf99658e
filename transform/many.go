package transform

import (
	"context"
	"slices"
	"time"

	"image-proxy/transform/decode"
)

// RenderMany renders every option of src with one decode per distinct load
// (shrink-on-load or scale) among them, and returns one Result and one
// error per option, in the order of opts; exactly one of the two is set
// for each.
//
// Each result is byte for byte Render's for the same option: options are
// grouped by the load Render would use, never given a finer one, because a
// cache key (and its strong ETag) must name the same bytes whether warm or
// a live request rendered it. The boxes up to 1200 px of a progressive
// JPEG share one load (plan.go), so the usual sizes cost one or two decodes.
//
// Each decode is held in memory (decode.Held, not the decode cache) while
// its variants are derived: at most the source's pixels at that load, so
// never over MaxSourcePixels (times bands and sample size). Animated sources are rendered one option
// at a time through Render: holding every frame would cost more than the
// decode it saves.
//
// Each successful Result carries its Elapsed share of the call's time.
func (e *Engine) RenderMany(ctx context.Context, src []byte, opts []Options) ([]Result, []error) {
	start := time.Now()
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

	s, err := e.open(src, "")
	if err != nil {
		return fail(err)
	}
	if s.Animation() {
		header := time.Since(start)
		for i, o := range opts {
			t := time.Now()
			results[i], errs[i] = e.Render(ctx, src, o)
			addElapsed(&results[i], errs[i], time.Since(t))
		}
		share(results, errs, header)
		return results, errs
	}

	plans := make([]plan, len(opts))
	for i, o := range opts {
		plans[i] = planFor(s, o)
	}
	prep := time.Since(start) // header and plans: every option's
	var loads []decode.Load   // in first-asked order
	for _, p := range plans {
		if !slices.Contains(loads, p.load) {
			loads = append(loads, p.load)
		}
	}
	for _, lp := range loads {
		e.renderLoad(ctx, s, lp, plans, decodesAt(lp, plans, opts), results, errs)
	}
	share(results, errs, prep)
	return results, errs
}

// decodesAt is the DecodeStore of the first option loading at lp that
// has one: a caller gives every option of a source the same.
func decodesAt(lp decode.Load, plans []plan, opts []Options) DecodeStore {
	for i, p := range plans {
		if p.load == lp && opts[i].Decodes != nil {
			return opts[i].Decodes
		}
	}
	return nil
}

// renderLoad decodes s once at lp (or reads its kept decode from st) and
// derives every plan that loads at lp, filling their results and errors;
// a decode it made goes to st after them.
func (e *Engine) renderLoad(ctx context.Context, s decode.Source, lp decode.Load, plans []plan, st DecodeStore, results []Result, errs []error) {
	fail := func(err error) {
		for i, p := range plans {
			if p.load == lp {
				errs[i] = err
			}
		}
	}
	if ctx.Err() != nil {
		fail(canceled(ctx))
		return
	}
	start := time.Now()
	held, made, err := e.holdFor(ctx, s, lp, st)
	if err != nil {
		fail(fromDecode(err))
		return
	}
	defer held.Close()
	defer func() { e.keepDecode(made, lp, Options{Decodes: st}, nil) }()
	decoding := time.Since(start)
	var n time.Duration // plans sharing the decode
	for i, p := range plans {
		if p.load == lp {
			t := time.Now()
			results[i], errs[i] = e.deriveHeld(ctx, s, held, p)
			addElapsed(&results[i], errs[i], time.Since(t))
			n++
		}
	}
	for i, p := range plans {
		if p.load == lp {
			addElapsed(&results[i], errs[i], decoding/n)
		}
	}
}

// deriveHeld derives p from a view of the held decode, which stays as
// loaded for the next plan.
func (e *Engine) deriveHeld(ctx context.Context, s decode.Source, held *decode.Held, p plan) (Result, error) {
	if ctx.Err() != nil {
		return Result{}, canceled(ctx)
	}
	img, err := held.View()
	if err != nil {
		return Result{}, fromDecode(err)
	}
	defer img.Close()
	return e.derive(ctx, s, img.Image, p)
}

// share spreads d, time spent for every option alike, over them equally.
func share(results []Result, errs []error, d time.Duration) {
	each := d / time.Duration(len(results))
	for i := range results {
		addElapsed(&results[i], errs[i], each)
	}
}

// addElapsed adds d to a result that succeeded; a failed one stays the
// zero Result.
func addElapsed(r *Result, err error, d time.Duration) {
	if err == nil {
		r.Elapsed += d
	}
}
