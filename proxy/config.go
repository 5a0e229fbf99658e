package proxy

import (
	"net"
	"runtime"
	"time"

	"image-proxy/request"
	"image-proxy/setting"
	"image-proxy/transform"
)

// Config is the HTTP part of the settings. The tags are the one place of
// its names and defaults; main parses the environment into it.
type Config struct {
	BindAddress       string                 `env:"IMAGE_PROXY_BIND_ADDRESS" envDefault:"0.0.0.0:8000"`
	StripPath         string                 `env:"IMAGE_PROXY_STRIP_PATH"`
	CacheControl      string                 `env:"IMAGE_PROXY_CACHE_CONTROL_HEADER" envDefault:"public, max-age=31536000, no-transform"` // empty: none on images
	ErrorCacheControl string                 `env:"IMAGE_PROXY_ERROR_CACHE_CONTROL_HEADER" envDefault:"public, max-age=60"`               // empty: none on 4xx
	CacheTags         bool                   `env:"IMAGE_PROXY_CACHE_TAGS" envDefault:"true"`                                             // Surrogate-Key and Cache-Tag on images
	MaxBox            int                    `env:"IMAGE_PROXY_MAX_SIZE" envDefault:"4000"`                                               // pixels, the largest effective box
	MaxSourceBytes    int64                  `env:"IMAGE_PROXY_MAX_SOURCE_BYTES" envDefault:"52428800"`
	Algorithm         transform.Algorithm    `env:"IMAGE_PROXY_RESIZE_ALGORITHM" envDefault:"auto"` // default resize_algorithm
	Concurrency       int                    `env:"IMAGE_PROXY_CONCURRENCY"`                        // 0 = GOMAXPROCS
	QueueDepth        int                    `env:"IMAGE_PROXY_QUEUE_DEPTH" envDefault:"128"`
	QueueTimeout      time.Duration          `env:"IMAGE_PROXY_QUEUE_TIMEOUT" envDefault:"10s"`
	ReadTimeout       time.Duration          `env:"IMAGE_PROXY_READ_TIMEOUT" envDefault:"10s"`
	WriteTimeout      time.Duration          `env:"IMAGE_PROXY_WRITE_TIMEOUT" envDefault:"60s"`
	IdleTimeout       time.Duration          `env:"IMAGE_PROXY_IDLE_TIMEOUT" envDefault:"75s"`
	MaxConns          int                    `env:"IMAGE_PROXY_MAX_CONNECTIONS" envDefault:"10000"`
	MaxHeaderBytes    int                    `env:"IMAGE_PROXY_MAX_HEADER_BYTES" envDefault:"8192"` // larger request headers get 431
	Controls          request.ControlsConfig // presets, quality, allowed sizes, signed URLs, /r/ routes
	Backend           BackendConfig          // POST /convert and POST /bulk
	Hooks             HooksConfig            // POST /events/s3 and POST /purge

	// Set by main, not read from the environment.
	Encoders       transform.Fingerprints // per output format, part of every key
	Version        string
	LibvipsVersion string
}

// Variants is the variant builder of these settings: live requests' and,
// given by main, warm's, so both compute the same keys.
func (c Config) Variants() request.Variants {
	return request.Variants{MaxBox: c.MaxBox, Algorithm: c.Algorithm, Encoders: request.NewEncoders(c.Encoders)}
}

// Slots is the number of renders that may run at once. By default one per
// CPU the process may use: GOMAXPROCS, which since Go 1.25 follows a
// container's CPU limit (and GOMAXPROCS=n), where NumCPU counts the node's.
func (c Config) Slots() int {
	if c.Concurrency == 0 {
		return runtime.GOMAXPROCS(0)
	}
	return c.Concurrency
}

// Validate checks every value against its range.
func (c Config) Validate() error {
	for _, r := range []struct {
		name      string
		v, lo, hi int64
	}{
		{"IMAGE_PROXY_MAX_SIZE", int64(c.MaxBox), 1, 100000},
		{"IMAGE_PROXY_MAX_SOURCE_BYTES", c.MaxSourceBytes, 1, 1 << 40},
		{"IMAGE_PROXY_CONCURRENCY", int64(c.Slots()), 1, 1024},
		{"IMAGE_PROXY_QUEUE_DEPTH", int64(c.QueueDepth), 0, 1 << 20},
		{"IMAGE_PROXY_MAX_CONNECTIONS", int64(c.MaxConns), 1, 1 << 24},
		{"IMAGE_PROXY_MAX_HEADER_BYTES", int64(c.MaxHeaderBytes), 1024, 1 << 20},
	} {
		if err := setting.CheckRange(r.name, r.v, r.lo, r.hi); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"IMAGE_PROXY_QUEUE_TIMEOUT", c.QueueTimeout},
		{"IMAGE_PROXY_READ_TIMEOUT", c.ReadTimeout},
		{"IMAGE_PROXY_WRITE_TIMEOUT", c.WriteTimeout},
		{"IMAGE_PROXY_IDLE_TIMEOUT", c.IdleTimeout},
	} {
		if err := setting.CheckDuration(d.name, d.v); err != nil {
			return err
		}
	}
	if _, _, err := net.SplitHostPort(c.BindAddress); err != nil {
		return setting.Invalid("IMAGE_PROXY_BIND_ADDRESS", c.BindAddress, "host:port, such as 0.0.0.0:8000")
	}
	if err := c.Hooks.validate(); err != nil {
		return err
	}
	if err := c.Backend.validate(); err != nil {
		return err
	}
	return c.Controls.Validate(c.MaxBox)
}
