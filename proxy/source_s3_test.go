package proxy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/cache"
	"image-proxy/internal/testsupport/miniotest"
	"image-proxy/metrics"
	"image-proxy/origin"
	"image-proxy/transform"
)

// s3Fixture is one bucket on the shared MinIO with a source config for it.
type s3Fixture struct {
	srv    *miniotest.Server
	bucket string
	cfg    origin.S3Config
}

var bucketSeq atomic.Int64

// newS3Fixture makes a fresh bucket so subtests never see each other's
// objects.
func newS3Fixture(t *testing.T, srv *miniotest.Server, prefix string) *s3Fixture {
	t.Helper()
	bucket := srv.Bucket(t, fmt.Sprintf("src-%d", bucketSeq.Add(1)))
	return &s3Fixture{srv: srv, bucket: bucket, cfg: origin.S3Config{
		Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Prefix: prefix, PathStyle: true, Timeout: 5 * time.Second,
	}}
}

func (f *s3Fixture) put(t *testing.T, key string, data []byte) {
	t.Helper()
	f.srv.Put(t, f.bucket, key, data)
}

// newS3TestServer is newTestServer with main's chain for an S3 deployment
// over the bucket s3 describes: the local root, then the bucket. edit, when
// given, adjusts the HTTP settings.
func newS3TestServer(t testing.TB, s3 origin.S3Config, edit func(*Config)) *testServer {
	t.Helper()
	root := t.TempDir()
	copyTree(t, "../data/images", root)
	cfg := defaultTestConfig(root)
	ccfg := cache.Config{Enabled: true, MemorySize: 64 << 20, MaxItemSize: 1 << 20}
	tcfg := transform.DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	ocfg := origin.Config{Local: origin.LocalConfig{RootPath: root}, S3: s3,
		Fallback: origin.FallbackConfig{MaxBytes: 1, Timeout: time.Second}}
	if err := ocfg.Validate(); err != nil {
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
	local, err := origin.OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	client, err := origin.NewS3Client(s3)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{Sources: origin.Chain{local, origin.NewS3(client, s3)}, Engine: transform.New(tcfg), Cache: c, Metrics: m, Log: log})
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
		ts := newS3TestServer(t, f.cfg, nil)

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
		ts := newS3TestServer(t, f.cfg, nil)
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
		ts := newS3TestServer(t, f.cfg, nil)
		resp, body := ts.get(t, "/rocket.jpg")
		if resp.StatusCode != 200 || !bytes.Equal(body, rocket) {
			t.Errorf("GET /rocket.jpg: %d, %d bytes: want the local file", resp.StatusCode, len(body))
		}
	})

	t.Run("missing", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		ts := newS3TestServer(t, f.cfg, nil)
		for _, target := range []string{"/nowhere.jpg", "/nowhere.jpg?size=50"} {
			resp, body := ts.get(t, target)
			if resp.StatusCode != 404 {
				t.Errorf("%s: %d %s, want 404", target, resp.StatusCode, body)
			}
		}
		// That the chain asks the next source after a missing object is
		// origin's TestS3Source.
	})

	t.Run("replacement changes ETags", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		f.put(t, "swap.img", rocket)
		ts := newS3TestServer(t, f.cfg, nil)
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

	// With the identity cache, a replaced object is described from memory
	// as the old version; the render of a new variant under that old
	// identity must not store the new bytes under the old key.
	t.Run("replaced within the identity cache's max age", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		f.cfg.StatMaxAge = time.Hour
		astronaut := readImage(t, "astronaut.png")
		f.put(t, "swap.img", rocket) // 3:2
		ts := newS3TestServer(t, f.cfg, nil)
		old, oldBody := ts.get(t, "/swap.img?size=40&format=png")
		if info := decodeInfo(t, oldBody); old.StatusCode != 200 || info.width != 40 || info.height != 27 {
			t.Fatalf("before: %d %+v, want rocket's 40×27", old.StatusCode, info)
		}
		f.put(t, "swap.img", astronaut) // square; no event
		// The render finds the object replaced (If-Match fails), drops the
		// old identity and starts over once: the new bytes, under a new key.
		for _, c := range []struct {
			target string
			width  int
		}{{"/swap.img?size=48&format=png", 48}, {"/swap.img?size=40&format=png", 40}} {
			resp, body := ts.get(t, c.target)
			if resp.StatusCode != 200 || resp.Header.Get("ETag") == old.Header.Get("ETag") {
				t.Fatalf("%s after the replacement: %d %s, ETag %s (old %s)", c.target, resp.StatusCode, body, resp.Header.Get("ETag"), old.Header.Get("ETag"))
			}
			if info := decodeInfo(t, body); info.width != c.width || info.height != c.width {
				t.Errorf("%s after the replacement is %+v, want the square astronaut's %d px", c.target, info, c.width)
			}
		}
	})

	t.Run("passthrough of a replaced object within the max age", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		f.cfg.StatMaxAge = time.Hour
		f.put(t, "swap.img", rocket)
		ts := newS3TestServer(t, f.cfg, nil)
		if resp, _ := ts.get(t, "/swap.img?size=40"); resp.StatusCode != 200 { // remembers rocket
			t.Fatalf("transform: %d", resp.StatusCode)
		}
		before, _ := ts.get(t, "/swap.img")
		f.put(t, "swap.img", coffee)
		after, body := ts.get(t, "/swap.img")
		if after.StatusCode != 200 || !bytes.Equal(body, coffee) || after.Header.Get("ETag") == before.Header.Get("ETag") {
			t.Errorf("passthrough after replacement: %d, %d bytes, ETag %s (before %s): want coffee under a new ETag",
				after.StatusCode, len(body), after.Header.Get("ETag"), before.Header.Get("ETag"))
		}
	})

	t.Run("too big to transform", func(t *testing.T) {
		f := newS3Fixture(t, srv, "")
		f.put(t, "big.jpg", rocket)
		ts := newS3TestServer(t, f.cfg, func(c *Config) { c.MaxSourceBytes = int64(len(rocket)) - 1 })
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
		ts := newS3TestServer(t, bad, nil)
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
		ts := newS3TestServer(t, cfg, nil)
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
		ts := newS3TestServer(t, f.cfg, nil)
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
}
