package cache

import (
	"context"
	"math"

	"go.opentelemetry.io/otel/trace"

	"image-proxy/metrics/spans"
)

// Traced wraps each tier so that its look-ups (cache.get, with the tier
// and hit or miss) and stores (cache.set) are spans under the request's.
// With tracing off (nil or the no-op provider) it returns tiers as they
// are, and a hit costs nothing more. A tier that leases keeps leasing, its
// Lease and Wait traced too.
func Traced(tiers []Tier, tp trace.TracerProvider) []Tier {
	t := spans.New(tp)
	if !t.On() {
		return tiers
	}
	out := make([]Tier, len(tiers))
	for i, tier := range tiers {
		tt := tracedTier{tier, t}
		switch x := tier.(type) {
		case Leaser:
			out[i] = tracedLeaser{tt, x}
		case FileTier:
			out[i] = tracedFiles{tt, x}
		default:
			out[i] = tt
		}
	}
	return out
}

type tracedTier struct {
	Tier
	tracing spans.Tracer
}

func (t tracedTier) Get(ctx context.Context, key string) ([]byte, bool) {
	ctx, sp := t.tracing.Start(ctx, "cache.get")
	sp.Str("cache.tier", t.Name())
	v, ok := t.Tier.Get(ctx, key)
	sp.Bool("cache.hit", ok)
	sp.End(nil)
	return v, ok
}

func (t tracedTier) Set(ctx context.Context, key string, v []byte) {
	ctx, sp := t.tracing.Start(ctx, "cache.set")
	sp.Str("cache.tier", t.Name())
	sp.Int("cache.value_bytes", len(v))
	t.Tier.Set(ctx, key, v)
	sp.End(nil)
}

// MaxItem passes the tier's limit on (itemLimit); a tier without one keeps
// any value.
func (t tracedTier) MaxItem() int64 {
	if l, ok := t.Tier.(itemLimit); ok {
		return l.MaxItem()
	}
	return math.MaxInt64
}

// tracedFiles is a traced tier that also opens files.
type tracedFiles struct {
	tracedTier
	f FileTier
}

func (t tracedFiles) Open(ctx context.Context, key string, head int, whole int64) (Hit, bool) {
	ctx, sp := t.tracing.Start(ctx, "cache.get")
	sp.Str("cache.tier", t.Name())
	h, ok := t.f.Open(ctx, key, head, whole)
	sp.Bool("cache.hit", ok)
	sp.Bool("cache.file", h.File != nil)
	sp.End(nil)
	return h, ok
}

// tracedLeaser is a traced tier that also leases.
type tracedLeaser struct {
	tracedTier
	l Leaser
}

func (t tracedLeaser) Lease(ctx context.Context, key string) (func(), bool, error) {
	ctx, sp := t.tracing.Start(ctx, "cache.lease")
	sp.Str("cache.tier", t.Name())
	release, won, err := t.l.Lease(ctx, key)
	sp.Bool("cache.lease_won", won)
	sp.End(err)
	return release, won, err
}

func (t tracedLeaser) Wait(ctx context.Context, key string) ([]byte, bool) {
	ctx, sp := t.tracing.Start(ctx, "cache.wait")
	sp.Str("cache.tier", t.Name())
	v, ok := t.l.Wait(ctx, key)
	sp.Bool("cache.hit", ok)
	sp.End(nil)
	return v, ok
}
