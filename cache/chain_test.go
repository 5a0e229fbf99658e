package cache

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/metrics"
)

// mapTier is a tier a test can look into: what it holds, how often it
// was written, whether it was closed.
type mapTier struct {
	name   string
	local  bool
	mu     sync.Mutex
	vals   map[string][]byte
	sets   map[string]int
	closed bool
}

func newMapTier(name string) *mapTier {
	return &mapTier{name: name, vals: map[string][]byte{}, sets: map[string]int{}}
}

func (t *mapTier) Name() string { return t.name }

func (t *mapTier) Local() bool { return t.local }

func (t *mapTier) Get(_ context.Context, key string) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.vals[key]
	return v, ok
}

func (t *mapTier) Purge(_ context.Context, group string) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k := range t.vals {
		if groupOf(k) == group {
			delete(t.vals, k)
			n++
		}
	}
	return n, nil
}

func (t *mapTier) Set(_ context.Context, key string, v []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.vals[key] = v
	t.sets[key]++
}

func (t *mapTier) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	return nil
}

func (t *mapTier) writes(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sets[key]
}

func (t *mapTier) drop(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.vals, key)
}

type chain struct {
	l1, l2 *mapTier
	c      Cache
	m      *metrics.Metrics
	calls  int
}

// newChain stacks two map tiers in front of a disk tier over dir.
func newChain(t *testing.T, dir string) *chain {
	ch := &chain{l1: newMapTier("l1"), l2: newMapTier("l2"), m: metrics.New(prometheus.NewRegistry(), nil)}
	ch.c = New([]Tier{ch.l1, ch.l2, NewDiskTier(dir, 1<<20, ch.m, nil)}, ch.m)
	t.Cleanup(func() { ch.c.Close() })
	return ch
}

func (ch *chain) fetch(t *testing.T, key string) Status {
	t.Helper()
	v, st, err := ch.c.Fetch(context.Background(), key, func(context.Context) ([]byte, error) {
		ch.calls++
		return []byte("value of " + key), nil
	})
	if err != nil || string(v) != "value of "+key {
		t.Fatalf("%s: %q, %v", key, v, err)
	}
	return st
}

func (ch *chain) requests(tier, result string) float64 {
	return testutil.ToFloat64(ch.m.CacheRequests.WithLabelValues(tier, result))
}

func TestThreeTiersPromoteToEveryFasterTier(t *testing.T) {
	dir := t.TempDir()
	first := newChain(t, dir)
	if got := first.fetch(t, "k"); got != StatusMiss {
		t.Fatalf("first fetch: %s", got)
	}
	if first.l1.writes("k") != 1 || first.l2.writes("k") != 1 {
		t.Errorf("render written through %d/%d times, want once to each", first.l1.writes("k"), first.l2.writes("k"))
	}
	first.c.Close()
	if !first.l1.closed || !first.l2.closed {
		t.Error("Close left a tier open")
	}

	// Only the disk survives a restart: its hit fills both faster tiers.
	second := newChain(t, dir)
	for i, want := range []Status{hitDisk, "HIT-L1", "HIT-L1"} {
		if got := second.fetch(t, "k"); got != want {
			t.Errorf("fetch %d: %s, want %s", i, got, want)
		}
	}
	if second.l1.writes("k") != 1 || second.l2.writes("k") != 1 {
		t.Errorf("disk hit promoted %d/%d times, want once to each", second.l1.writes("k"), second.l2.writes("k"))
	}

	// A hit in the middle fills only the tier in front and never asks the disk.
	second.l1.drop("k")
	if got := second.fetch(t, "k"); got != "HIT-L2" {
		t.Errorf("after dropping from l1: %s", got)
	}
	if second.l1.writes("k") != 2 || second.l2.writes("k") != 1 {
		t.Errorf("l2 hit: %d/%d writes, want 2/1", second.l1.writes("k"), second.l2.writes("k"))
	}
	if first.calls+second.calls != 1 {
		t.Errorf("%d renders, want 1", first.calls+second.calls)
	}
	for _, c := range []struct {
		tier, result string
		want         float64
	}{
		{"l1", "hit", 2}, {"l1", "miss", 2},
		{"l2", "hit", 1}, {"l2", "miss", 1},
		{"disk", "hit", 1}, {"disk", "miss", 0},
	} {
		if got := second.requests(c.tier, c.result); got != c.want {
			t.Errorf("cache_requests{%s,%s} = %v, want %v", c.tier, c.result, got, c.want)
		}
	}
}

func TestNewTierNamesItsOwnStatus(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), nil)
	mem, err := NewMemoryTier(1<<20, 1<<20, m)
	if err != nil {
		t.Fatal(err)
	}
	s3 := newMapTier("s3")
	s3.Set(context.Background(), "k", []byte("v"))
	c := New([]Tier{mem, s3}, m)
	defer c.Close()
	for i, want := range []Status{"HIT-S3", hitMemory} {
		v, st, err := c.Fetch(context.Background(), "k", func(context.Context) ([]byte, error) {
			t.Fatal("rendered although s3 held the value")
			return nil, nil
		})
		if err != nil || string(v) != "v" || st != want || st.String() != string(want) {
			t.Errorf("fetch %d: %q %s %v, want %s", i, v, st, err, want)
		}
	}
	if got := testutil.ToFloat64(m.CacheRequests.WithLabelValues("s3", "hit")); got != 1 {
		t.Errorf("cache_requests{s3,hit} = %v", got)
	}
}

func TestStatusHeaderValues(t *testing.T) {
	for st, want := range map[Status]string{
		StatusMiss: "MISS", StatusBypass: "BYPASS",
		HitStatus(metrics.TierMemory): "HIT-MEMORY", HitStatus(metrics.TierDisk): "HIT-DISK", HitStatus("s3"): "HIT-S3",
	} {
		if st.String() != want {
			t.Errorf("%q.String() = %q, want %q", st, st.String(), want)
		}
	}
}
