package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/origin"
)

// upstream is a local origin that counts and records what it receives.
type upstream struct {
	*httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	paths []string
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.paths = append(u.paths, r.RequestURI)
		u.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) lastPath() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.paths) == 0 {
		return ""
	}
	return u.paths[len(u.paths)-1]
}

func TestFallbackServesMissingFiles(t *testing.T) {
	rocket, _ := os.ReadFile("../data/images/rocket.jpg")
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		w.Header().Set("ETag", `"up-1"`)
		w.Write(rocket)
	})
	ts := newTestServerWith(t, nil, withFallback(up.URL+"/base/", nil))

	resp, body := ts.get(t, "/remote/rocket.jpg")
	if resp.StatusCode != 200 || !bytes.Equal(body, rocket) {
		t.Fatalf("passthrough: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp.Header.Get("Last-Modified") != "Mon, 02 Jan 2006 15:04:05 GMT" || resp.Header.Get("Content-Type") != "image/jpeg" || resp.Header.Get("ETag") == "" {
		t.Errorf("headers %v", resp.Header)
	}
	if up.lastPath() != "/base/remote/rocket.jpg" {
		t.Errorf("upstream got %q", up.lastPath())
	}
	for _, size := range []string{"100", "50", "25"} {
		resp, body = ts.get(t, "/remote/rocket.jpg?format=webp&size="+size)
		if resp.StatusCode != 200 || decodeInfo(t, body).format != "webp" {
			t.Fatalf("transform: %d", resp.StatusCode)
		}
	}
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream fetched %d times for one original, want 1", n)
	}
	if got := testutil.ToFloat64(ts.m.FallbackRequests.WithLabelValues("ok")); got != 1 {
		t.Errorf("fallback{ok} = %v", got)
	}
	// A local file never asks the upstream.
	ts.get(t, "/rocket.jpg")
	if n := up.hits.Load(); n != 1 {
		t.Errorf("a local file reached the upstream")
	}
}

func TestFallbackEscapesPaths(t *testing.T) {
	rocket, _ := os.ReadFile("../data/images/rocket.jpg")
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write(rocket) })
	ts := newTestServerWith(t, nil, withFallback(up.URL+"/base", nil))
	cases := map[string]string{
		"/a/b/c.jpg":                     "/base/a/b/c.jpg",
		"/with%20space.jpg":              "/base/with%20space.jpg",
		"/pct%2525.jpg":                  "/base/pct%2525.jpg",
		"/q%3Fx%23y.jpg":                 "/base/q%3Fx%23y.jpg",
		"/caf%C3%A9.jpg":                 "/base/caf%C3%A9.jpg",
		"/semi;colon.jpg":                "/base/semi%3Bcolon.jpg",
		"/at@sign.jpg":                   "/base/at@sign.jpg",
		"/enc%2Fslash.jpg":               "/base/enc/slash.jpg",
		"/%40evil.example.com%2Fx.jpg":   "/base/@evil.example.com/x.jpg",
		"/plus+sign.jpg?size=10&v=1#frg": "/base/plus+sign.jpg",
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			resp, _ := ts.get(t, in)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := up.lastPath(); got != want {
				t.Errorf("upstream got %q, want %q", got, want)
			}
		})
	}
	before := up.hits.Load()
	for _, p := range []string{"/../x.jpg", "/%2e%2e/x.jpg", "/a/..%2f..%2fx.jpg", "/.env", "/a%5c..%5cx.jpg", "/a%00.jpg"} {
		if resp, _ := ts.get(t, p); resp.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
	if up.hits.Load() != before {
		t.Error("a refused path reached the upstream")
	}
}

func TestFallbackFailures(t *testing.T) {
	rocket, _ := os.ReadFile("../data/images/rocket.jpg")
	big := append(append([]byte{}, rocket...), make([]byte, 2<<20)...)
	cases := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		result  string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, 404, "not_found"},
		{"410", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) }, 404, "not_found"},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, 502, "error"},
		{"403", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }, 502, "error"},
		{"html body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write([]byte("<html><body>not an image</body></html>"))
		}, 502, "error"},
		{"over cap with length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		}, 502, "too_large"},
		{"over cap chunked", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < len(big); i += 64 << 10 {
				w.Write(big[i:min(i+64<<10, len(big))])
				w.(http.Flusher).Flush()
			}
		}, 502, "too_large"},
		{"lying short length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write(big)
		}, 502, "error"},
		{"gzip is not inflated", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
		}, 502, "error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t, c.handler)
			ts := newTestServerWith(t, nil, withFallback(up.URL, nil))
			for _, q := range []string{"", "?size=10"} {
				resp, body := ts.get(t, "/missing.jpg"+q)
				if resp.StatusCode != c.status {
					t.Fatalf("%s: status %d, want %d: %s", q, resp.StatusCode, c.status, body)
				}
				errorMessage(t, body)
				if c.status >= 500 && resp.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control %q on %d", resp.Header.Get("Cache-Control"), c.status)
				}
			}
			if got := testutil.ToFloat64(ts.m.FallbackRequests.WithLabelValues(c.result)); got < 1 {
				t.Errorf("fallback{%s} not counted", c.result)
			}
		})
	}
}

func TestFallbackNotFoundIsRemembered(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	ts := newTestServerWith(t, nil, withFallback(up.URL, nil))
	for range 5 {
		if resp, _ := ts.get(t, "/gone.jpg"); resp.StatusCode != 404 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream asked %d times for the same missing file, want 1", n)
	}
}

// TestFallbackDeadline: an upstream that never answers, or answers too
// slowly, is abandoned at the deadline. The proof is the code's own: a 504
// (only a deadline gives one) that is not cached, the timeout counted, and
// the upstream seeing its request cancelled. Without the deadline the
// request would wait for the hanging upstream until hangGuard failed the
// test.
func TestFallbackDeadline(t *testing.T) {
	rocket, _ := os.ReadFile("../data/images/rocket.jpg")
	cases := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request, release <-chan struct{})
	}{
		{"hanging", func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}},
		// Headers at once, then a byte every 10 ms (over 18 minutes for the
		// whole file): only a deadline on the whole fetch, body included,
		// stops it, not one on the headers or on an idle read.
		{"slow drip", func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
			w.Header().Set("Content-Length", fmt.Sprint(len(rocket)))
			for i := range rocket {
				w.Write(rocket[i : i+1])
				w.(http.Flusher).Flush()
				select {
				case <-time.After(10 * time.Millisecond):
				case <-r.Context().Done():
					return
				case <-release:
					return
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			ended := make(chan error, 1)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				c.handler(w, r, release)
				select {
				case ended <- r.Context().Err():
				default: // a second request would be a failure of its own
				}
			})
			// Registered after newUpstream, so it runs before up.Close,
			// which would otherwise wait for a handler a regression left hanging.
			t.Cleanup(func() { close(release) })
			const timeout = 500 * time.Millisecond
			ts := newTestServerWith(t, nil, withFallback(up.URL, func(f *origin.FallbackConfig) { f.Timeout = timeout }))
			resp, body := ts.get(t, "/slow.jpg")
			if resp.StatusCode != 504 {
				t.Fatalf("status %d, want 504: %s", resp.StatusCode, body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q on a 504", resp.Header.Get("Cache-Control"))
			}
			errorMessage(t, body)
			if got := testutil.ToFloat64(ts.m.FallbackRequests.WithLabelValues("timeout")); got != 1 {
				t.Errorf("fallback{timeout} = %v", got)
			}
			if err := receive(t, "the upstream handler's end", ended); !errors.Is(err, context.Canceled) {
				t.Errorf("the upstream request was not cancelled (context error %v)", err)
			}
			// That the deadline is the configured one, not merely some
			// deadline, is origin's TestFallbackDeadline.
		})
	}
}

func TestFallbackRedirects(t *testing.T) {
	rocket, _ := os.ReadFile("../data/images/rocket.jpg")
	other := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write(rocket) })
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/img.jpg":
			w.Write(rocket)
		case strings.HasPrefix(r.URL.Path, "/hop"):
			var n int
			fmt.Sscanf(r.URL.Path, "/hop%d", &n)
			if n == 0 {
				http.Redirect(w, r, "/img.jpg", http.StatusFound)
				return
			}
			http.Redirect(w, r, fmt.Sprintf("/hop%d", n-1), http.StatusFound)
		case r.URL.Path == "/away.jpg":
			http.Redirect(w, r, other.URL+"/img.jpg", http.StatusMovedPermanently)
		}
	})
	ts := newTestServerWith(t, nil, withFallback(up.URL, nil))
	cases := []struct {
		path   string
		status int
	}{
		{"/hop0", 200}, // one redirect
		{"/hop2", 200}, // three redirects
		{"/hop3", 502}, // four redirects
		{"/away.jpg", 502},
	}
	for _, c := range cases {
		if resp, _ := ts.get(t, c.path); resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.path, resp.StatusCode, c.status)
		}
	}
	if n := other.hits.Load(); n != 0 {
		t.Errorf("the other host was contacted %d times", n)
	}
}

func TestFallbackCoalescesConcurrentRequests(t *testing.T) {
	rocket, _ := os.ReadFile("../data/images/rocket.jpg")
	gate := make(chan struct{})
	arrived := make(chan struct{}, 16)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-gate:
			w.Write(rocket)
		case <-r.Context().Done():
		}
	})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open) // before up.Close, which waits for the handler
	ts := newTestServerWith(t, nil, withFallback(up.URL, nil))

	const n = 10
	errs := make(chan error, n)
	for range n {
		go func() {
			resp, _, err := ts.try(http.MethodGet, "/same.jpg")
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			errs <- err
		}()
	}
	receive(t, "the first fetch reaching the upstream", arrived)
	// Every request has missed the memory tier while the one fetch is held
	// at the gate: each can only join that fetch, none can find a result.
	eventually(t, fmt.Sprintf("%d memory misses", n), func() bool {
		return testutil.ToFloat64(ts.m.CacheRequests.WithLabelValues("memory", "miss")) >= n
	})
	open()
	for range n {
		if err := receive(t, "a response", errs); err != nil {
			t.Error(err)
		}
	}
	if hits := up.hits.Load(); hits != 1 {
		t.Errorf("%d upstream fetches for %d concurrent requests, want 1", hits, n)
	}
}

func TestFallbackNotUsedForExistingNonFiles(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	ts := newTestServerWith(t, nil, withFallback(up.URL, nil))
	must(t, os.MkdirAll(filepath.Join(ts.root, "dir"), 0o755))
	ts.get(t, "/dir")
	ts.get(t, "/variants")
	if up.hits.Load() != 0 {
		t.Error("a directory that exists locally was asked of the upstream")
	}
}
