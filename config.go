package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
)

// settings is every environment variable image-proxy reads. The tags are the
// single source of names and defaults; .env.template and the README table
// are checked against them by a test.
type settings struct {
	BindAddress       string        `env:"IMAGE_PROXY_BIND_ADDRESS" envDefault:"0.0.0.0:8000"`
	RootPath          string        `env:"IMAGE_PROXY_ROOT_PATH" envDefault:"./data/images"`
	StripPath         string        `env:"IMAGE_PROXY_STRIP_PATH"`
	FallbackURL       string        `env:"IMAGE_PROXY_FALLBACK_IMAGE_URL"`
	FallbackMaxSize   int64         `env:"IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE" envDefault:"5242880"`
	FallbackTimeout   time.Duration `env:"IMAGE_PROXY_FALLBACK_TIMEOUT" envDefault:"10s"`
	AVIFSpeed         int           `env:"IMAGE_PROXY_AVIF_SPEED" envDefault:"6"`
	AVIFQuality       int           `env:"IMAGE_PROXY_AVIF_QUALITY" envDefault:"85"`
	JPEGQuality       int           `env:"IMAGE_PROXY_JPEG_QUALITY" envDefault:"75"`
	WebPQuality       int           `env:"IMAGE_PROXY_WEBP_QUALITY" envDefault:"80"`
	WebPEffort        int           `env:"IMAGE_PROXY_WEBP_EFFORT" envDefault:"4"`
	PNGCompression    int           `env:"IMAGE_PROXY_PNG_COMPRESSION_LEVEL" envDefault:"6"`
	ResizeAlgorithm   string        `env:"IMAGE_PROXY_RESIZE_ALGORITHM" envDefault:"auto"`
	EnableCache       bool          `env:"IMAGE_PROXY_ENABLE_CACHE" envDefault:"true"`
	CacheMemorySize   int64         `env:"IMAGE_PROXY_CACHE_MEMORY_SIZE" envDefault:"104857600"`
	CacheMaxItemSize  int64         `env:"IMAGE_PROXY_CACHE_MAX_ITEM_SIZE" envDefault:"1048576"`
	EnableDiskCache   bool          `env:"IMAGE_PROXY_ENABLE_DISK_CACHE" envDefault:"false"`
	CacheDiskSize     int64         `env:"IMAGE_PROXY_CACHE_DISK_SIZE" envDefault:"536870912"`
	CacheDiskPath     string        `env:"IMAGE_PROXY_CACHE_DISK_PATH" envDefault:"./cache"`
	CacheControl      string        `env:"IMAGE_PROXY_CACHE_CONTROL_HEADER" envDefault:"public, max-age=31536000, no-transform"`
	ErrorCacheControl string        `env:"IMAGE_PROXY_ERROR_CACHE_CONTROL_HEADER" envDefault:"public, max-age=60"`
	MaxSize           int           `env:"IMAGE_PROXY_MAX_SIZE" envDefault:"4000"`
	MaxSourcePixels   int64         `env:"IMAGE_PROXY_MAX_SOURCE_PIXELS" envDefault:"50000000"`
	MaxSourceBytes    int64         `env:"IMAGE_PROXY_MAX_SOURCE_BYTES" envDefault:"52428800"`
	Concurrency       int           `env:"IMAGE_PROXY_CONCURRENCY"` // 0 = number of CPUs
	QueueTimeout      time.Duration `env:"IMAGE_PROXY_QUEUE_TIMEOUT" envDefault:"10s"`
	QueueDepth        int           `env:"IMAGE_PROXY_QUEUE_DEPTH" envDefault:"128"`
	ShutdownTimeout   time.Duration `env:"IMAGE_PROXY_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	LogLevel          string        `env:"IMAGE_PROXY_LOG_LEVEL"`
	RustLog           string        `env:"RUST_LOG"`
	LogFormat         string        `env:"IMAGE_PROXY_LOG_FORMAT" envDefault:"text"`
	ReadTimeout       time.Duration `env:"IMAGE_PROXY_READ_TIMEOUT" envDefault:"10s"`
	WriteTimeout      time.Duration `env:"IMAGE_PROXY_WRITE_TIMEOUT" envDefault:"60s"`
	IdleTimeout       time.Duration `env:"IMAGE_PROXY_IDLE_TIMEOUT" envDefault:"75s"`
	MaxConnections    int           `env:"IMAGE_PROXY_MAX_CONNECTIONS" envDefault:"10000"`
	MaxHeaderBytes    int           `env:"IMAGE_PROXY_MAX_HEADER_BYTES" envDefault:"8192"`
}

// settingError is a bad setting: exit status 2 and one line naming the
// variable, the value and what is allowed.
type settingError struct{ name, value, allowed string }

func (e *settingError) Error() string {
	return fmt.Sprintf("invalid setting %s=%q: must be %s", e.name, e.value, e.allowed)
}

// loadSettings reads .env (real environment variables win) and the
// environment, then validates every value.
func loadSettings(getenv func(string) (string, bool), dotenv string) (settings, error) {
	vars := map[string]string{}
	if dotenv != "" {
		if m, err := godotenv.Read(dotenv); err == nil {
			vars = m
		} else if !errors.Is(err, os.ErrNotExist) {
			return settings{}, fmt.Errorf("read %s: %w", dotenv, err)
		}
	}
	var s settings
	for _, name := range settingNames() {
		if v, ok := getenv(name); ok {
			vars[name] = v
		}
	}
	err := env.ParseWithOptions(&s, env.Options{Environment: vars})
	if err != nil {
		return s, parseFailure(err, vars)
	}
	// An empty header setting means "send no header", not "use the default".
	if v, ok := vars["IMAGE_PROXY_CACHE_CONTROL_HEADER"]; ok {
		s.CacheControl = v
	}
	if v, ok := vars["IMAGE_PROXY_ERROR_CACHE_CONTROL_HEADER"]; ok {
		s.ErrorCacheControl = v
	}
	if s.Concurrency == 0 {
		s.Concurrency = runtime.NumCPU()
	}
	return s, s.validate()
}

// parseFailure turns the library's type errors into a settingError.
func parseFailure(err error, vars map[string]string) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		var pe env.ParseError
		if errors.As(agg.Errors[0], &pe) {
			name := envName(pe.Name)
			allowed := "a whole number"
			switch pe.Type.Kind() {
			case reflect.Bool:
				allowed = "true or false"
			case reflect.Int64:
				if pe.Type == reflect.TypeOf(time.Duration(0)) {
					allowed = "a duration such as 500ms, 10s or 1m"
				}
			}
			return &settingError{name, vars[name], allowed}
		}
	}
	return err
}

func settingNames() []string {
	t := reflect.TypeOf(settings{})
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if n := t.Field(i).Tag.Get("env"); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func envName(field string) string {
	f, _ := reflect.TypeOf(settings{}).FieldByName(field)
	return f.Tag.Get("env")
}

func (s *settings) validate() error {
	type intRange struct {
		name      string
		v, lo, hi int64
	}
	for _, r := range []intRange{
		{"IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE", s.FallbackMaxSize, 1, 1 << 40},
		{"IMAGE_PROXY_AVIF_SPEED", int64(s.AVIFSpeed), 1, 10},
		{"IMAGE_PROXY_AVIF_QUALITY", int64(s.AVIFQuality), 0, 100},
		{"IMAGE_PROXY_JPEG_QUALITY", int64(s.JPEGQuality), 0, 100},
		{"IMAGE_PROXY_WEBP_QUALITY", int64(s.WebPQuality), 0, 100},
		{"IMAGE_PROXY_WEBP_EFFORT", int64(s.WebPEffort), 0, 6},
		{"IMAGE_PROXY_PNG_COMPRESSION_LEVEL", int64(s.PNGCompression), 0, 9},
		{"IMAGE_PROXY_CACHE_MEMORY_SIZE", s.CacheMemorySize, 1, 1 << 40},
		{"IMAGE_PROXY_CACHE_MAX_ITEM_SIZE", s.CacheMaxItemSize, 1, 1 << 40},
		{"IMAGE_PROXY_CACHE_DISK_SIZE", s.CacheDiskSize, 1, 1 << 50},
		{"IMAGE_PROXY_MAX_SIZE", int64(s.MaxSize), 1, 100000},
		{"IMAGE_PROXY_MAX_SOURCE_PIXELS", s.MaxSourcePixels, 1, 1 << 40},
		{"IMAGE_PROXY_MAX_SOURCE_BYTES", s.MaxSourceBytes, 1, 1 << 40},
		{"IMAGE_PROXY_CONCURRENCY", int64(s.Concurrency), 1, 1024},
		{"IMAGE_PROXY_QUEUE_DEPTH", int64(s.QueueDepth), 0, 1 << 20},
		{"IMAGE_PROXY_MAX_CONNECTIONS", int64(s.MaxConnections), 1, 1 << 24},
		{"IMAGE_PROXY_MAX_HEADER_BYTES", int64(s.MaxHeaderBytes), 1024, 1 << 20},
	} {
		if r.v < r.lo || r.v > r.hi {
			return &settingError{r.name, fmt.Sprint(r.v), fmt.Sprintf("from %d to %d", r.lo, r.hi)}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"IMAGE_PROXY_FALLBACK_TIMEOUT", s.FallbackTimeout},
		{"IMAGE_PROXY_QUEUE_TIMEOUT", s.QueueTimeout},
		{"IMAGE_PROXY_SHUTDOWN_TIMEOUT", s.ShutdownTimeout},
		{"IMAGE_PROXY_READ_TIMEOUT", s.ReadTimeout},
		{"IMAGE_PROXY_WRITE_TIMEOUT", s.WriteTimeout},
		{"IMAGE_PROXY_IDLE_TIMEOUT", s.IdleTimeout},
	} {
		if d.v <= 0 || d.v > 24*time.Hour {
			return &settingError{d.name, d.v.String(), "a positive duration up to 24h, such as 500ms, 10s or 1m"}
		}
	}
	if _, _, err := net.SplitHostPort(s.BindAddress); err != nil {
		return &settingError{"IMAGE_PROXY_BIND_ADDRESS", s.BindAddress, "host:port, such as 0.0.0.0:8000"}
	}
	if fi, err := os.Stat(s.RootPath); err != nil || !fi.IsDir() {
		return &settingError{"IMAGE_PROXY_ROOT_PATH", s.RootPath, "a readable directory"}
	}
	if f, err := os.Open(s.RootPath); err != nil {
		return &settingError{"IMAGE_PROXY_ROOT_PATH", s.RootPath, "a readable directory"}
	} else {
		f.Close()
	}
	if s.FallbackURL != "" {
		u, err := url.Parse(s.FallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Contains(s.FallbackURL, "#") {
			return &settingError{"IMAGE_PROXY_FALLBACK_IMAGE_URL", s.FallbackURL, "an http or https URL with a host and no query, fragment or credentials"}
		}
	}
	switch strings.ToLower(s.ResizeAlgorithm) {
	case "auto", "lanczos3", "thumbnail":
	default:
		return &settingError{"IMAGE_PROXY_RESIZE_ALGORITHM", s.ResizeAlgorithm, "lanczos3, thumbnail or auto"}
	}
	switch strings.ToLower(s.LogFormat) {
	case "text", "json":
	default:
		return &settingError{"IMAGE_PROXY_LOG_FORMAT", s.LogFormat, "text or json"}
	}
	if _, err := s.logLevel(); err != nil {
		return err
	}
	if s.CacheDiskPath == "" && s.EnableDiskCache {
		return &settingError{"IMAGE_PROXY_CACHE_DISK_PATH", "", "a directory path"}
	}
	return nil
}

// logLevel reads IMAGE_PROXY_LOG_LEVEL, falling back to RUST_LOG as the Rust
// service did. RUST_LOG may be a directive list ("warn,image_proxy=debug"):
// the image_proxy directive wins, else the bare level; unknown directives
// for other crates are ignored.
func (s *settings) logLevel() (slog.Level, error) {
	name, value := "IMAGE_PROXY_LOG_LEVEL", s.LogLevel
	if value == "" && s.RustLog != "" {
		name, value = "RUST_LOG", rustLogLevel(s.RustLog)
	}
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "off":
		return slog.LevelError, nil
	}
	return 0, &settingError{name, value, "debug, info, warn or error"}
}

func rustLogLevel(v string) string {
	bare := ""
	for d := range strings.SplitSeq(v, ",") {
		d = strings.TrimSpace(d)
		target, level, found := strings.Cut(d, "=")
		switch {
		case !found:
			bare = d
		case strings.ReplaceAll(target, "-", "_") == "image_proxy":
			return level
		}
	}
	return bare
}
