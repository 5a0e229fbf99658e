package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

func TestMain(m *testing.M) {
	if err := transform.Startup(slog.New(slog.DiscardHandler)); err != nil {
		panic(err)
	}
	code := m.Run()
	transform.Shutdown()
	os.Exit(code)
}

// testServer is a proxy over a private copy of data/images, with real
// libvips, a real cache and a fresh metrics registry.
type testServer struct {
	*Server
	root  string
	local *origin.Local
	m     *metrics.Metrics
}

// defaultTestConfig is the HTTP settings of a test serving root. The root
// itself is the local origin's setting, not an HTTP one (testSources
// opens it); the argument says which root the test serves.
func defaultTestConfig(string) Config {
	tc := transform.DefaultConfig()
	return Config{
		CacheControl:      "public, max-age=31536000, no-transform",
		ErrorCacheControl: "public, max-age=60",
		MaxBox:            4000,
		MaxSourceBytes:    50 << 20,
		Encoders:          tc.Fingerprints(),
		Concurrency:       2,
		QueueDepth:        64,
		QueueTimeout:      10 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxConns:          1000,
		MaxHeaderBytes:    8192,
		Backend:           BackendConfig{ConvertMaxBytes: 25 << 20, BulkMaxItems: 50},
		Version:           "test",
		LibvipsVersion:    transform.Version(),
		Controls:          request.ControlsConfig{AllowQuality: true, SignPassthrough: true}, // the envDefaults
	}
}

func newTestServer(t testing.TB, edit func(*Config, *cache.Config, *transform.Config)) *testServer {
	t.Helper()
	return newTestServerWith(t, edit)
}

// newTestServerWith is newTestServer with more than the local root in its
// chain (a fallback upstream).
func newTestServerWith(t testing.TB, edit func(*Config, *cache.Config, *transform.Config), opts ...chainOption) *testServer {
	t.Helper()
	root := t.TempDir()
	copyTree(t, "../data/images", root)
	cfg := defaultTestConfig(root)
	ccfg := cache.Config{Enabled: true, MemorySize: 64 << 20, MaxItemSize: 1 << 20}
	tcfg := transform.DefaultConfig()
	if edit != nil {
		edit(&cfg, &ccfg, &tcfg)
	}
	cfg.Encoders = tcfg.Fingerprints()
	m := metrics.New(prometheus.NewRegistry(), transform.MemStats)
	log := slog.New(slog.DiscardHandler)
	tiers, err := cache.LocalTiers(ccfg, m, log)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(tiers, m)
	sources, _ := testSources(t, root, c, m, opts...)
	local := sources[0].(*origin.Local)
	s, err := New(cfg, Deps{Sources: sources, Engine: transform.New(tcfg), Cache: c, Metrics: m, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &testServer{Server: s, root: root, local: local, m: m}
}

// testChain is what a test adds to main's chain: a fallback upstream, the
// provider its fetches are traced with.
type testChain struct {
	fallback origin.FallbackConfig // no URL: no fallback
	tp       trace.TracerProvider
}

type chainOption func(*testChain)

// withFallback asks url for originals the root lacks; edit adjusts the
// settings (a timeout).
func withFallback(url string, edit func(*origin.FallbackConfig)) chainOption {
	return func(tc *testChain) {
		tc.fallback = origin.FallbackConfig{URL: url, MaxBytes: 1 << 20, Timeout: 2 * time.Second}
		if edit != nil {
			edit(&tc.fallback)
		}
	}
}

// withFetchTracing makes each fallback fetch a client span of tp.
func withFetchTracing(tp trace.TracerProvider) chainOption {
	return func(tc *testChain) { tc.tp = tp }
}

// testSources is main's chain: the root, then the fallback when configured.
// Only events invalidate the root's stat cache (origin's
// TestStatCacheMaxAge covers the age).
func testSources(t testing.TB, root string, c cache.Cache, m *metrics.Metrics, opts ...chainOption) (origin.Chain, *origin.Fallback) {
	t.Helper()
	var tc testChain
	for _, o := range opts {
		o(&tc)
	}
	local, err := origin.OpenLocal(root, origin.WithStatCache(24*time.Hour, nil, m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	if tc.fallback.URL == "" {
		return origin.Chain{local}, nil
	}
	fb, err := origin.NewFallback(tc.fallback, "test", c, m, tc.tp)
	if err != nil {
		t.Fatal(err)
	}
	return origin.Chain{local, fb}, fb
}

// waitUntrusted waits until the root's stat cache no longer answers rel
// from memory: the event of a change has been processed, and from then on
// no request is answered from what was known before. Each probe is a
// Stat, which describes rel afresh once it is no longer trusted.
func (ts *testServer) waitUntrusted(t testing.TB, rel string) {
	t.Helper()
	statted := ts.m.StatCacheLookups.WithLabelValues(metrics.StatCacheStat)
	eventually(t, "stat cache invalidates "+rel, func() bool {
		before := testutil.ToFloat64(statted)
		ts.local.Stat(context.Background(), rel)
		return testutil.ToFloat64(statted) > before
	})
}

func copyTree(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// do sends one request through Fiber's app.Test and returns the response
// with its body read.
func (ts *testServer) do(t testing.TB, method, target string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := ts.try(method, target, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// try is do for goroutines other than the test's own, which must report
// failures instead of calling t.Fatal.
func (ts *testServer) try(method, target string, headers ...string) (*http.Response, []byte, error) {
	req := httptest.NewRequest(method, "http://localhost/", nil)
	// httptest.NewRequest cleans the path; keep the raw one exactly.
	req.RequestURI = ""
	u := *req.URL
	path, query, _ := strings.Cut(target, "?")
	u.Path, u.RawPath, u.RawQuery = path, path, query
	u.Opaque = path
	req.URL = &u
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// The app's timeout is a hang guard: every answer the tests wait for
	// comes from a deadline of the code's own or from no waiting at all.
	resp, err := ts.App().Test(req, int(hangGuard/time.Millisecond))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: body: %w", method, target, err)
	}
	return resp, body, nil
}

func (ts *testServer) get(t testing.TB, target string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	return ts.do(t, http.MethodGet, target, headers...)
}

// hangGuard bounds every wait of these tests for an event that only a
// regression can prevent: it turns a hang into a failure, and says nothing
// about speed (nothing here comes near it, even on a loaded machine).
const hangGuard = 30 * time.Second

// eventually polls cond until it holds, failing the test after hangGuard.
// Polling observes state the code publishes (metrics, counters); no
// ordering depends on the interval.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, hangGuard)
		}
		time.Sleep(time.Millisecond)
	}
}

// receive waits for one value from ch, failing the test after hangGuard.
func receive[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("%s: not after %v", what, hangGuard)
		var zero T
		return zero
	}
}

// processCPU is the user+system CPU time of the whole test process (the
// server and libvips run in it): unlike wall time, it does not grow when
// the machine is shared.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err) // only EFAULT or EINVAL, neither possible here
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
