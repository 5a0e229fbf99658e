package origin

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"image-proxy/setting"
)

// validConfig is what the environment's defaults give, with root as the
// local root, so Validate judges only what a test edits.
func validConfig(root string) Config {
	return Config{
		Local:    LocalConfig{RootPath: root, StatCacheMaxAge: 10 * time.Second},
		S3:       S3Config{Region: "us-east-1", PathStyle: true, Timeout: time.Second},
		Fallback: FallbackConfig{MaxBytes: 1 << 20, Timeout: time.Second},
	}
}

func TestConfigValidate(t *testing.T) {
	root := t.TempDir()
	cases := []struct {
		name string
		edit func(*Config)
		bad  string // the variable the error must name; empty = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"stat cache off", func(c *Config) { c.Local.StatCacheMaxAge = 0 }, ""},
		{"stat cache negative", func(c *Config) { c.Local.StatCacheMaxAge = -time.Second }, "IMAGE_PROXY_STAT_CACHE_MAX_AGE"},
		{"stat cache over a day", func(c *Config) { c.Local.StatCacheMaxAge = 25 * time.Hour }, "IMAGE_PROXY_STAT_CACHE_MAX_AGE"},
		{"fallback", func(c *Config) { c.Fallback.URL = "https://images.example.com/base/" }, ""},
		{"fallback scheme", func(c *Config) { c.Fallback.URL = "ftp://example.com" }, "IMAGE_PROXY_FALLBACK_IMAGE_URL"},
		{"fallback query", func(c *Config) { c.Fallback.URL = "https://example.com/x?y=1" }, "IMAGE_PROXY_FALLBACK_IMAGE_URL"},
		{"fallback credentials", func(c *Config) { c.Fallback.URL = "https://u:p@example.com/" }, "IMAGE_PROXY_FALLBACK_IMAGE_URL"},
		{"fallback size", func(c *Config) { c.Fallback.MaxBytes = 0 }, "IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE"},
		{"fallback timeout", func(c *Config) { c.Fallback.Timeout = 0 }, "IMAGE_PROXY_FALLBACK_TIMEOUT"},
		{"root missing", func(c *Config) { c.Local.RootPath = root + "/absent" }, "IMAGE_PROXY_ROOT_PATH"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig(root)
			c.edit(&cfg)
			err := cfg.Validate()
			switch {
			case c.bad == "" && err != nil:
				t.Errorf("valid config refused: %v", err)
			case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
				t.Errorf("got %v, want an error naming %s", err, c.bad)
			}
			var se *setting.Error
			if err != nil && (!errors.As(err, &se) || se.Name != c.bad) {
				t.Errorf("%v is not a setting.Error naming %s", err, c.bad)
			}
		})
	}
}

func TestS3ConfigValidate(t *testing.T) {
	root := t.TempDir()
	good := S3Config{Bucket: "images", Region: "us-east-1", PathStyle: true, Timeout: 10 * time.Second}
	cases := []struct {
		name    string
		edit    func(*S3Config)
		results string // the result tier's prefix (cache.Config.ResultPrefix)
		bad     string // a word the error must contain; empty = valid
	}{
		{"bucket only", func(*S3Config) {}, "", ""},
		{"minio", func(s *S3Config) {
			s.Endpoint, s.AccessKey, s.SecretKey, s.Prefix = "http://minio:9000", "k", "s", "originals/"
		}, "results/", ""},
		{"https with slash", func(s *S3Config) { s.Endpoint = "https://s3.example.com/" }, "", ""},
		{"no s3 at all", func(s *S3Config) { *s = S3Config{Region: "us-east-1", Timeout: time.Second} }, "", ""},
		{"endpoint scheme", func(s *S3Config) { s.Endpoint = "minio:9000" }, "", "IMAGE_PROXY_S3_ENDPOINT"},
		{"endpoint path", func(s *S3Config) { s.Endpoint = "http://minio:9000/bucket" }, "", "IMAGE_PROXY_S3_ENDPOINT"},
		{"endpoint query", func(s *S3Config) { s.Endpoint = "http://minio:9000?x=1" }, "", "IMAGE_PROXY_S3_ENDPOINT"},
		{"endpoint credentials", func(s *S3Config) { s.Endpoint = "http://u:p@minio:9000" }, "", "IMAGE_PROXY_S3_ENDPOINT"},
		{"endpoint without bucket", func(s *S3Config) { s.Bucket, s.Endpoint = "", "http://minio:9000" }, "", "IMAGE_PROXY_S3_BUCKET"},
		{"result prefix without bucket", func(s *S3Config) { s.Bucket = "" }, "r/", "IMAGE_PROXY_S3_BUCKET"},
		{"bucket name", func(s *S3Config) { s.Bucket = "Images_1" }, "", "IMAGE_PROXY_S3_BUCKET"},
		{"access key alone", func(s *S3Config) { s.AccessKey = "k" }, "", "IMAGE_PROXY_S3_SECRET_KEY"},
		{"secret alone", func(s *S3Config) { s.SecretKey = "topsecretvalue" }, "", "IMAGE_PROXY_S3_ACCESS_KEY"},
		{"prefix slash", func(s *S3Config) { s.Prefix = "/originals/" }, "", "IMAGE_PROXY_S3_PREFIX"},
		{"prefix dotdot", func(s *S3Config) { s.Prefix = "a/../b/" }, "", "IMAGE_PROXY_S3_PREFIX"},
		{"result prefix slash", func(*S3Config) {}, "/results/", "IMAGE_PROXY_S3_RESULT_PREFIX"},
		{"results inside originals", func(s *S3Config) { s.Prefix = "o/" }, "o/results/", "IMAGE_PROXY_S3_RESULT_PREFIX"},
		{"results around originals", func(s *S3Config) { s.Prefix = "all/o/" }, "all/", "IMAGE_PROXY_S3_RESULT_PREFIX"},
		{"results, originals at the root", func(*S3Config) {}, "results/", ""},
		{"timeout", func(s *S3Config) { s.Timeout = 0 }, "", "IMAGE_PROXY_S3_TIMEOUT"},
		{"stat max age off", func(s *S3Config) { s.StatMaxAge = 0 }, "", ""},
		{"stat max age", func(s *S3Config) { s.StatMaxAge = time.Minute }, "", ""},
		{"stat max age negative", func(s *S3Config) { s.StatMaxAge = -time.Second }, "", "IMAGE_PROXY_S3_STAT_MAX_AGE"},
		{"stat max age too long", func(s *S3Config) { s.StatMaxAge = 25 * time.Hour }, "", "IMAGE_PROXY_S3_STAT_MAX_AGE"},
		{"region", func(s *S3Config) { s.Region = "" }, "", "IMAGE_PROXY_S3_REGION"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig(root)
			cfg.S3 = good
			c.edit(&cfg.S3)
			// In the order main checks them.
			err := cfg.Validate()
			if err == nil {
				err = cfg.S3.CheckResultPrefix(c.results)
			}
			switch {
			case c.bad == "" && err != nil:
				t.Errorf("valid config refused: %v", err)
			case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
				t.Errorf("got %v, want an error naming %s", err, c.bad)
			}
			if err != nil && len(cfg.S3.SecretKey) > 8 && strings.Contains(err.Error(), cfg.S3.SecretKey) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// An S3-only deployment has no local root; without a bucket a missing root
// is still an error.
func TestS3OnlyNeedsNoRoot(t *testing.T) {
	cfg := validConfig(t.TempDir() + "/absent")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "IMAGE_PROXY_ROOT_PATH") {
		t.Errorf("missing root without S3: %v", err)
	}
	cfg.S3 = S3Config{Bucket: "images", Region: "us-east-1", Timeout: time.Second}
	if err := cfg.Validate(); err != nil {
		t.Errorf("missing root with S3: %v", err)
	}
	// A root that exists but is not a directory is still a mistake.
	file := t.TempDir() + "/file"
	must(t, os.WriteFile(file, nil, 0o644))
	cfg.Local.RootPath = file
	if err := cfg.Validate(); err == nil {
		t.Errorf("a file as root accepted")
	}
}

func TestS3ConfigRedactsSecret(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG"
	s := S3Config{Bucket: "images", AccessKey: "AKIA", SecretKey: secret, Timeout: time.Second}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("settings", "s3", s)
	cfg := validConfig("/x")
	cfg.S3 = s
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", s), "%#v": fmt.Sprintf("%#v", s),
		"%s": fmt.Sprint(s), "Config %+v": fmt.Sprintf("%+v", cfg), "slog": logged.String(),
	} {
		if strings.Contains(out, secret) || !strings.Contains(out, "AKIA") {
			t.Errorf("%s: %s", name, out)
		}
	}
}
