package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"image-proxy/request"
	"image-proxy/transform"
)

// Config is the HTTP part of the settings. The tags are the one place of
// its names and defaults; main parses the environment into it.
type Config struct {
	BindAddress       string                 `env:"IMAGE_PROXY_BIND_ADDRESS" envDefault:"0.0.0.0:8000"`
	RootPath          string                 `env:"IMAGE_PROXY_ROOT_PATH" envDefault:"./data/images"`
	StripPath         string                 `env:"IMAGE_PROXY_STRIP_PATH"`
	CacheControl      string                 `env:"IMAGE_PROXY_CACHE_CONTROL_HEADER" envDefault:"public, max-age=31536000, no-transform"` // empty: none on images
	ErrorCacheControl string                 `env:"IMAGE_PROXY_ERROR_CACHE_CONTROL_HEADER" envDefault:"public, max-age=60"`               // empty: none on 4xx
	MaxBox            int                    `env:"IMAGE_PROXY_MAX_SIZE" envDefault:"4000"`                                               // pixels, the largest effective box
	MaxSourceBytes    int64                  `env:"IMAGE_PROXY_MAX_SOURCE_BYTES" envDefault:"52428800"`
	Algorithm         transform.Algorithm    `env:"IMAGE_PROXY_RESIZE_ALGORITHM" envDefault:"auto"` // default resize_algorithm
	Concurrency       int                    `env:"IMAGE_PROXY_CONCURRENCY"`                        // 0 = one per CPU
	QueueDepth        int                    `env:"IMAGE_PROXY_QUEUE_DEPTH" envDefault:"128"`
	QueueTimeout      time.Duration          `env:"IMAGE_PROXY_QUEUE_TIMEOUT" envDefault:"10s"`
	ReadTimeout       time.Duration          `env:"IMAGE_PROXY_READ_TIMEOUT" envDefault:"10s"`
	WriteTimeout      time.Duration          `env:"IMAGE_PROXY_WRITE_TIMEOUT" envDefault:"60s"`
	IdleTimeout       time.Duration          `env:"IMAGE_PROXY_IDLE_TIMEOUT" envDefault:"75s"`
	MaxConns          int                    `env:"IMAGE_PROXY_MAX_CONNECTIONS" envDefault:"10000"`
	MaxHeaderBytes    int                    `env:"IMAGE_PROXY_MAX_HEADER_BYTES" envDefault:"8192"`  // larger request headers get 431
	StatCacheMaxAge   time.Duration          `env:"IMAGE_PROXY_STAT_CACHE_MAX_AGE" envDefault:"10s"` // 0: stat the original on every request
	Fallback          FallbackConfig         // read by main to build the source chain
	S3                S3Config               // read by main to build the source chain and the result tier
	Controls          request.ControlsConfig // presets, quality, allowed sizes, signed URLs, /r/ routes
	Backend           BackendConfig          // POST /convert and POST /bulk

	// Set by main, not read from the environment.
	Encoders       transform.Fingerprints // per output format, part of every key
	Version        string
	LibvipsVersion string
}

// FallbackConfig describes the upstream asked for originals no earlier
// source has.
type FallbackConfig struct {
	URL      string        `env:"IMAGE_PROXY_FALLBACK_IMAGE_URL"` // empty: no fallback
	MaxBytes int64         `env:"IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE" envDefault:"5242880"`
	Timeout  time.Duration `env:"IMAGE_PROXY_FALLBACK_TIMEOUT" envDefault:"10s"`
}

// S3Config describes an S3-compatible bucket: originals under Prefix (a
// source after the local directory) and, with ResultPrefix, the shared
// result tier. Print it with %v or log it with slog: both redact the
// secret.
type S3Config struct {
	Endpoint     string        `env:"IMAGE_PROXY_S3_ENDPOINT"` // http(s)://host[:port]; empty: AWS for Region
	Bucket       string        `env:"IMAGE_PROXY_S3_BUCKET"`   // empty: no S3 at all
	Region       string        `env:"IMAGE_PROXY_S3_REGION" envDefault:"us-east-1"`
	AccessKey    string        `env:"IMAGE_PROXY_S3_ACCESS_KEY"` // both keys empty: the AWS credential chain
	SecretKey    string        `env:"IMAGE_PROXY_S3_SECRET_KEY"`
	Prefix       string        `env:"IMAGE_PROXY_S3_PREFIX"` // prepended verbatim to the request path
	PathStyle    bool          `env:"IMAGE_PROXY_S3_PATH_STYLE" envDefault:"true"`
	ResultPrefix string        `env:"IMAGE_PROXY_S3_RESULT_PREFIX"` // empty: no shared result tier
	Timeout      time.Duration `env:"IMAGE_PROXY_S3_TIMEOUT" envDefault:"10s"`
}

// Enabled reports whether a bucket is configured.
func (s S3Config) Enabled() bool { return s.Bucket != "" }

// String redacts the secret, so a config printed whole leaks nothing.
func (s S3Config) String() string {
	return fmt.Sprintf("{Endpoint:%s Bucket:%s Region:%s AccessKey:%s SecretKey:%s Prefix:%s PathStyle:%t ResultPrefix:%s Timeout:%s}",
		s.Endpoint, s.Bucket, s.Region, s.AccessKey, redact(s.SecretKey), s.Prefix, s.PathStyle, s.ResultPrefix, s.Timeout)
}

// GoString keeps %#v from bypassing String.
func (s S3Config) GoString() string { return "proxy.S3Config" + s.String() }

// LogValue is what slog records: the same fields, the secret redacted.
func (s S3Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", s.Endpoint), slog.String("bucket", s.Bucket),
		slog.String("region", s.Region), slog.String("access_key", s.AccessKey),
		slog.String("secret_key", redact(s.SecretKey)), slog.String("prefix", s.Prefix),
		slog.Bool("path_style", s.PathStyle), slog.String("result_prefix", s.ResultPrefix),
		slog.Duration("timeout", s.Timeout))
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "REDACTED"
}

func (s S3Config) validate() error {
	if err := CheckDuration("IMAGE_PROXY_S3_TIMEOUT", s.Timeout); err != nil {
		return err
	}
	if !s.Enabled() {
		// Any other S3 setting without a bucket is a half-made
		// configuration that would otherwise be silently ignored. Region,
		// path style and timeout have defaults, so only the rest count.
		for _, v := range []struct{ name, value string }{
			{"IMAGE_PROXY_S3_ENDPOINT", s.Endpoint},
			{"IMAGE_PROXY_S3_ACCESS_KEY", s.AccessKey},
			{"IMAGE_PROXY_S3_SECRET_KEY", s.SecretKey},
			{"IMAGE_PROXY_S3_PREFIX", s.Prefix},
			{"IMAGE_PROXY_S3_RESULT_PREFIX", s.ResultPrefix},
		} {
			if v.value != "" {
				return fmt.Errorf("invalid setting %s: it needs IMAGE_PROXY_S3_BUCKET", v.name)
			}
		}
		return nil
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s.Endpoint, "?#") {
			// The value may carry credentials: name the rule, not the value.
			return fmt.Errorf("invalid setting IMAGE_PROXY_S3_ENDPOINT: must be an http or https URL with a host and no path, query or credentials, such as https://minio.internal:9000")
		}
	}
	if !validBucket(s.Bucket) {
		return settingError("IMAGE_PROXY_S3_BUCKET", s.Bucket, "an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens")
	}
	if s.Region == "" || strings.ContainsAny(s.Region, " /\\") {
		return settingError("IMAGE_PROXY_S3_REGION", s.Region, "a region name, such as us-east-1")
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		return fmt.Errorf("invalid setting IMAGE_PROXY_S3_ACCESS_KEY/IMAGE_PROXY_S3_SECRET_KEY: set both, or neither for the AWS credential chain (environment, shared files, instance role)")
	}
	for _, p := range []struct{ name, value string }{
		{"IMAGE_PROXY_S3_PREFIX", s.Prefix},
		{"IMAGE_PROXY_S3_RESULT_PREFIX", s.ResultPrefix},
	} {
		if strings.HasPrefix(p.value, "/") || strings.ContainsAny(p.value, "\\\x00") || slices.Contains(strings.Split(p.value, "/"), "..") {
			return settingError(p.name, p.value, "a key prefix without a leading /, .. segments, \\ or NUL, such as originals/")
		}
	}
	if s.ResultPrefix != "" && s.Prefix != "" && (strings.HasPrefix(s.ResultPrefix, s.Prefix) || strings.HasPrefix(s.Prefix, s.ResultPrefix)) {
		// Results under the originals' prefix would be served as originals.
		return settingError("IMAGE_PROXY_S3_RESULT_PREFIX", s.ResultPrefix, "a prefix that neither contains nor lies inside IMAGE_PROXY_S3_PREFIX")
	}
	return CheckDuration("IMAGE_PROXY_S3_TIMEOUT", s.Timeout)
}

// validBucket is the S3 naming rule (path-style buckets allow no more).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Contains(b, "..") {
		return false
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '.' || r == '-') && i > 0 && i < len(b)-1
		if !ok {
			return false
		}
	}
	return true
}

// Slots is the number of renders that may run at once.
func (c Config) Slots() int {
	if c.Concurrency == 0 {
		return runtime.NumCPU()
	}
	return c.Concurrency
}

// settingError names the variable, the value and what is allowed.
func settingError(name string, value any, allowed string) error {
	return fmt.Errorf("invalid setting %s=%q: must be %s", name, fmt.Sprint(value), allowed)
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
		{"IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE", c.Fallback.MaxBytes, 1, 1 << 40},
	} {
		if r.v < r.lo || r.v > r.hi {
			return settingError(r.name, r.v, fmt.Sprintf("from %d to %d", r.lo, r.hi))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"IMAGE_PROXY_FALLBACK_TIMEOUT", c.Fallback.Timeout},
		{"IMAGE_PROXY_QUEUE_TIMEOUT", c.QueueTimeout},
		{"IMAGE_PROXY_READ_TIMEOUT", c.ReadTimeout},
		{"IMAGE_PROXY_WRITE_TIMEOUT", c.WriteTimeout},
		{"IMAGE_PROXY_IDLE_TIMEOUT", c.IdleTimeout},
	} {
		if err := CheckDuration(d.name, d.v); err != nil {
			return err
		}
	}
	if c.StatCacheMaxAge != 0 {
		if err := CheckDuration("IMAGE_PROXY_STAT_CACHE_MAX_AGE", c.StatCacheMaxAge); err != nil {
			return settingError("IMAGE_PROXY_STAT_CACHE_MAX_AGE", c.StatCacheMaxAge.String(), "0 (off) or a positive duration up to 24h, such as 10s or 1m")
		}
	}
	if _, _, err := net.SplitHostPort(c.BindAddress); err != nil {
		return settingError("IMAGE_PROXY_BIND_ADDRESS", c.BindAddress, "host:port, such as 0.0.0.0:8000")
	}
	if err := c.Backend.validate(); err != nil {
		return err
	}
	if err := c.S3.validate(); err != nil {
		return err
	}
	if err := c.Controls.Validate(c.MaxBox); err != nil {
		return err
	}
	if _, err := os.Stat(c.RootPath); errors.Is(err, fs.ErrNotExist) && c.S3.Enabled() {
		// An S3-only deployment has no local originals: main leaves the
		// local source out of the chain.
		return c.Fallback.validate()
	}
	if f, err := os.Open(c.RootPath); err != nil {
		return settingError("IMAGE_PROXY_ROOT_PATH", c.RootPath, "a readable directory")
	} else if fi, err := f.Stat(); f.Close() != nil || err != nil || !fi.IsDir() {
		return settingError("IMAGE_PROXY_ROOT_PATH", c.RootPath, "a readable directory")
	}
	return c.Fallback.validate()
}

// CheckDuration accepts a positive duration up to a day.
func CheckDuration(name string, d time.Duration) error {
	if d <= 0 || d > 24*time.Hour {
		return settingError(name, d.String(), "a positive duration up to 24h, such as 500ms, 10s or 1m")
	}
	return nil
}

func (f FallbackConfig) validate() error {
	if f.URL == "" {
		return nil
	}
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Contains(f.URL, "#") {
		return settingError("IMAGE_PROXY_FALLBACK_IMAGE_URL", f.URL, "an http or https URL with a host and no query, fragment or credentials")
	}
	return nil
}
