package cache

import (
	"github.com/dgraph-io/ristretto/v2"

	"image-proxy/metrics"
)

// memoryTier is ristretto with cost = bytes.
type memoryTier struct {
	c       *ristretto.Cache[string, []byte]
	maxItem int64
	m       *metrics.Metrics
}

func newMemoryTier(size, maxItem int64, m *metrics.Metrics) (*memoryTier, error) {
	t := &memoryTier{maxItem: maxItem, m: m}
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		// Ten counters per expected item; results average tens of KB.
		NumCounters: max(10_000, size/2048),
		MaxCost:     size,
		BufferItems: 64,
		Metrics:     true, // cost and key counters feed our gauges
		OnEvict: func(*ristretto.Item[[]byte]) {
			m.CacheEvictions.WithLabelValues(metrics.TierMemory).Inc()
		},
	})
	if err != nil {
		return nil, err
	}
	t.c = c
	return t, nil
}

func (t *memoryTier) get(key string) ([]byte, bool) {
	v, ok := t.c.Get(key)
	t.m.CacheRequests.WithLabelValues(metrics.TierMemory, hitOrMiss(ok)).Inc()
	return v, ok
}

// set stores v when it is small enough, and waits until a following get
// sees it (ristretto admits asynchronously).
func (t *memoryTier) set(key string, v []byte) {
	if int64(len(v)) > t.maxItem {
		return
	}
	if t.c.Set(key, v, int64(len(v))) {
		t.c.Wait()
	}
	mt := t.c.Metrics
	t.m.CacheSizeBytes.WithLabelValues(metrics.TierMemory).Set(float64(mt.CostAdded() - mt.CostEvicted()))
	t.m.CacheItems.WithLabelValues(metrics.TierMemory).Set(float64(mt.KeysAdded() - mt.KeysEvicted()))
}

func (t *memoryTier) close() { t.c.Close() }

func hitOrMiss(ok bool) string {
	if ok {
		return "hit"
	}
	return "miss"
}
