package transform

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
)

func TestDefaultConfigComesFromTheTags(t *testing.T) {
	want := Config{JPEGQuality: 75, WebPQuality: 80, WebPEffort: 4, AVIFQuality: 85, AVIFSpeed: 6, PNGCompression: 6, MaxSourcePixels: 50_000_000,
		DecodeCacheSize: 128 << 20, DecodeCacheTTL: 10 * time.Second, IntermediateSize: 1600, IntermediateMinBytes: 1 << 20}
	if got := DefaultConfig(); got != want {
		t.Fatalf("DefaultConfig() = %+v, want %+v", got, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigReadsItsVariables(t *testing.T) {
	var c Config
	err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{
		"IMAGE_PROXY_JPEG_QUALITY": "90", "IMAGE_PROXY_MAX_SOURCE_PIXELS": "1000",
		"IMAGE_PROXY_DECODE_CACHE_SIZE": "0", "IMAGE_PROXY_DECODE_CACHE_TTL": "1m",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.JPEGQuality != 90 || c.MaxSourcePixels != 1000 || c.WebPQuality != 80 || c.DecodeCacheSize != 0 || c.DecodeCacheTTL != time.Minute {
		t.Errorf("parsed %+v", c)
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	c := DefaultConfig()
	c.JPEGQuality = 500
	err := c.Validate()
	const want = `invalid setting IMAGE_PROXY_JPEG_QUALITY="500": must be from 0 to 100`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	var se *SettingError
	if !errors.As(err, &se) || se.Name != "IMAGE_PROXY_JPEG_QUALITY" || se.Value != "500" || se.Allowed != "from 0 to 100" {
		t.Errorf("not a SettingError with its parts: %#v", err)
	}
}

// Every field is validated, and its error names the field's own variable.
func TestValidateCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		for _, bad := range []int64{-1, 1 << 41} {
			c := DefaultConfig()
			reflect.ValueOf(&c).Elem().Field(i).SetInt(bad)
			var se *SettingError
			if err := c.Validate(); !errors.As(err, &se) || se.Name != f.Tag.Get("env") {
				t.Errorf("%s = %d: %v", f.Name, bad, err)
			}
		}
	}
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.WebPEffort = 7 }, `invalid setting IMAGE_PROXY_WEBP_EFFORT="7": must be from 0 to 6`},
		{func(c *Config) { c.AVIFSpeed = 0 }, `invalid setting IMAGE_PROXY_AVIF_SPEED="0": must be from 1 to 10`},
		{func(c *Config) { c.PNGCompression = 10 }, `invalid setting IMAGE_PROXY_PNG_COMPRESSION_LEVEL="10": must be from 0 to 9`},
		{func(c *Config) { c.MaxSourcePixels = 0 }, `invalid setting IMAGE_PROXY_MAX_SOURCE_PIXELS="0": must be from 1 to 1099511627776`},
		{func(c *Config) { c.DecodeCacheSize = -1 }, `invalid setting IMAGE_PROXY_DECODE_CACHE_SIZE="-1": must be from 0 to 1099511627776`},
		{func(c *Config) { c.DecodeCacheTTL = 500 * time.Millisecond }, `invalid setting IMAGE_PROXY_DECODE_CACHE_TTL="500ms": must be a duration from 1s to 10m0s, such as 10s`},
		{func(c *Config) { c.DecodeCacheTTL = 11 * time.Minute }, `invalid setting IMAGE_PROXY_DECODE_CACHE_TTL="11m0s": must be a duration from 1s to 10m0s, such as 10s`},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		if err := cfg.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %s", err, c.want)
		}
	}
	edge := DefaultConfig()
	edge.JPEGQuality, edge.WebPEffort, edge.AVIFSpeed, edge.PNGCompression, edge.MaxSourcePixels = 0, 6, 10, 9, 1<<40
	edge.DecodeCacheSize, edge.DecodeCacheTTL = 0, time.Second
	if err := edge.Validate(); err != nil {
		t.Errorf("the range ends are refused: %v", err)
	}
	edge.DecodeCacheSize, edge.DecodeCacheTTL = 1<<40, 10*time.Minute
	if err := edge.Validate(); err != nil {
		t.Errorf("the range ends are refused: %v", err)
	}
}

func TestAlgorithmIsText(t *testing.T) {
	for _, a := range []Algorithm{AlgorithmAuto, AlgorithmLanczos3, AlgorithmThumbnail} {
		b, err := a.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Algorithm
		if err := got.UnmarshalText(b); err != nil || got != a {
			t.Errorf("%s round-trips to %s, %v", a, got, err)
		}
	}
	var s struct {
		A Algorithm `env:"ALGO" envDefault:"auto"`
	}
	if err := env.ParseWithOptions(&s, env.Options{Environment: map[string]string{"ALGO": "Thumbnail"}}); err != nil || s.A != AlgorithmThumbnail {
		t.Errorf("env: %s, %v", s.A, err)
	}
	err := env.ParseWithOptions(&s, env.Options{Environment: map[string]string{"ALGO": "bicubic"}})
	// env's ParseError does not unwrap: the SettingError is in its Err.
	var pe env.ParseError
	var se *SettingError
	if !errors.As(err, &pe) || !errors.As(pe.Err, &se) || se.Value != "bicubic" || se.Allowed != "lanczos3, thumbnail or auto" {
		t.Errorf("an unknown algorithm: %v", err)
	}
}

func TestErrorIsALogText(t *testing.T) {
	err := &Error{Kind: KindTooLarge, Limit: 10, Err: errors.New("4×4×1 pixels")}
	if got := err.Error(); got != "too large: 4×4×1 pixels" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Kind: KindCanceled}).Error(); got != "canceled" {
		t.Errorf("Error() = %q", got)
	}
	if KindOf(err) != KindTooLarge || KindOf(errors.New("x")) != KindInternal {
		t.Error("KindOf")
	}
}
