// Package warm pre-renders variants before anyone asks for them: the spec
// (sizes × dprs × formats), the Warmer that renders every variant of a
// source from one read and one decode, the sinks it stores them in (the
// result tiers under the keys live requests compute, or static files with
// a manifest), walking the root and watching it for changes, and the rules
// of where a warm may go.
//
// It is built from explicit dependencies (Deps: the source chain, the
// variant builder, the renderer) and never sees the HTTP server: proxy
// provides the renderer, counted as warm work, and the gate that keeps
// background warming out of live requests' way; main wires them.
package warm

import (
	"context"
	"errors"
	"io"
	"iter"
	"sync"

	"image-proxy/fault"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

// sniffBytes is how much of a file the type check reads (transform.Sniff
// needs 4 KB at most).
const sniffBytes = 4096

// errSourceTooBig refuses to render an original over MaxSourceBytes, as a
// live request does.
var errSourceTooBig = fault.New(fault.SourceTooBig, "", nil)

// Renderer renders variants of one source, byte for byte as a live request
// renders each, from one decode where it can, and returns one result and
// one error per variant, in order; exactly one of the two is set for each.
// proxy's Server.WarmRenderer is the one main passes: it turns each
// variant into the engine's options the way the live path does and counts
// the renders as warm work, through the code that counts live ones.
type Renderer interface {
	RenderMany(ctx context.Context, o origin.Original, src []byte, vs []request.Variant) ([]transform.Result, []error)
}

// Gate lets background work start a render only when live requests leave
// capacity spare (proxy's Limiter).
type Gate interface {
	// Spare waits for spare capacity; release is called when the render
	// is done.
	Spare(ctx context.Context) (release func(), err error)
}

// Sink is where pre-rendered variants go: the result tiers (sink_cache.go)
// or static files (sink_export.go). Has and Put may be called from several
// goroutines at once.
type Sink interface {
	// Has reports whether the sink already holds it, whole.
	Has(ctx context.Context, o origin.Original, it Item) bool
	// Put keeps res as the variant it of o.
	Put(ctx context.Context, o origin.Original, it Item, res transform.Result) error
	// Flush writes what the sink keeps beside the variants (the export's
	// manifest); the cache has nothing to write.
	Flush() error
}

// Deps are what a Warmer is built from; main builds them.
type Deps struct {
	Sources        origin.Chain     // where originals are read, as live requests read them
	Variants       request.Variants // the live requests' variant builder: the same keys
	Renderer       Renderer
	MaxSourceBytes int64 // IMAGE_PROXY_MAX_SOURCE_BYTES: larger originals are not rendered
}

// Result is what warming one source came to.
type Result struct {
	Rel      string
	Rendered int   // variants rendered and stored
	Skipped  int   // variants already stored and intact
	NotImage bool  // not an image: left alone, nothing counted
	Err      error // the first failure; nil when every variant was stored or skipped
}

// Failed reports whether r is a failure to report: an error that is not
// the run being stopped.
func (r Result) Failed() bool {
	return r.Err != nil && !errors.Is(r.Err, context.Canceled) && transform.KindOf(r.Err) != transform.KindCanceled
}

// Warmer pre-renders the variants of a Spec for sources of the chain, one
// decode per source. It is safe for concurrent use.
type Warmer struct {
	d    Deps
	sink Sink
	spec Spec
	gate Gate // nil: render at once

	onStored func(rel string) // after each variant is stored
	watching func()           // once Watch has its watches in place
}

// Option adjusts a Warmer.
type Option func(*Warmer)

// OnStored calls f after each variant is stored.
func OnStored(f func(rel string)) Option { return func(w *Warmer) { w.onStored = f } }

// OnWatching calls f once Watch has its watches in place: a change made
// after it is seen.
func OnWatching(f func()) Option { return func(w *Warmer) { w.watching = f } }

// New makes a Warmer that renders spec's variants through d and keeps them
// in sink.
func New(d Deps, sink Sink, spec Spec, opts ...Option) *Warmer {
	w := &Warmer{d: d, sink: sink, spec: spec}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Background makes w yield to live requests: it starts a render only when
// g has spare capacity (proxy's Limiter: no live request waits for a slot
// and a slot is free), and it never takes one of the live requests' slots
// (its render runs beside them).
func (w *Warmer) Background(g Gate) *Warmer {
	c := *w
	c.gate = g
	return &c
}

// Flush writes what the sink keeps beside the variants: the manifest of an
// export; nothing for the cache.
func (w *Warmer) Flush() error { return w.sink.Flush() }

// Source warms every variant of rel that is not stored yet (all of them
// with Force), from one read and one decode.
func (w *Warmer) Source(ctx context.Context, rel string) Result {
	r := Result{Rel: rel}
	o, body, err := w.d.Sources.Open(ctx, rel)
	if err != nil {
		r.Err = err
		return r
	}
	defer body.Close()
	head := make([]byte, min(sniffBytes, o.Size))
	if _, err := body.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		r.Err = err
		return r
	}
	if transform.Sniff(head) == transform.FormatUnknown {
		r.NotImage = true
		return r
	}
	todo := w.pending(ctx, o, &r)
	describe := w.needsPlaceholders(o)
	if len(todo) == 0 && !describe {
		return r
	}
	if o.Size > w.d.MaxSourceBytes {
		r.Err = errSourceTooBig
		return r
	}
	if w.gate != nil {
		release, err := w.gate.Spare(ctx)
		if err != nil {
			r.Err = err
			return r
		}
		defer release()
	}
	data := make([]byte, o.Size)
	if _, err := body.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		r.Err = err
		return r
	}
	w.render(ctx, o, data, todo, &r)
	if describe {
		if err := w.placeholders(ctx, o, data); err != nil && r.Err == nil {
			r.Err = err
		}
	}
	return r
}

// pending is the items of o not stored yet, counting the others skipped.
func (w *Warmer) pending(ctx context.Context, o origin.Original, r *Result) []Item {
	all := items(w.d.Variants, o, w.spec)
	if w.spec.Force {
		return all
	}
	var todo []Item
	for _, it := range all {
		if w.sink.Has(ctx, o, it) {
			r.Skipped++
		} else {
			todo = append(todo, it)
		}
	}
	return todo
}

// render renders every item of todo from data and stores each.
func (w *Warmer) render(ctx context.Context, o origin.Original, data []byte, todo []Item, r *Result) {
	vs := make([]request.Variant, len(todo))
	for i, it := range todo {
		vs[i] = it.Variant
	}
	results, errs := w.d.Renderer.RenderMany(ctx, o, data, vs)
	for i, it := range todo {
		err := errs[i]
		if err == nil {
			err = w.sink.Put(ctx, o, it, results[i])
		}
		if err != nil {
			if r.Err == nil {
				r.Err = err
			}
			continue
		}
		r.Rendered++
		if w.onStored != nil {
			w.onStored(o.Rel)
		}
	}
}

// Run warms rels with up to workers sources at a time and reports each
// result as it comes (report is called from one goroutine at a time). rels
// is read as the workers take its paths, so a listing that yields page by
// page (origin's S3.List) is never held whole. It returns when every source
// is done or ctx is cancelled; sources not started by then are not read
// from rels nor reported.
func (w *Warmer) Run(ctx context.Context, rels iter.Seq[string], workers int, report func(Result)) {
	next := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for rel := range next {
				res := w.Source(ctx, rel)
				mu.Lock()
				report(res)
				mu.Unlock()
			}
		})
	}
feed:
	for rel := range rels {
		select {
		case next <- rel:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}
