package cache

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/metrics"
)

// Leaser is a tier shared by several processes (replicas behind one load
// balancer) that can elect one of them to render a key they all miss at
// once. A tier implements it optionally; the cache asks the first tier
// that does, inside the flight, after every tier missed and before
// rendering. A cache with no Leaser renders at once, as it always did.
type Leaser interface {
	// Lease tries to take the render lease for key. won: the caller
	// renders, stores the value in every tier and then calls release
	// (exactly once, also when the render fails). !won with a nil error:
	// another process holds the lease, or has just stored the value; the
	// caller should Wait. An error: the tier cannot lease now, and the
	// caller renders without.
	Lease(ctx context.Context, key string) (release func(), won bool, err error)
	// Wait waits, within a bound of the tier's own, for the value the
	// lease holder stores under key, and returns it. ok is false when the
	// lease was released or expired without a value, the bound passed, or
	// ctx ended: the caller may try Lease again or render.
	Wait(ctx context.Context, key string) (v []byte, ok bool)
}

// leaseRounds bounds Lease/Wait rounds per miss: a holder that fails to
// deliver hands over to one of the waiters, whose failure hands over to
// the next, and then everyone renders for themselves.
const leaseRounds = 3

// leasing is the optional fleet-wide coalescing of tiered: the level that
// leases and the outcome counters.
type leasing struct {
	at                    int // index of the leasing level; -1: none
	won, shared, bypassed prometheus.Counter
}

func newLeasing(levels []level, m *metrics.Metrics) leasing {
	l := leasing{at: -1}
	for i := range levels {
		if _, ok := levels[i].Tier.(Leaser); ok {
			l.at = i
			break
		}
	}
	l.won = m.CacheLeases.WithLabelValues(metrics.LeaseWon)
	l.shared = m.CacheLeases.WithLabelValues(metrics.LeaseShared)
	l.bypassed = m.CacheLeases.WithLabelValues(metrics.LeaseBypassed)
	return l
}

// underLease runs after every tier missed key. Either another process
// rendered it (ok: v is stored in the tiers in front of the leasing one and
// returned with that tier's status), or the caller must render, and then
// call release when it is not nil, after storing the value.
func (t *tiered) underLease(ctx context.Context, key string) (v []byte, st Status, release func(), ok bool) {
	if t.lease.at < 0 {
		return nil, StatusMiss, nil, false
	}
	l := &t.levels[t.lease.at]
	leaser := l.Tier.(Leaser)
	for range leaseRounds {
		release, won, err := leaser.Lease(ctx, key)
		if err != nil {
			break
		}
		if won {
			t.lease.won.Inc()
			return nil, StatusMiss, release, false
		}
		if v, ok := leaser.Wait(ctx, key); ok {
			t.lease.shared.Inc()
			store(ctx, t.levels[:t.lease.at], key, v)
			return v, l.status, nil, true
		}
		if ctx.Err() != nil {
			break
		}
	}
	t.lease.bypassed.Inc()
	return nil, StatusMiss, nil, false
}
