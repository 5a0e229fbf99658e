package cache

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/metrics"
)

// scriptedLeaser is a shared tier whose lease answers are set by the test,
// recording what the cache asked of it, in order.
type scriptedLeaser struct {
	*mapTier
	leaseErr error
	lose     bool   // Lease: another process holds it
	delivers []byte // Wait returns this (nil: the holder gave up)

	mu     sync.Mutex
	events []string
	leases int
}

func (l *scriptedLeaser) note(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *scriptedLeaser) Set(ctx context.Context, key string, v []byte) {
	l.note("set")
	l.mapTier.Set(ctx, key, v)
}

func (l *scriptedLeaser) Lease(context.Context, string) (func(), bool, error) {
	l.mu.Lock()
	l.leases++
	l.mu.Unlock()
	if l.leaseErr != nil {
		return nil, false, l.leaseErr
	}
	if l.lose {
		return nil, false, nil
	}
	return func() { l.note("release") }, true, nil
}

func (l *scriptedLeaser) Wait(context.Context, string) ([]byte, bool) {
	l.note("wait")
	return l.delivers, l.delivers != nil
}

type leaseEnv struct {
	front  *mapTier
	shared *scriptedLeaser
	c      Cache
	m      *metrics.Metrics
}

func newLeaseEnv(t *testing.T, l *scriptedLeaser) *leaseEnv {
	e := &leaseEnv{front: newMapTier("memory"), shared: l, m: metrics.New(prometheus.NewRegistry(), nil)}
	l.mapTier = newMapTier("s3")
	e.c = New([]Tier{e.front, l}, e.m)
	t.Cleanup(func() { e.c.Close() })
	return e
}

func (e *leaseEnv) leases(result string) float64 {
	return testutil.ToFloat64(e.m.CacheLeases.WithLabelValues(result))
}

func (e *leaseEnv) fetch(render RenderFunc) ([]byte, Status, error) {
	return e.c.Fetch(context.Background(), "k", render)
}

func TestLeaseWonRendersAndReleasesAfterStoring(t *testing.T) {
	e := newLeaseEnv(t, &scriptedLeaser{})
	renders := 0
	v, st, err := e.fetch(func(context.Context) ([]byte, error) { renders++; return []byte("v"), nil })
	if err != nil || string(v) != "v" || st != StatusMiss || renders != 1 {
		t.Fatalf("%q %s %v after %d renders", v, st, err, renders)
	}
	if got := e.shared.events; len(got) != 2 || got[0] != "set" || got[1] != "release" {
		t.Errorf("events %v, want the value stored before the lease is released", got)
	}
	if e.leases(metrics.LeaseWon) != 1 {
		t.Errorf("leases{won} = %v", e.leases(metrics.LeaseWon))
	}
}

func TestLeaseReleasedWhenTheRenderFails(t *testing.T) {
	e := newLeaseEnv(t, &scriptedLeaser{})
	boom := errors.New("boom")
	if _, _, err := e.fetch(func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if got := e.shared.events; len(got) != 1 || got[0] != "release" {
		t.Errorf("events %v, want the lease released so waiters stop waiting", got)
	}
}

func TestLeaseLostServesTheHoldersValue(t *testing.T) {
	e := newLeaseEnv(t, &scriptedLeaser{lose: true, delivers: []byte("theirs")})
	v, st, err := e.fetch(func(context.Context) ([]byte, error) {
		t.Error("rendered although the holder delivered")
		return nil, nil
	})
	if err != nil || string(v) != "theirs" || st != HitStatus("s3") {
		t.Fatalf("%q %s %v", v, st, err)
	}
	if e.front.writes("k") != 1 || e.shared.writes("k") != 0 {
		t.Errorf("writes front %d shared %d: want the value promoted in front, not written back", e.front.writes("k"), e.shared.writes("k"))
	}
	if e.leases(metrics.LeaseShared) != 1 {
		t.Errorf("leases{shared} = %v", e.leases(metrics.LeaseShared))
	}
	// The next request is a memory hit.
	if _, st, _ := e.fetch(nil); st != "HIT-MEMORY" {
		t.Errorf("then: %s", st)
	}
}

func TestLeaseBoundedWhenTheHolderNeverDelivers(t *testing.T) {
	e := newLeaseEnv(t, &scriptedLeaser{lose: true})
	renders := 0
	if _, st, err := e.fetch(func(context.Context) ([]byte, error) { renders++; return []byte("v"), nil }); err != nil || st != StatusMiss {
		t.Fatalf("%s %v", st, err)
	}
	if renders != 1 || e.shared.leases != leaseRounds {
		t.Errorf("%d renders after %d lease attempts, want 1 after %d", renders, e.shared.leases, leaseRounds)
	}
	if e.leases(metrics.LeaseBypassed) != 1 {
		t.Errorf("leases{bypassed} = %v", e.leases(metrics.LeaseBypassed))
	}
}

func TestLeaseErrorRendersAtOnce(t *testing.T) {
	e := newLeaseEnv(t, &scriptedLeaser{leaseErr: errors.New("s3 down")})
	renders := 0
	if _, st, err := e.fetch(func(context.Context) ([]byte, error) { renders++; return []byte("v"), nil }); err != nil || st != StatusMiss || renders != 1 {
		t.Fatalf("%s %v after %d renders", st, err, renders)
	}
	if e.shared.leases != 1 || len(e.shared.events) != 1 || e.shared.events[0] != "set" {
		t.Errorf("%d lease attempts, events %v: want one attempt, no wait, the value stored", e.shared.leases, e.shared.events)
	}
	if e.leases(metrics.LeaseBypassed) != 1 {
		t.Errorf("leases{bypassed} = %v", e.leases(metrics.LeaseBypassed))
	}
}

func TestNoLeaserCountsNoLease(t *testing.T) {
	ch := newChain(t, t.TempDir())
	ch.fetch(t, "k")
	for _, r := range metrics.LeaseResults {
		if got := testutil.ToFloat64(ch.m.CacheLeases.WithLabelValues(r)); got != 0 {
			t.Errorf("leases{%s} = %v in a cache without a shared tier", r, got)
		}
	}
}
