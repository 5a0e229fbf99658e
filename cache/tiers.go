package cache

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/metrics"
)

// Validate checks the sizes; only meaningful parts are checked when a tier is off.
func (c Config) Validate() error {
	switch {
	case !c.Enabled:
		return nil
	case c.MemorySize < 1 || c.MaxItemSize < 1:
		return errors.New("cache sizes must be positive")
	case c.DiskEnabled && (c.DiskSize < 1 || c.DiskPath == ""):
		return errors.New("the disk cache needs a positive size and a path")
	}
	return nil
}

// tiered is memory → disk → render, with identical misses coalesced.
type tiered struct {
	cfg    Config
	mem    *memoryTier // nil when the cache is disabled
	disk   *diskTier   // nil when the disk tier is off
	flight flights
}

// New builds the tiers of cfg. m may be nil (its collectors then go nowhere).
func New(cfg Config, m *metrics.Metrics, log *slog.Logger) (Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = metrics.New(prometheus.NewRegistry(), nil)
	}
	t := &tiered{cfg: cfg}
	if !cfg.Enabled {
		return t, nil
	}
	mem, err := newMemoryTier(cfg.MemorySize, cfg.MaxItemSize, m)
	if err != nil {
		return nil, err
	}
	t.mem = mem
	if cfg.DiskEnabled {
		t.disk = newDiskTier(cfg.DiskPath, cfg.DiskSize, m, log)
	}
	return t, nil
}

func (t *tiered) Fetch(ctx context.Context, key string, render RenderFunc) ([]byte, Status, error) {
	if t.mem == nil {
		return t.flight.do(ctx, key, func(ctx context.Context) ([]byte, Status, error) {
			v, err := render(ctx)
			return v, StatusBypass, err
		})
	}
	if v, ok := t.mem.get(key); ok {
		return v, StatusHitMemory, nil
	}
	return t.flight.do(ctx, key, func(ctx context.Context) ([]byte, Status, error) {
		// A flight for this key may have finished between our miss and now.
		if v, ok := t.mem.c.Get(key); ok {
			return v, StatusHitMemory, nil
		}
		if t.disk != nil {
			if v, ok := t.disk.get(key); ok {
				t.mem.set(key, v)
				return v, StatusHitDisk, nil
			}
		}
		v, err := render(ctx)
		if err != nil {
			return nil, StatusMiss, err
		}
		t.mem.set(key, v)
		if t.disk != nil {
			t.disk.set(key, v)
		}
		return v, StatusMiss, nil
	})
}

func (t *tiered) Close() error {
	if t.disk != nil {
		t.disk.close()
	}
	if t.mem != nil {
		t.mem.close()
	}
	return nil
}
