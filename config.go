package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"image-proxy/cache"
	"image-proxy/origin"
	"image-proxy/proxy"
	"image-proxy/setting"
	"image-proxy/transform"
	"image-proxy/warm"
)

// settings composes each package's Config; the env tags in those packages
// are the single source of names and defaults. .env.template and the README
// table are checked against them by a test.
type settings struct {
	Proxy           proxy.Config
	Origin          origin.Config
	Cache           cache.Config
	Transform       transform.Config
	Warm            warm.Config
	Log             logSettings
	ShutdownTimeout time.Duration `env:"IMAGE_PROXY_SHUTDOWN_TIMEOUT" envDefault:"30s"`
}

// logSettings belong to the process, so main owns them.
type logSettings struct {
	Level   string `env:"IMAGE_PROXY_LOG_LEVEL"`
	RustLog string `env:"RUST_LOG"`
	Format  string `env:"IMAGE_PROXY_LOG_FORMAT" envDefault:"text"`
}

// loadSettings reads .env (real environment variables win) and the
// environment, then validates every value, each package its own.
func loadSettings(getenv func(string) (string, bool), dotenv string) (settings, error) {
	vars := map[string]string{}
	if dotenv != "" {
		if m, err := godotenv.Read(dotenv); err == nil {
			vars = m
		} else if !errors.Is(err, os.ErrNotExist) {
			return settings{}, fmt.Errorf("read %s: %w", dotenv, err)
		}
	}
	for _, name := range settingNames() {
		if v, ok := getenv(name); ok {
			vars[name] = v
		}
	}
	var s settings
	if err := env.ParseWithOptions(&s, env.Options{Environment: vars}); err != nil {
		return s, parseFailure(err, vars)
	}
	// An empty header setting means "send no header", not "use the default".
	if v, ok := vars["IMAGE_PROXY_CACHE_CONTROL_HEADER"]; ok {
		s.Proxy.CacheControl = v
	}
	if v, ok := vars["IMAGE_PROXY_ERROR_CACHE_CONTROL_HEADER"]; ok {
		s.Proxy.ErrorCacheControl = v
	}
	return s, s.validate()
}

// validate reports the first bad setting: one line on the way out.
func (s settings) validate() error {
	for _, err := range []error{s.Transform.Validate(), s.Cache.Validate(), s.Proxy.Validate(), s.Origin.Validate(),
		s.Origin.S3.CheckResultPrefix(s.Cache.ResultPrefix), setting.CheckDuration("IMAGE_PROXY_SHUTDOWN_TIMEOUT", s.ShutdownTimeout), s.Log.validate(), s.Warm.Validate(s.Proxy.MaxBox, s.Cache, s.Origin.S3, s.Proxy.Controls), checkEvents(s)} {
		if err != nil {
			return err
		}
	}
	return nil
}

// parseFailure turns the library's type errors into a setting.Error.
func parseFailure(err error, vars map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) || len(agg.Errors) == 0 {
		return err
	}
	var pe env.ParseError
	if !errors.As(agg.Errors[0], &pe) {
		return err
	}
	name := failedVariable(pe.Name, vars)
	allowed := "a whole number"
	switch {
	case pe.Type == reflect.TypeOf(transform.Algorithm(0)):
		allowed = "lanczos3, thumbnail or auto"
	case pe.Type.Kind() == reflect.Bool:
		allowed = "true or false"
	case pe.Type == reflect.TypeOf(time.Duration(0)):
		allowed = "a duration such as 500ms, 10s or 1m"
	}
	return &setting.Error{Name: name, Value: vars[name], Allowed: allowed}
}

// envField is one setting: the Go field, its variable, its Go type and its
// default (the chart's schema is generated from these).
type envField struct {
	field, name, def string
	typ              reflect.Type
}

// envFields lists every setting of settings, nested ones included. Field
// names repeat across packages (Timeout), variable names never do.
func envFields() []envField {
	var out []envField
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if n := f.Tag.Get("env"); n != "" {
				out = append(out, envField{f.Name, n, f.Tag.Get("envDefault"), f.Type})
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(settings{}))
	return out
}

func settingNames() []string {
	var names []string
	for _, f := range envFields() {
		names = append(names, f.name)
	}
	return names
}

// failedVariable names the variable behind a field that failed to parse:
// of those with that field name, the one that was set.
func failedVariable(field string, vars map[string]string) string {
	name := ""
	for _, f := range envFields() {
		if f.field != field {
			continue
		}
		if _, set := vars[f.name]; set || name == "" {
			name = f.name
		}
	}
	return name
}

func (l logSettings) validate() error {
	switch strings.ToLower(l.Format) {
	case "text", "json":
	default:
		return &setting.Error{Name: "IMAGE_PROXY_LOG_FORMAT", Value: l.Format, Allowed: "text or json"}
	}
	_, err := l.level()
	return err
}

// level reads IMAGE_PROXY_LOG_LEVEL, falling back to RUST_LOG as the Rust
// service did. RUST_LOG may be a directive list ("warn,image_proxy=debug"):
// the image_proxy directive wins, else the bare level; unknown directives
// for other crates are ignored.
func (l logSettings) level() (slog.Level, error) {
	name, value := "IMAGE_PROXY_LOG_LEVEL", l.Level
	if value == "" && l.RustLog != "" {
		name, value = "RUST_LOG", rustLogLevel(l.RustLog)
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
	return 0, &setting.Error{Name: name, Value: value, Allowed: "debug, info, warn or error"}
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
