package proxy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/cache"
	"image-proxy/deploy/miniotest"
	"image-proxy/metrics"
	"image-proxy/transform"
)

// s3Fixture is one bucket on the shared MinIO with a source config for it.
type s3Fixture struct {
	srv    *miniotest.Server
	bucket string
	cfg    S3Config
}

var bucketSeq atomic.Int64

// newS3Fixture makes a fresh bucket so subtests never see each other's
// objects.
func newS3Fixture(t *testing.T, srv *miniotest.Server, prefix string) *s3Fixture {
	t.Helper()
	bucket := srv.Bucket(t, fmt.Sprintf("src-%d", bucketSeq.Add(1)))
	return &s3Fixture{srv: srv, bucket: bucket, cfg: S3Config{
		Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Prefix: prefix, PathStyle: true, Timeout: 5 * time.Second,
	}}
}

func (f *s3Fixture) put(t *testing.T, key string, data []byte) {
	t.Helper()
	f.srv.Put(t, f.bucket, key, data)
}

// withS3 sets the S3 section; edit adjusts it (a wrong secret, a timeout).
func withS3(s3 S3Config, edit func(*Config)) func(*Config, *cache.Config, *transform.Config) {
	return func(c *Config, _ *cache.Config, _ *transform.Config) {
		c.S3 = s3
		if edit != nil {
			edit(c)
		}
	}
}

// newS3TestServer is newTestServer with main's chain for an S3 deployment:
// the local root, then the bucket.
func newS3TestServer(t testing.TB, edit func(*Config, *cache.Config, *transform.Config)) *testServer {
	t.Helper()
	root := t.TempDir()
	copyTree(t, "../data/images", root)
	cfg := defaultTestConfig(root)
	ccfg := cache.Config{Enabled: true, MemorySize: 64 << 20, MaxItemSize: 1 << 20}
	tcfg := transform.DefaultConfig()
	edit(&cfg, &ccfg, &tcfg)
	cfg.Encoders = tcfg.Fingerprints()
	if err := cfg.S3.validate(); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry(), transform.MemStats)
	log := slog.New(slog.DiscardHandler)
	tiers, err := cache.LocalTiers(ccfg, m, log)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(tiers, m)
	t.Cleanup(func() { c.Close() })
	local, err := OpenLocal(cfg.RootPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	s3, err := NewS3(cfg.S3)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{Sources: Chain{local, s3}, Engine: transform.New(tcfg), Cache: c, Metrics: m, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, root: root, m: m}
}

func readImage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../data/images/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestS3Source runs every S3 case against one real MinIO: starting it is
// the slow part, and each case has a bucket of its own.
func TestS3Source(t *testing.T) {
	srv := miniotest.Start(t)
	rocket := readImage(t, "rocket.jpg")
	coffee := readImage(t, "coffee.png")

	t.Run("passthrough", func(t *testing.T) {
		f := newS3Fixture(t, srv, "originals/")
		f.put(t, "originals/remote/rocket.jpg", rocket)
		ts := newS3TestServer(t, withS3(f.cfg, nil))

		resp, body := ts.get(t, "/remote/rocket.jpg")
		if resp.StatusCode != 200 || !bytes.Equal(body, rocket) {
			t.Fatalf("GET: %d, %d bytes, want 200 and %d bytes", resp.StatusCode, len(body), len(rocket))
		}
		etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		if ct := resp.Header.Get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("Content-Type %q, want image/jpeg (sniffed)", ct)
		}
		if !strings.HasPrefix(etag, `"`) || lm == "" {
			t.Errorf("ETag %q, Last-Modified %q", etag, lm)
		}
		info, err := f.srv.Client(t).StatObject(context.Background(), f.bucket, "originals/remote/rocket.jpg", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := info.LastModified.UTC().Format(http.TimeFormat); lm != want {
			t.Errorf("Last-Modified %q, want the object's %q", lm, want)
		}

		resp, body = ts.get(t, "/remote/rocket.jpg", "Range", "bytes=100-199")
		if resp.StatusCode != 206 || !bytes.Equal(body, rocket[100:200]) ||
			resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(rocket)) {
			t.Errorf("Range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
		}
		resp, body = ts.get(t, "/remote/rocket.jpg", "If-None-Match", etag)
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Errorf("If-None-Match: %d, %d bytes", resp.StatusCode, len(body))
		}
		resp, _ = ts.do(t, http.MethodHead, "/remote/rocket.jpg")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != fmt.Sprint(len(rocket)) || resp.Header.Get("ETag") != etag {
			t.Errorf("HEAD: %d, length %q, ETag %q", resp.StatusCode, resp.Header.Get("Content-Length"), resp.Header.Get("ETag"))
		}
	})

	t.Run("transform", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		f.put(t, "remote/coffee.png", coffee)
		ts := newS3TestServer(t, withS3(f.cfg, nil))
		resp, body := ts.get(t, "/remote/coffee.png?size=64&format=webp")
		if resp.StatusCode != 200 {
			t.Fatalf("transform: %d %s", resp.StatusCode, body)
		}
		if info := decodeInfo(t, body); info.format != "webp" || max(info.width, info.height) != 64 {
			t.Errorf("transform decoded as %+v, want webp with a 64 px long side", info)
		}
		etag := resp.Header.Get("ETag")
		resp, _ = ts.get(t, "/remote/coffee.png?size=64&format=webp", "If-None-Match", etag)
		if resp.StatusCode != 304 {
			t.Errorf("If-None-Match on a transform: %d", resp.StatusCode)
		}
	})

	t.Run("local wins", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		f.put(t, "rocket.jpg", coffee) // same path, other bytes
		ts := newS3TestServer(t, withS3(f.cfg, nil))
		resp, body := ts.get(t, "/rocket.jpg")
		if resp.StatusCode != 200 || !bytes.Equal(body, rocket) {
			t.Errorf("GET /rocket.jpg: %d, %d bytes: want the local file", resp.StatusCode, len(body))
		}
	})

	t.Run("missing", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		ts := newS3TestServer(t, withS3(f.cfg, nil))
		for _, target := range []string{"/nowhere.jpg", "/nowhere.jpg?size=50"} {
			resp, body := ts.get(t, target)
			if resp.StatusCode != 404 {
				t.Errorf("%s: %d %s, want 404", target, resp.StatusCode, body)
			}
		}
		// Missing from S3 means "ask the next source": the chain goes on.
		s3, err := NewS3(f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		fb := sourceFunc(func(rel string) (Original, Body, error) {
			return Original{Rel: rel, Size: int64(len(rocket)), Identity: "next|" + rel}, newMemoryBody(rocket), nil
		})
		o, b, err := Chain{s3, fb}.Open(context.Background(), "nowhere.jpg")
		if err != nil || o.Identity != "next|nowhere.jpg" {
			t.Fatalf("chain after a missing object: %+v, %v", o, err)
		}
		b.Close()
	})

	t.Run("replacement changes ETags", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		f.put(t, "swap.img", rocket)
		ts := newS3TestServer(t, withS3(f.cfg, nil))
		pass1, _ := ts.get(t, "/swap.img")
		tr1, _ := ts.get(t, "/swap.img?size=40&format=png")
		f.put(t, "swap.img", coffee)
		pass2, body := ts.get(t, "/swap.img")
		tr2, trBody := ts.get(t, "/swap.img?size=40&format=png")
		if pass1.StatusCode != 200 || pass2.StatusCode != 200 || tr1.StatusCode != 200 || tr2.StatusCode != 200 {
			t.Fatalf("statuses %d %d %d %d", pass1.StatusCode, tr1.StatusCode, pass2.StatusCode, tr2.StatusCode)
		}
		if pass1.Header.Get("ETag") == pass2.Header.Get("ETag") || !bytes.Equal(body, coffee) {
			t.Errorf("passthrough after replacement: ETag %s both times or stale bytes", pass1.Header.Get("ETag"))
		}
		if tr1.Header.Get("ETag") == tr2.Header.Get("ETag") {
			t.Errorf("transform ETag %s unchanged after replacement", tr1.Header.Get("ETag"))
		}
		// coffee.png is landscape, rocket.jpg portrait: the new render
		// really came from the new bytes.
		if info := decodeInfo(t, trBody); info.width != 40 {
			t.Errorf("render after replacement is %+v, want coffee's 40 px width", info)
		}
	})

	t.Run("too big to transform", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		f.put(t, "big.jpg", rocket)
		ts := newS3TestServer(t, withS3(f.cfg, func(c *Config) { c.MaxSourceBytes = int64(len(rocket)) - 1 }))
		resp, body := ts.get(t, "/big.jpg?size=50")
		if resp.StatusCode != 422 {
			t.Errorf("transform over MAX_SOURCE_BYTES: %d %s, want 422", resp.StatusCode, body)
		}
		if resp, _ := ts.get(t, "/big.jpg"); resp.StatusCode != 200 {
			t.Errorf("passthrough has no source limit: %d", resp.StatusCode)
		}
	})

	t.Run("access denied", func(t *testing.T) {
		f := newS3Fixture(t, srv, "secret-prefix/")
		f.put(t, "secret-prefix/private/rocket.jpg", rocket)
		bad := f.cfg
		bad.SecretKey = "not-the-secret"
		ts := newS3TestServer(t, withS3(bad, nil))
		for _, target := range []string{"/private/rocket.jpg", "/private/rocket.jpg?size=50"} {
			resp, body := ts.get(t, target)
			if resp.StatusCode != 502 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: %d %q, want a 502 JSON error", target, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for _, leak := range []string{f.bucket, "secret-prefix", "private", "rocket", "not-the-secret", "Signature"} {
				if bytes.Contains(body, []byte(leak)) {
					t.Errorf("%s: body %s reveals %q", target, body, leak)
				}
			}
		}
	})

	t.Run("timeout", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		cfg := f.cfg
		cfg.Endpoint = "http://" + miniotest.Silent(t)
		cfg.Timeout = 200 * time.Millisecond
		ts := newS3TestServer(t, withS3(cfg, nil))
		for _, target := range []string{"/slow.jpg", "/slow.jpg?size=50"} {
			resp, body := ts.get(t, target)
			if resp.StatusCode != 504 || !bytes.Contains(body, []byte("did not answer in time")) {
				t.Errorf("%s: %d %s, want 504", target, resp.StatusCode, body)
			}
		}
	})

	t.Run("path safety", func(t *testing.T) {
		f := newS3Fixture(t, srv, "public/")
		f.put(t, "secret.jpg", rocket) // outside the prefix
		f.put(t, "public/ok.jpg", rocket)
		ts := newS3TestServer(t, withS3(f.cfg, nil))
		if resp, _ := ts.get(t, "/ok.jpg"); resp.StatusCode != 200 {
			t.Fatalf("control: %d", resp.StatusCode)
		}
		for _, target := range []string{
			"/../secret.jpg", "/%2e%2e/secret.jpg", "/%2E%2E%2Fsecret.jpg", "/a/..%2f..%2fsecret.jpg",
			"/..%5csecret.jpg", "/.%2e/secret.jpg", "//secret.jpg", "/public/../../secret.jpg",
		} {
			resp, body := ts.get(t, target)
			if resp.StatusCode == 200 || bytes.Equal(body, rocket) {
				t.Errorf("%s reached an object outside the prefix: %d", target, resp.StatusCode)
			}
		}
	})

	t.Run("identity", func(t *testing.T) {
		f := newS3Fixture(t, srv, "p/")
		f.put(t, "p/a.jpg", rocket)
		s3, err := NewS3(f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s3.Stat(context.Background(), "a.jpg")
		if err != nil {
			t.Fatal(err)
		}
		o, b, err := s3.Open(context.Background(), "a.jpg")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if !reflect.DeepEqual(o, st) || o.Size != int64(len(rocket)) || !strings.HasPrefix(o.Identity, "s3:p/a.jpg|") {
			t.Errorf("Open %+v and Stat %+v disagree", o, st)
		}
		if got := strings.Count(o.Identity, "|"); got != 3 {
			t.Errorf("identity %q: want key|etag|size|mtime", o.Identity)
		}
	})
}

// sourceFunc is a Source answering Open from a function (Stat from Open).
type sourceFunc func(rel string) (Original, Body, error)

func (f sourceFunc) Stat(_ context.Context, rel string) (Original, error) {
	o, b, err := f(rel)
	if b != nil {
		b.Close()
	}
	return o, err
}

func (f sourceFunc) Open(_ context.Context, rel string) (Original, Body, error) { return f(rel) }

func TestS3ConfigValidate(t *testing.T) {
	root := t.TempDir()
	good := S3Config{Bucket: "images", Region: "us-east-1", PathStyle: true, Timeout: 10 * time.Second}
	cases := []struct {
		name string
		edit func(*S3Config)
		bad  string // a word the error must contain; empty = valid
	}{
		{"bucket only", func(*S3Config) {}, ""},
		{"minio", func(s *S3Config) {
			s.Endpoint, s.AccessKey, s.SecretKey, s.Prefix, s.ResultPrefix = "http://minio:9000", "k", "s", "originals/", "results/"
		}, ""},
		{"https with slash", func(s *S3Config) { s.Endpoint = "https://s3.example.com/" }, ""},
		{"no s3 at all", func(s *S3Config) { *s = S3Config{Region: "us-east-1", Timeout: time.Second} }, ""},
		{"endpoint scheme", func(s *S3Config) { s.Endpoint = "minio:9000" }, "IMAGE_PROXY_S3_ENDPOINT"},
		{"endpoint path", func(s *S3Config) { s.Endpoint = "http://minio:9000/bucket" }, "IMAGE_PROXY_S3_ENDPOINT"},
		{"endpoint query", func(s *S3Config) { s.Endpoint = "http://minio:9000?x=1" }, "IMAGE_PROXY_S3_ENDPOINT"},
		{"endpoint credentials", func(s *S3Config) { s.Endpoint = "http://u:p@minio:9000" }, "IMAGE_PROXY_S3_ENDPOINT"},
		{"endpoint without bucket", func(s *S3Config) { s.Bucket, s.Endpoint = "", "http://minio:9000" }, "IMAGE_PROXY_S3_BUCKET"},
		{"result prefix without bucket", func(s *S3Config) { s.Bucket, s.ResultPrefix = "", "r/" }, "IMAGE_PROXY_S3_BUCKET"},
		{"bucket name", func(s *S3Config) { s.Bucket = "Images_1" }, "IMAGE_PROXY_S3_BUCKET"},
		{"access key alone", func(s *S3Config) { s.AccessKey = "k" }, "IMAGE_PROXY_S3_SECRET_KEY"},
		{"secret alone", func(s *S3Config) { s.SecretKey = "topsecretvalue" }, "IMAGE_PROXY_S3_ACCESS_KEY"},
		{"prefix slash", func(s *S3Config) { s.Prefix = "/originals/" }, "IMAGE_PROXY_S3_PREFIX"},
		{"prefix dotdot", func(s *S3Config) { s.Prefix = "a/../b/" }, "IMAGE_PROXY_S3_PREFIX"},
		{"results inside originals", func(s *S3Config) { s.Prefix, s.ResultPrefix = "o/", "o/results/" }, "IMAGE_PROXY_S3_RESULT_PREFIX"},
		{"results around originals", func(s *S3Config) { s.Prefix, s.ResultPrefix = "all/o/", "all/" }, "IMAGE_PROXY_S3_RESULT_PREFIX"},
		{"results, originals at the root", func(s *S3Config) { s.ResultPrefix = "results/" }, ""},
		{"timeout", func(s *S3Config) { s.Timeout = 0 }, "IMAGE_PROXY_S3_TIMEOUT"},
		{"region", func(s *S3Config) { s.Region = "" }, "IMAGE_PROXY_S3_REGION"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validTestConfig(root)
			cfg.S3 = good
			c.edit(&cfg.S3)
			err := cfg.Validate()
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

// validTestConfig is defaultTestConfig with the settings main's
// environment defaults supply, so Validate judges only what a test edits.
func validTestConfig(root string) Config {
	cfg := defaultTestConfig(root)
	cfg.BindAddress = "127.0.0.1:0"
	cfg.Fallback = FallbackConfig{MaxBytes: 1 << 20, Timeout: time.Second}
	cfg.S3.Timeout = time.Second
	return cfg
}

// An S3-only deployment has no local root; without a bucket a missing root
// is still an error.
func TestS3OnlyNeedsNoRoot(t *testing.T) {
	cfg := validTestConfig(t.TempDir() + "/absent")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "IMAGE_PROXY_ROOT_PATH") {
		t.Errorf("missing root without S3: %v", err)
	}
	cfg.S3 = S3Config{Bucket: "images", Region: "us-east-1", Timeout: time.Second}
	if err := cfg.Validate(); err != nil {
		t.Errorf("missing root with S3: %v", err)
	}
	// A root that exists but is not a directory is still a mistake.
	file := t.TempDir() + "/file"
	os.WriteFile(file, nil, 0o644)
	cfg.RootPath = file
	if err := cfg.Validate(); err == nil {
		t.Errorf("a file as root accepted")
	}
}

func TestS3ConfigRedactsSecret(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG"
	s := S3Config{Bucket: "images", AccessKey: "AKIA", SecretKey: secret, Timeout: time.Second}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("settings", "s3", s)
	cfg := defaultTestConfig("/x")
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

// BenchmarkSourceRead is one Stat and one whole read of rocket.jpg, as a
// transform miss does, from loopback MinIO and from the local root for
// comparison.
func BenchmarkSourceRead(b *testing.B) {
	srv := miniotest.Start(b)
	bucket := srv.Bucket(b, "bench")
	rocket, err := os.ReadFile("../data/images/rocket.jpg")
	if err != nil {
		b.Fatal(err)
	}
	srv.Put(b, bucket, "rocket.jpg", rocket)
	s3, err := NewS3(S3Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	local, err := OpenLocal("../data/images")
	if err != nil {
		b.Fatal(err)
	}
	defer local.Close()
	for name, src := range map[string]Source{"s3": s3, "local": local} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				o, err := src.Stat(ctx, "rocket.jpg")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := readAll(ctx, src, o, o.Size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
