package proxy

import (
	"context"
	"errors"
	"io"
	"sync"

	"image-proxy/cache"
	"image-proxy/origin"
	"image-proxy/transform"
)

// manyRenderer renders several variants of one source from one decode
// (transform.Engine does).
type manyRenderer interface {
	RenderMany(ctx context.Context, src []byte, opts []transform.Options) ([]transform.Result, []error)
}

// warmSink is where pre-rendered variants go: the result tiers, or static
// files (warm_export.go).
type warmSink interface {
	// has reports whether it already holds it, whole.
	has(ctx context.Context, o origin.Original, it warmItem) bool
	put(ctx context.Context, o origin.Original, it warmItem, res transform.Result) error
}

// WarmResult is what warming one source came to.
type WarmResult struct {
	Rel      string
	Rendered int   // variants rendered and stored
	Skipped  int   // variants already stored and intact
	NotImage bool  // not an image: left alone, nothing counted
	Err      error // the first failure; nil when every variant was stored or skipped
}

// Warmer pre-renders the variants of a WarmSpec for sources of the server,
// one decode per source. It is safe for concurrent use.
type Warmer struct {
	s    *Server
	sink warmSink
	spec WarmSpec
	gate func(ctx context.Context) (func(), error) // nil: render at once

	// OnStored, when set, is called after each variant is stored.
	OnStored func(rel string)
	// Watching, when set, is called once Watch has its watches in place.
	Watching func()
}

// CacheWarmer stores into store (the persistent result tiers), under the
// keys live requests compute.
func (s *Server) CacheWarmer(store *cache.Store, spec WarmSpec) *Warmer {
	return &Warmer{s: s, sink: cacheSink{store}, spec: spec}
}

// Background makes w yield to live requests: it starts a render only when
// no live request waits for a slot and a slot is free, and it never takes
// one of the live requests' slots (its render runs beside them).
func (w *Warmer) Background() *Warmer {
	c := *w
	c.gate = w.s.limiter.spare
	return &c
}

type cacheSink struct{ store *cache.Store }

func (c cacheSink) has(ctx context.Context, _ origin.Original, it warmItem) bool {
	return c.store.Has(ctx, it.variant.Key())
}

func (c cacheSink) put(ctx context.Context, _ origin.Original, it warmItem, res transform.Result) error {
	// The value renderSource would have produced.
	c.store.Put(ctx, it.variant.Key(), cacheValue(res))
	return nil
}

// Source warms every variant of rel that is not stored yet (all of them
// with Force), from one read and one decode.
func (w *Warmer) Source(ctx context.Context, rel string) WarmResult {
	r := WarmResult{Rel: rel}
	o, body, err := w.s.sources.Open(ctx, rel)
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
	in := transform.Sniff(head)
	if in == transform.FormatUnknown {
		r.NotImage = true
		return r
	}
	todo := w.pending(ctx, o, &r)
	if len(todo) == 0 {
		return r
	}
	if o.Size > w.s.cfg.MaxSourceBytes {
		r.Err = errSourceTooBig
		return r
	}
	if w.gate != nil {
		release, err := w.gate(ctx)
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
	w.render(ctx, o, data, in, todo, &r)
	return r
}

// pending is the items of o not stored yet, counting the others skipped.
func (w *Warmer) pending(ctx context.Context, o origin.Original, r *WarmResult) []warmItem {
	items := w.s.warmItems(o, w.spec)
	if w.spec.Force {
		return items
	}
	var todo []warmItem
	for _, it := range items {
		if w.sink.has(ctx, o, it) {
			r.Skipped++
		} else {
			todo = append(todo, it)
		}
	}
	return todo
}

// render decodes data once, derives every distinct output of todo (two
// items can share one: 720@2x and 1440@1x) and stores each item.
func (w *Warmer) render(ctx context.Context, o origin.Original, data []byte, in transform.Format, todo []warmItem, r *WarmResult) {
	var opts []transform.Options
	index := make([]int, len(todo))
	for i, it := range todo {
		opt := options(it.variant, in)
		j := 0
		for j < len(opts) && opts[j] != opt {
			j++
		}
		if j == len(opts) {
			opts = append(opts, opt)
		}
		index[i] = j
	}
	results, errs := w.s.renderMany(ctx, data, opts)
	for i, it := range todo {
		err := errs[index[i]]
		if err == nil {
			err = w.sink.put(ctx, o, it, results[index[i]])
		}
		if err != nil {
			if r.Err == nil {
				r.Err = err
			}
			continue
		}
		r.Rendered++
		if w.OnStored != nil {
			w.OnStored(o.Rel)
		}
	}
}

// Run warms rels with up to workers sources at a time and reports each
// result as it comes (report is called from one goroutine at a time). It
// returns when every source is done or ctx is cancelled; sources not
// started by then are not reported.
func (w *Warmer) Run(ctx context.Context, rels []string, workers int, report func(WarmResult)) {
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
	for _, rel := range rels {
		select {
		case next <- rel:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}
