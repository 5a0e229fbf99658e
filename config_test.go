package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"image-proxy/transform"
)

func TestLoadSettingsDefaults(t *testing.T) {
	env := map[string]string{"IMAGE_PROXY_ROOT_PATH": "data/images"}
	s, err := loadSettings(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Proxy.BindAddress != "0.0.0.0:8000" || s.Transform.JPEGQuality != 75 || s.Proxy.CacheControl != "public, max-age=31536000, no-transform" ||
		s.Proxy.MaxBox != 4000 || s.Proxy.Slots() < 1 || s.Origin.Fallback.MaxBytes != 5242880 || s.Cache.DiskEnabled || !s.Cache.Enabled ||
		s.Proxy.Algorithm != transform.AlgorithmAuto || s.ShutdownTimeout != 30*time.Second {
		t.Errorf("defaults: %+v", s)
	}
}

func TestEmptyCacheControlMeansNoHeader(t *testing.T) {
	env := map[string]string{"IMAGE_PROXY_ROOT_PATH": "data/images", "IMAGE_PROXY_CACHE_CONTROL_HEADER": "", "IMAGE_PROXY_ERROR_CACHE_CONTROL_HEADER": ""}
	s, err := loadSettings(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	if err != nil || s.Proxy.CacheControl != "" || s.Proxy.ErrorCacheControl != "" {
		t.Fatalf("%v %q %q", err, s.Proxy.CacheControl, s.Proxy.ErrorCacheControl)
	}
}

func TestLogLevel(t *testing.T) {
	cases := []struct {
		level, rust string
		want        slog.Level
	}{
		{"", "", slog.LevelInfo},
		{"debug", "error", slog.LevelDebug},
		{"", "warn", slog.LevelWarn},
		{"", "info,image_proxy=debug", slog.LevelDebug},
		{"", "image-proxy=error,hyper=info", slog.LevelError},
		{"", "hyper=debug", slog.LevelInfo},
		{"WARN", "", slog.LevelWarn},
	}
	for _, c := range cases {
		l := logSettings{Level: c.level, RustLog: c.rust}
		if got, err := l.level(); err != nil || got != c.want {
			t.Errorf("%q/%q: %v %v", c.level, c.rust, got, err)
		}
	}
}

// TestResultPrefixJudgedAgainstTheBucket: the result tier's prefix is a
// cache setting that lives in the origin's bucket, so main judges it
// against the bucket's settings.
func TestResultPrefixJudgedAgainstTheBucket(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string // a variable the error names; empty: valid
	}{
		{map[string]string{"IMAGE_PROXY_S3_RESULT_PREFIX": "results/"}, "IMAGE_PROXY_S3_BUCKET"},
		{map[string]string{"IMAGE_PROXY_S3_BUCKET": "images", "IMAGE_PROXY_S3_RESULT_PREFIX": "/results/"}, "IMAGE_PROXY_S3_RESULT_PREFIX"},
		{map[string]string{"IMAGE_PROXY_S3_BUCKET": "images", "IMAGE_PROXY_S3_PREFIX": "o/", "IMAGE_PROXY_S3_RESULT_PREFIX": "o/r/"}, "IMAGE_PROXY_S3_RESULT_PREFIX"},
		{map[string]string{"IMAGE_PROXY_S3_BUCKET": "images", "IMAGE_PROXY_S3_PREFIX": "o/", "IMAGE_PROXY_S3_RESULT_PREFIX": "r/"}, ""},
	}
	for _, c := range cases {
		c.env["IMAGE_PROXY_ROOT_PATH"] = "data/images"
		s, err := loadSettings(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }, "")
		switch {
		case c.want == "" && (err != nil || s.Cache.ResultPrefix != c.env["IMAGE_PROXY_S3_RESULT_PREFIX"]):
			t.Errorf("%v: %v, result prefix %q", c.env, err, s.Cache.ResultPrefix)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want an error naming %s", c.env, err, c.want)
		}
	}
}

// TestHooksSettings: the events token needs a bucket; both tokens need 16
// characters, and the message never shows the value.
func TestHooksSettings(t *testing.T) {
	const token = "0123456789abcdef0123"
	cases := []struct {
		env  map[string]string
		says string
	}{
		{map[string]string{"IMAGE_PROXY_EVENTS_TOKEN": token}, "S3 events need a bucket"},
		{map[string]string{"IMAGE_PROXY_EVENTS_TOKEN": "short-secret", "IMAGE_PROXY_S3_BUCKET": "photos"}, "IMAGE_PROXY_EVENTS_TOKEN: must be at least 16 characters"},
		{map[string]string{"IMAGE_PROXY_PURGE_TOKEN": "short-secret"}, "IMAGE_PROXY_PURGE_TOKEN: must be at least 16 characters"},
		{map[string]string{"IMAGE_PROXY_CACHE_TAGS": "maybe"}, "IMAGE_PROXY_CACHE_TAGS"},
		{map[string]string{"IMAGE_PROXY_EVENTS_TOKEN": token, "IMAGE_PROXY_S3_BUCKET": "photos", "IMAGE_PROXY_PURGE_TOKEN": token}, ""},
	}
	for _, c := range cases {
		c.env["IMAGE_PROXY_ROOT_PATH"] = "data/images"
		_, err := loadSettings(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }, "")
		switch {
		case c.says == "" && err != nil:
			t.Errorf("%v: %v", c.env, err)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%v: %v, want an error saying %q", c.env, err, c.says)
		case err != nil && strings.Contains(err.Error(), "short-secret"):
			t.Errorf("the error shows the token: %v", err)
		}
	}
}
