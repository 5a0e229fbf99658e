package cache

import (
	"context"
	"errors"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/metrics"
)

// level is a tier with what its hit path needs resolved once, so a hit
// costs no label lookups or string building.
type level struct {
	Tier
	status    Status
	hit, miss prometheus.Counter
	local     bool // on this machine: read without coalescing (Cached)
	files     FileTier
	// whole: a value up to this long is read as bytes by Open, since a
	// faster tier would keep it (the largest of their MaxItem).
	whole int64
}

// itemLimit is a tier that keeps no value longer than MaxItem (the memory
// tier); a tier without it may keep any.
type itemLimit interface{ MaxItem() int64 }

// lookup is Get, counted.
func (l *level) lookup(ctx context.Context, key string) ([]byte, bool) {
	v, ok := l.Get(ctx, key)
	if ok {
		l.hit.Inc()
	} else {
		l.miss.Inc()
	}
	return v, ok
}

// tiered looks in each tier in order, then renders, with identical misses
// coalesced.
type tiered struct {
	levels []level
	flight flights
	lease  leasing
}

// New serves from tiers, fastest first; with none, every Fetch renders
// (coalesced) and reports StatusBypass. The cache owns the tiers: its
// Close closes them. m may be nil (its collectors then go nowhere).
func New(tiers []Tier, m *metrics.Metrics) Cache {
	m = orDiscard(m)
	t := &tiered{levels: make([]level, len(tiers))}
	var whole int64 // what the tiers before this one keep
	for i, tier := range tiers {
		name := tier.Name()
		t.levels[i] = level{
			Tier:   tier,
			status: HitStatus(name),
			hit:    m.CacheRequests.WithLabelValues(name, metrics.CacheHit),
			miss:   m.CacheRequests.WithLabelValues(name, metrics.CacheMiss),
			local:  tier.Local(),
			whole:  whole,
		}
		t.levels[i].files, _ = tier.(FileTier)
		limit := int64(math.MaxInt64)
		if l, ok := tier.(itemLimit); ok {
			limit = l.MaxItem()
		}
		whole = max(whole, limit)
	}
	t.lease = newLeasing(t.levels, m)
	return t
}

func (t *tiered) Fetch(ctx context.Context, key string, render RenderFunc) ([]byte, Status, error) {
	if len(t.levels) == 0 {
		return t.flight.do(ctx, key, func(ctx context.Context) ([]byte, Status, error) {
			v, err := render(ctx)
			return v, StatusBypass, err
		})
	}
	// The fastest tier answers most requests without the flight's lock.
	if v, ok := t.levels[0].lookup(ctx, key); ok {
		return v, t.levels[0].status, nil
	}
	return t.flight.do(ctx, key, func(ctx context.Context) ([]byte, Status, error) {
		return t.fill(ctx, key, render)
	})
}

// Cached looks in the tiers on this machine (memory, disk) in order and
// promotes a hit to the faster ones; the remote tiers (S3) are left to
// Fetch, whose flight coalesces them. A hit counts the misses before it; a
// miss counts nothing, since the Fetch that follows counts every tier.
func (t *tiered) Cached(ctx context.Context, key string) ([]byte, Status, bool) {
	h, st, ok := t.local(ctx, key, 0, false)
	return h.Value, st, ok
}

// Open is Cached, with a disk hit that no faster tier would keep sent as a
// file (FileTier) and not promoted.
func (t *tiered) Open(ctx context.Context, key string, head int) (Hit, Status, bool) {
	return t.local(ctx, key, head, true)
}

func (t *tiered) local(ctx context.Context, key string, head int, files bool) (Hit, Status, bool) {
	for i := range t.levels {
		l := &t.levels[i]
		if !l.local {
			break
		}
		var h Hit
		var ok bool
		if files && l.files != nil {
			h, ok = l.files.Open(ctx, key, head, l.whole)
		} else {
			h.Value, ok = l.Get(ctx, key)
		}
		if ok {
			for j := range i {
				t.levels[j].miss.Inc()
			}
			l.hit.Inc()
			if i > 0 && h.File == nil {
				store(ctx, t.levels[:i], key, h.Value)
			}
			return h, l.status, true
		}
	}
	return Hit{}, StatusMiss, false
}

// fill runs once per key for all concurrent callers.
func (t *tiered) fill(ctx context.Context, key string, render RenderFunc) ([]byte, Status, error) {
	// A flight for this key may have finished between our miss and now;
	// that miss is already counted, so this look is not.
	if v, ok := t.levels[0].Get(ctx, key); ok {
		return v, t.levels[0].status, nil
	}
	for i := 1; i < len(t.levels); i++ {
		if v, ok := t.levels[i].lookup(ctx, key); ok {
			store(ctx, t.levels[:i], key, v)
			return v, t.levels[i].status, nil
		}
	}
	v, st, release, ok := t.underLease(ctx, key)
	if ok {
		return v, st, nil
	}
	if release != nil {
		defer release() // after the value is stored, or the render failed
	}
	v, err := render(ctx)
	if err != nil {
		return nil, StatusMiss, err
	}
	store(ctx, t.levels, key, v)
	return v, StatusMiss, nil
}

func store(ctx context.Context, levels []level, key string, v []byte) {
	// The value is paid for: keep it even if every caller has just left.
	ctx = context.WithoutCancel(ctx)
	for i := range levels {
		levels[i].Set(ctx, key, v)
	}
}

// Close releases every tier even when one fails, slowest first as the
// two-tier cache always did.
func (t *tiered) Close() error {
	var errs []error
	for i := len(t.levels) - 1; i >= 0; i-- {
		errs = append(errs, t.levels[i].Close())
	}
	return errors.Join(errs...)
}
