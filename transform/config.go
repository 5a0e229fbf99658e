package transform

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"image-proxy/setting"
)

// Config holds the encoder and safety settings. Its tags are the one place
// their environment names and defaults are written.
type Config struct {
	JPEGQuality     int   `env:"IMAGE_PROXY_JPEG_QUALITY" envDefault:"75"`
	WebPQuality     int   `env:"IMAGE_PROXY_WEBP_QUALITY" envDefault:"80"`
	WebPEffort      int   `env:"IMAGE_PROXY_WEBP_EFFORT" envDefault:"4"`
	AVIFQuality     int   `env:"IMAGE_PROXY_AVIF_QUALITY" envDefault:"85"`
	AVIFSpeed       int   `env:"IMAGE_PROXY_AVIF_SPEED" envDefault:"6"` // higher = faster
	PNGCompression  int   `env:"IMAGE_PROXY_PNG_COMPRESSION_LEVEL" envDefault:"6"`
	MaxSourcePixels int64 `env:"IMAGE_PROXY_MAX_SOURCE_PIXELS" envDefault:"50000000"` // width × height × frames
	// Decoded sources kept for the next variants of the same source.
	DecodeCacheSize int64         `env:"IMAGE_PROXY_DECODE_CACHE_SIZE" envDefault:"134217728"` // bytes; 0 = off
	DecodeCacheTTL  time.Duration `env:"IMAGE_PROXY_DECODE_CACHE_TTL" envDefault:"10s"`
	// Persisted decodes of large sources (persisted.go): the longest side
	// of a decode that is kept, and the smallest source whose decodes are.
	IntermediateSize     int   `env:"IMAGE_PROXY_INTERMEDIATE_SIZE" envDefault:"1600"`                // pixels; 0 = off
	IntermediateMinBytes int64 `env:"IMAGE_PROXY_INTERMEDIATE_MIN_SOURCE_BYTES" envDefault:"1048576"` // smaller sources always decode
}

// DefaultConfig returns the defaults of the tags, as if no variable were set.
func DefaultConfig() Config {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}}); err != nil {
		// The tags are constants: only an edit to them can get here.
		panic("transform: Config's envDefault tags do not parse: " + err.Error())
	}
	return c
}

// Validate checks every setting against its range; the error is a
// *SettingError naming the variable.
func (c Config) Validate() error {
	for _, r := range []struct {
		field     string
		v, lo, hi int64
	}{
		{"AVIFSpeed", int64(c.AVIFSpeed), 1, 10},
		{"AVIFQuality", int64(c.AVIFQuality), 0, 100},
		{"JPEGQuality", int64(c.JPEGQuality), 0, 100},
		{"WebPQuality", int64(c.WebPQuality), 0, 100},
		{"WebPEffort", int64(c.WebPEffort), 0, 6},
		{"PNGCompression", int64(c.PNGCompression), 0, 9},
		{"MaxSourcePixels", c.MaxSourcePixels, 1, 1 << 40},
		{"DecodeCacheSize", c.DecodeCacheSize, 0, 1 << 40},
		{"IntermediateSize", int64(c.IntermediateSize), 0, maxStoredDecodeSide},
		{"IntermediateMinBytes", c.IntermediateMinBytes, 0, 1 << 40},
	} {
		if err := setting.CheckRange(settingName(r.field), r.v, r.lo, r.hi); err != nil {
			return err
		}
	}
	if c.DecodeCacheTTL < time.Second || c.DecodeCacheTTL > maxDecodeCacheTTL {
		return &SettingError{Name: settingName("DecodeCacheTTL"), Value: c.DecodeCacheTTL.String(),
			Allowed: "a duration from 1s to " + maxDecodeCacheTTL.String() + ", such as 10s"}
	}
	return nil
}

// maxDecodeCacheTTL: decodes are kept for the variants of a burst, seconds
// apart; the result cache keeps what lasts.
const maxDecodeCacheTTL = 10 * time.Minute

// settingName is the environment variable of a Config field.
func settingName(field string) string {
	f, ok := reflect.TypeFor[Config]().FieldByName(field)
	if !ok {
		return field
	}
	return f.Tag.Get("env")
}

// pixelRule names the rules that decide the pixels before any encoder
// (the shrink-on-load rule of plan.go among them). Change it whenever they
// change, so every cached variant and its ETag change with the bytes.
const pixelRule = "v2"

// Fingerprints hold, for each output format, a stable string of the
// settings that change its bytes. They belong in every cache key and ETag,
// but a setting re-keys only the formats it changes: a new AVIF speed
// leaves every JPEG, WebP and PNG variant's ETag as it was.
type Fingerprints struct{ own [formatCount]string }

// Fingerprints are the fingerprints of c, one per output format. The
// decode cache's settings are in none: they change what a render costs,
// never its pixels (plan.go, decode).
func (c Config) Fingerprints() Fingerprints {
	var f Fingerprints
	for _, out := range Outputs() {
		f.own[out] = spec(out).settings(c)
	}
	return f
}

// Of is the fingerprint of a request that may produce any of formats (a
// request whose output follows its source, or format=auto): their own
// settings in Format order, then the pixel rule, so it changes exactly when
// the bytes of one of those formats may. Formats that cannot be encoded add
// nothing.
func (f Fingerprints) Of(formats ...Format) string {
	parts := make([]string, 0, len(formats)+1)
	for out := range formatCount {
		if slices.Contains(formats, out) && f.own[out] != "" {
			parts = append(parts, f.own[out])
		}
	}
	return strings.Join(append(parts, pixelRule), ".")
}

// SettingError is a setting outside what is allowed (one shape for every
// package: setting.Error).
type SettingError = setting.Error
