package cache

import (
	"context"
	"sync"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/metrics"
)

// memoryTier is ristretto with cost = bytes.
type memoryTier struct {
	c       *ristretto.Cache[string, []byte]
	maxItem int64
	size    prometheus.Gauge
	items   prometheus.Gauge

	// groups indexes the keys stored per source group (SourceKey), for
	// Purge: ristretto cannot list its keys. Only Set writes it, so a hit
	// costs nothing more. Keys evicted since are dropped from it when it
	// has grown to twice what the cache holds (sweep).
	mu      sync.Mutex
	groups  map[string]map[string]struct{}
	indexed int
}

// NewMemoryTier keeps up to size bytes in process memory; values larger
// than maxItem are not kept, so one huge result cannot flush many small
// ones. m may be nil.
func NewMemoryTier(size, maxItem int64, m *metrics.Metrics) (Tier, error) {
	m = orDiscard(m)
	t := &memoryTier{
		maxItem: maxItem,
		size:    m.CacheSizeBytes.WithLabelValues(metrics.TierMemory),
		items:   m.CacheItems.WithLabelValues(metrics.TierMemory),
	}
	evictions := m.CacheEvictions.WithLabelValues(metrics.TierMemory)
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		// Ten counters per expected item; results average tens of KB.
		NumCounters: max(10_000, size/2048),
		MaxCost:     size,
		// A Get's access is buffered, per stripe, until this many fill it;
		// then the stripe is handed to the policy's goroutine, which wakes
		// for it. Ristretto's suggested 64 woke it every 64 hits, a
		// measurable share of a memory hit (BenchmarkMemoryHit: ~1.25 µs
		// at 64, ~0.96 µs at 512); the policy only learns of accesses a
		// little later.
		BufferItems: 512,
		Metrics:     true, // cost and key counters feed our gauges
		OnEvict:     func(*ristretto.Item[[]byte]) { evictions.Inc() },
	})
	if err != nil {
		return nil, err
	}
	t.c = c
	return t, nil
}

func (t *memoryTier) Name() string { return metrics.TierMemory }

func (t *memoryTier) Get(_ context.Context, key string) ([]byte, bool) {
	return t.c.Get(key)
}

// Set waits until a following Get sees v: ristretto admits asynchronously,
// and a request right after a render must not miss.
func (t *memoryTier) Set(_ context.Context, key string, v []byte) {
	if int64(len(v)) > t.maxItem {
		return
	}
	if t.c.Set(key, v, int64(len(v))) {
		t.c.Wait()
	}
	if g := groupOf(key); g != "" {
		t.index(g, key)
	}
	mt := t.c.Metrics
	t.size.Set(float64(mt.CostAdded() - mt.CostEvicted()))
	t.items.Set(float64(mt.KeysAdded() - mt.KeysEvicted()))
}

func (t *memoryTier) Close() error {
	t.c.Close()
	return nil
}

func (t *memoryTier) Local() bool { return true }

// MaxItem is the longest value Set keeps (itemLimit).
func (t *memoryTier) MaxItem() int64 { return t.maxItem }

// index records key under group g, sweeping out keys the cache no longer
// holds once the index has twice as many as the cache (and a floor, so a
// small cache does not sweep on every Set).
func (t *memoryTier) index(g, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.groups == nil {
		t.groups = map[string]map[string]struct{}{}
	}
	keys := t.groups[g]
	if keys == nil {
		keys = map[string]struct{}{}
		t.groups[g] = keys
	}
	if _, ok := keys[key]; !ok {
		keys[key] = struct{}{}
		t.indexed++
	}
	mt := t.c.Metrics
	if live := int(mt.KeysAdded() - mt.KeysEvicted()); t.indexed > 2*live+1024 {
		t.sweepLocked()
	}
}

// sweepLocked drops the index's keys the cache does not hold (evicted, or
// never admitted). GetTTL looks without counting a use.
func (t *memoryTier) sweepLocked() {
	for g, keys := range t.groups {
		for k := range keys {
			if _, ok := t.c.GetTTL(k); !ok {
				delete(keys, k)
				t.indexed--
			}
		}
		if len(keys) == 0 {
			delete(t.groups, g)
		}
	}
}

// Purge deletes the group's keys that the cache holds.
func (t *memoryTier) Purge(_ context.Context, group string) (int, error) {
	t.mu.Lock()
	keys := t.groups[group]
	delete(t.groups, group)
	t.indexed -= len(keys)
	t.mu.Unlock()
	removed := 0
	for k := range keys {
		if _, ok := t.c.GetTTL(k); ok {
			t.c.Del(k)
			removed++
		}
	}
	t.c.Wait()
	return removed, nil
}
