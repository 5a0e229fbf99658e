package origin

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"image-proxy/setting"
)

// Config is the origins' part of the settings, one section per source in
// the order the chain asks them. The tags are the one place of their names
// and defaults; main parses the environment into it.
type Config struct {
	Local    LocalConfig
	S3       S3Config
	Fallback FallbackConfig
}

// LocalConfig is the root directory originals are read from.
type LocalConfig struct {
	RootPath        string        `env:"IMAGE_PROXY_ROOT_PATH" envDefault:"./data/images"`
	StatCacheMaxAge time.Duration `env:"IMAGE_PROXY_STAT_CACHE_MAX_AGE" envDefault:"10s"` // 0: stat the original on every request
}

// FallbackConfig describes the upstream asked for originals no earlier
// source has.
type FallbackConfig struct {
	URL      string        `env:"IMAGE_PROXY_FALLBACK_IMAGE_URL"` // empty: no fallback
	MaxBytes int64         `env:"IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE" envDefault:"5242880"`
	Timeout  time.Duration `env:"IMAGE_PROXY_FALLBACK_TIMEOUT" envDefault:"10s"`
}

// S3Config describes an S3-compatible bucket: the connection (one client,
// NewS3Client, for the source and the result tier) and the originals under
// Prefix. Print it with %v or log it with slog: both redact the secret.
type S3Config struct {
	Endpoint  string        `env:"IMAGE_PROXY_S3_ENDPOINT"` // http(s)://host[:port]; empty: AWS for Region
	Bucket    string        `env:"IMAGE_PROXY_S3_BUCKET"`   // empty: no S3 at all
	Region    string        `env:"IMAGE_PROXY_S3_REGION" envDefault:"us-east-1"`
	AccessKey string        `env:"IMAGE_PROXY_S3_ACCESS_KEY"` // both keys empty: the AWS credential chain
	SecretKey string        `env:"IMAGE_PROXY_S3_SECRET_KEY"`
	Prefix    string        `env:"IMAGE_PROXY_S3_PREFIX"` // prepended verbatim to the request path
	PathStyle bool          `env:"IMAGE_PROXY_S3_PATH_STYLE" envDefault:"true"`
	Timeout   time.Duration `env:"IMAGE_PROXY_S3_TIMEOUT" envDefault:"10s"`
	// How long a HEAD's description of an original is reused (an absent
	// key's for at most 1s); 0: a HEAD on every request. 10s, as the local
	// stat cache's age limit: a hot original costs one HEAD per 10s per
	// replica instead of one per request, and an object replaced without
	// an event is served under its old identity for at most 10s.
	StatMaxAge time.Duration `env:"IMAGE_PROXY_S3_STAT_MAX_AGE" envDefault:"10s"`
}

// Enabled reports whether a bucket is configured.
func (s S3Config) Enabled() bool { return s.Bucket != "" }

// String redacts the secret, so a config printed whole leaks nothing.
func (s S3Config) String() string {
	return fmt.Sprintf("{Endpoint:%s Bucket:%s Region:%s AccessKey:%s SecretKey:%s Prefix:%s PathStyle:%t Timeout:%s StatMaxAge:%s}",
		s.Endpoint, s.Bucket, s.Region, s.AccessKey, setting.Redact(s.SecretKey), s.Prefix, s.PathStyle, s.Timeout, s.StatMaxAge)
}

// GoString keeps %#v from bypassing String.
func (s S3Config) GoString() string { return "origin.S3Config" + s.String() }

// LogValue is what slog records: the same fields, the secret redacted.
func (s S3Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", s.Endpoint), slog.String("bucket", s.Bucket),
		slog.String("region", s.Region), slog.String("access_key", s.AccessKey),
		slog.String("secret_key", setting.Redact(s.SecretKey)), slog.String("prefix", s.Prefix),
		slog.Bool("path_style", s.PathStyle), slog.Duration("timeout", s.Timeout),
		slog.Duration("stat_max_age", s.StatMaxAge))
}

// Validate checks every value against its range. The root directory may
// be missing in an S3-only deployment: main then leaves the local source
// out of the chain.
func (c Config) Validate() error {
	if err := c.Fallback.validateLimits(); err != nil {
		return err
	}
	if err := c.Local.validateMaxAge(); err != nil {
		return err
	}
	if err := c.S3.validate(); err != nil {
		return err
	}
	if err := c.Local.validateRoot(c.S3.Enabled()); err != nil {
		return err
	}
	return c.Fallback.validateURL()
}

func (l LocalConfig) validateMaxAge() error {
	if l.StatCacheMaxAge != 0 && setting.CheckDuration("IMAGE_PROXY_STAT_CACHE_MAX_AGE", l.StatCacheMaxAge) != nil {
		return setting.Invalid("IMAGE_PROXY_STAT_CACHE_MAX_AGE", l.StatCacheMaxAge.String(), "0 (off) or a positive duration up to 24h, such as 10s or 1m")
	}
	return nil
}

func (l LocalConfig) validateRoot(s3 bool) error {
	if _, err := os.Stat(l.RootPath); errors.Is(err, fs.ErrNotExist) && s3 {
		return nil
	}
	if f, err := os.Open(l.RootPath); err != nil {
		return setting.Invalid("IMAGE_PROXY_ROOT_PATH", l.RootPath, "a readable directory")
	} else if fi, err := f.Stat(); f.Close() != nil || err != nil || !fi.IsDir() {
		return setting.Invalid("IMAGE_PROXY_ROOT_PATH", l.RootPath, "a readable directory")
	}
	return nil
}

func (f FallbackConfig) validateLimits() error {
	if err := setting.CheckRange("IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE", f.MaxBytes, 1, 1<<40); err != nil {
		return err
	}
	return setting.CheckDuration("IMAGE_PROXY_FALLBACK_TIMEOUT", f.Timeout)
}

func (f FallbackConfig) validateURL() error {
	if f.URL == "" {
		return nil
	}
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Contains(f.URL, "#") {
		return setting.Invalid("IMAGE_PROXY_FALLBACK_IMAGE_URL", f.URL, "an http or https URL with a host and no query, fragment or credentials")
	}
	return nil
}

func (s S3Config) validate() error {
	if err := setting.CheckDuration("IMAGE_PROXY_S3_TIMEOUT", s.Timeout); err != nil {
		return err
	}
	if s.StatMaxAge != 0 && setting.CheckDuration("IMAGE_PROXY_S3_STAT_MAX_AGE", s.StatMaxAge) != nil {
		return setting.Invalid("IMAGE_PROXY_S3_STAT_MAX_AGE", s.StatMaxAge.String(), "0 (a HEAD on every request) or a positive duration up to 24h, such as 10s or 1m")
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
		} {
			if v.value != "" {
				return needsBucket(v.name)
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
		return setting.Invalid("IMAGE_PROXY_S3_BUCKET", s.Bucket, "an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens")
	}
	if s.Region == "" || strings.ContainsAny(s.Region, " /\\") {
		return setting.Invalid("IMAGE_PROXY_S3_REGION", s.Region, "a region name, such as us-east-1")
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		return fmt.Errorf("invalid setting IMAGE_PROXY_S3_ACCESS_KEY/IMAGE_PROXY_S3_SECRET_KEY: set both, or neither for the AWS credential chain (environment, shared files, instance role)")
	}
	return CheckKeyPrefix("IMAGE_PROXY_S3_PREFIX", s.Prefix)
}

// CheckResultPrefix judges the key prefix the shared result tier keeps its
// objects under (cache.Config.ResultPrefix): it lives in this bucket,
// through the same client, so it needs the bucket, and it must neither
// contain nor lie inside the originals' prefix, where results would be
// served as originals. Empty (no result tier) is always valid.
func (s S3Config) CheckResultPrefix(p string) error {
	const name = "IMAGE_PROXY_S3_RESULT_PREFIX"
	switch {
	case p == "":
		return nil
	case !s.Enabled():
		return needsBucket(name)
	}
	if err := CheckKeyPrefix(name, p); err != nil {
		return err
	}
	if s.Prefix != "" && (strings.HasPrefix(p, s.Prefix) || strings.HasPrefix(s.Prefix, p)) {
		return setting.Invalid(name, p, "a prefix that neither contains nor lies inside IMAGE_PROXY_S3_PREFIX")
	}
	return nil
}

func needsBucket(name string) error {
	return fmt.Errorf("invalid setting %s: it needs IMAGE_PROXY_S3_BUCKET", name)
}

// CheckKeyPrefix refuses a key prefix that could climb out of its place in
// the bucket or that S3 would treat differently from a path; name is its
// setting. Every prefix of the bucket obeys it (the export's too).
func CheckKeyPrefix(name, p string) error {
	if strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") || slices.Contains(strings.Split(p, "/"), "..") {
		return setting.Invalid(name, p, "a key prefix without a leading /, .. segments, \\ or NUL, such as originals/")
	}
	return nil
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
