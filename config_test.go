package main

import (
	"log/slog"
	"testing"
)

func TestLoadSettingsDefaults(t *testing.T) {
	env := map[string]string{"IMAGE_PROXY_ROOT_PATH": "data/images"}
	s, err := loadSettings(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.BindAddress != "0.0.0.0:8000" || s.JPEGQuality != 75 || s.CacheControl != "public, max-age=31536000, no-transform" ||
		s.MaxSize != 4000 || s.Concurrency < 1 || s.FallbackMaxSize != 5242880 || s.EnableDiskCache || !s.EnableCache {
		t.Errorf("defaults: %+v", s)
	}
}

func TestEmptyCacheControlMeansNoHeader(t *testing.T) {
	env := map[string]string{"IMAGE_PROXY_ROOT_PATH": "data/images", "IMAGE_PROXY_CACHE_CONTROL_HEADER": "", "IMAGE_PROXY_ERROR_CACHE_CONTROL_HEADER": ""}
	s, err := loadSettings(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	if err != nil || s.CacheControl != "" || s.ErrorCacheControl != "" {
		t.Fatalf("%v %q %q", err, s.CacheControl, s.ErrorCacheControl)
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
		s := settings{LogLevel: c.level, RustLog: c.rust}
		if got, err := s.logLevel(); err != nil || got != c.want {
			t.Errorf("%q/%q: %v %v", c.level, c.rust, got, err)
		}
	}
}
