package cache

import (
	"context"

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
		BufferItems: 64,
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
	mt := t.c.Metrics
	t.size.Set(float64(mt.CostAdded() - mt.CostEvicted()))
	t.items.Set(float64(mt.KeysAdded() - mt.KeysEvicted()))
}

func (t *memoryTier) Close() error {
	t.c.Close()
	return nil
}

func (t *memoryTier) Local() bool { return true }
