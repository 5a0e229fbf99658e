package cache

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/metrics"
	"image-proxy/setting"
)

// Config is the cache part of the settings; the tags are its environment
// variables and defaults.
type Config struct {
	Enabled     bool   `env:"IMAGE_PROXY_ENABLE_CACHE" envDefault:"true"`           // false: every Fetch renders (coalesced), StatusBypass
	MemorySize  int64  `env:"IMAGE_PROXY_CACHE_MEMORY_SIZE" envDefault:"104857600"` // bytes
	MaxItemSize int64  `env:"IMAGE_PROXY_CACHE_MAX_ITEM_SIZE" envDefault:"1048576"` // bytes; larger values skip the memory tier
	DiskEnabled bool   `env:"IMAGE_PROXY_ENABLE_DISK_CACHE" envDefault:"false"`     // needs Enabled
	DiskSize    int64  `env:"IMAGE_PROXY_CACHE_DISK_SIZE" envDefault:"536870912"`   // bytes
	DiskPath    string `env:"IMAGE_PROXY_CACHE_DISK_PATH" envDefault:"./cache"`     // created if missing

	// ResultPrefix is where the shared result tier (NewS3Tier) keeps its
	// entries in the origin's bucket, through the origin's client; empty:
	// no shared tier. Being a place in that bucket, it is judged against
	// the bucket's settings (origin.S3Config.CheckResultPrefix).
	ResultPrefix string `env:"IMAGE_PROXY_S3_RESULT_PREFIX"`
}

// SettingError is a bad setting, named by its environment variable (one
// shape for every package: setting.Error).
type SettingError = setting.Error

// Validate checks the sizes even when a tier is off, so a typo is caught
// before the day the tier is switched on.
func (c Config) Validate() error {
	for _, r := range []struct {
		name      string
		v, lo, hi int64
	}{
		{"IMAGE_PROXY_CACHE_MEMORY_SIZE", c.MemorySize, 1, 1 << 40},
		{"IMAGE_PROXY_CACHE_MAX_ITEM_SIZE", c.MaxItemSize, 1, 1 << 40},
		{"IMAGE_PROXY_CACHE_DISK_SIZE", c.DiskSize, 1, 1 << 50},
	} {
		if err := setting.CheckRange(r.name, r.v, r.lo, r.hi); err != nil {
			return err
		}
	}
	if c.DiskEnabled && c.DiskPath == "" {
		return &SettingError{Name: "IMAGE_PROXY_CACHE_DISK_PATH", Allowed: "a directory path"}
	}
	return nil
}

// LocalTiers builds the in-process tiers cfg asks for, fastest first:
// none when the cache is disabled, memory, then disk when enabled. It
// trusts cfg: settings are validated once, by whoever read them, with
// Validate. m may be nil (its collectors then go nowhere).
func LocalTiers(cfg Config, m *metrics.Metrics, log *slog.Logger) ([]Tier, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	mem, err := NewMemoryTier(cfg.MemorySize, cfg.MaxItemSize, m)
	if err != nil {
		return nil, err
	}
	tiers := []Tier{mem}
	if cfg.DiskEnabled {
		tiers = append(tiers, NewDiskTier(cfg.DiskPath, cfg.DiskSize, m, log))
	}
	return tiers, nil
}

// orDiscard lets callers (mostly tests) pass no metrics.
func orDiscard(m *metrics.Metrics) *metrics.Metrics {
	if m == nil {
		return metrics.New(prometheus.NewRegistry(), nil)
	}
	return m
}
