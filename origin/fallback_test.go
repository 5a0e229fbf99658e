package origin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/cache"
	"image-proxy/fault"
	"image-proxy/metrics"
)

// newFallback is main's fallback over url, its fetches cached in memory;
// edit adjusts the settings.
func newFallback(t *testing.T, url string, edit func(*FallbackConfig)) (*Fallback, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), nil)
	mem, err := cache.NewMemoryTier(16<<20, 1<<20, m)
	must(t, err)
	c := cache.New([]cache.Tier{mem}, m)
	t.Cleanup(func() { c.Close() })
	cfg := FallbackConfig{URL: url, MaxBytes: 1 << 20, Timeout: 2 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	f, err := NewFallback(cfg, "test", c, m, nil)
	must(t, err)
	return f, m
}

// TestFallbackFetches: Stat carries the bytes along (a render reads no
// further), Open serves them from memory, and the upstream is asked once.
func TestFallbackFetches(t *testing.T) {
	rocket := readImage(t, "rocket.jpg")
	hits := make(chan string, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.RequestURI
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		w.Header().Set("ETag", `"up-1"`)
		w.Write(rocket)
	}))
	t.Cleanup(up.Close)
	f, m := newFallback(t, up.URL+"/base/", nil)
	ctx := context.Background()
	o, err := f.Stat(ctx, "dir/with space.jpg")
	must(t, err)
	data, err := ReadAll(ctx, f, o, o.Size)
	if err != nil || string(data) != string(rocket) || o.data == nil {
		t.Fatalf("ReadAll after Stat: %d bytes, %v (carried along: %t)", len(data), err, o.data != nil)
	}
	o2, b, err := f.Open(ctx, "dir/with space.jpg")
	must(t, err)
	if _, mem := b.(MemoryBody); !mem || o2.Identity != o.Identity || !o.ModTime.Equal(time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)) {
		t.Errorf("Open: %T, identity %q (Stat's %q), modified %v", b, o2.Identity, o.Identity, o.ModTime)
	}
	close(hits)
	var paths []string
	for p := range hits {
		paths = append(paths, p)
	}
	if len(paths) != 1 || paths[0] != "/base/dir/with%20space.jpg" {
		t.Errorf("upstream asked for %q, want once for /base/dir/with%%20space.jpg", paths)
	}
	if got := testutil.ToFloat64(m.FallbackRequests.WithLabelValues("ok")); got != 1 || f.Kind() != "fallback" {
		t.Errorf("fallback{ok} = %v, Kind %q", got, f.Kind())
	}
}

// TestFallbackUpstreamURL: each segment of an already safe path is escaped
// onto the base path, so nothing in it can change the host or the query.
func TestFallbackUpstreamURL(t *testing.T) {
	f, _ := newFallback(t, "https://img.example.com/base/", nil)
	for rel, want := range map[string]string{
		"a/b/c.jpg":               "https://img.example.com/base/a/b/c.jpg",
		"with space.jpg":          "https://img.example.com/base/with%20space.jpg",
		"pct%25.jpg":              "https://img.example.com/base/pct%2525.jpg",
		"q?x#y.jpg":               "https://img.example.com/base/q%3Fx%23y.jpg",
		"café.jpg":                "https://img.example.com/base/caf%C3%A9.jpg",
		"semi;colon.jpg":          "https://img.example.com/base/semi%3Bcolon.jpg",
		"@evil.example.com/x.jpg": "https://img.example.com/base/@evil.example.com/x.jpg",
	} {
		if got := f.upstreamURL(rel); got != want {
			t.Errorf("%q: %s, want %s", rel, got, want)
		}
	}
}

// TestFallbackFailureKinds: what an upstream does becomes a fault kind (and
// so a status) and a result label.
func TestFallbackFailureKinds(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		kind    fault.Kind
		result  string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, fault.NotFound, "not_found"},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, fault.BadGateway, "error"},
		{"not an image", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html></html>")) }, fault.BadGateway, "error"},
		{"over the cap", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 2<<20)) }, fault.UpstreamTooBig, "too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := httptest.NewServer(c.handler)
			t.Cleanup(up.Close)
			f, m := newFallback(t, up.URL, nil)
			_, err := f.Stat(context.Background(), "x.jpg")
			if kindOf(err) != c.kind {
				t.Errorf("%v, want kind %v", err, c.kind)
			}
			if got := testutil.ToFloat64(m.FallbackRequests.WithLabelValues(c.result)); got != 1 {
				t.Errorf("fallback{%s} = %v", c.result, got)
			}
		})
	}
}

// TestFallbackDeadline: an upstream that never answers, or answers too
// slowly, is abandoned at the configured deadline: a GatewayTimeout (504),
// the timeout counted, the upstream seeing its request cancelled, and the
// request having gone out with at most the configured time left. Without
// the deadline the fetch would wait for the hanging upstream until
// hangGuard failed the test.
func TestFallbackDeadline(t *testing.T) {
	rocket := readImage(t, "rocket.jpg")
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
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.handler(w, r, release)
				select {
				case ended <- r.Context().Err():
				default: // a second request would be a failure of its own
				}
			}))
			t.Cleanup(up.Close)
			// Registered after the server, so it runs before up.Close,
			// which would otherwise wait for a handler a regression left hanging.
			t.Cleanup(func() { close(release) })
			const timeout = 500 * time.Millisecond
			f, m := newFallback(t, up.URL, func(f *FallbackConfig) { f.Timeout = timeout })
			rec := &deadlineRecorder{next: f.client.Transport}
			f.client.Transport = rec
			if _, err := f.Stat(context.Background(), "slow.jpg"); kindOf(err) != fault.GatewayTimeout {
				t.Fatalf("%v, want GatewayTimeout", err)
			}
			if got := testutil.ToFloat64(m.FallbackRequests.WithLabelValues("timeout")); got != 1 {
				t.Errorf("fallback{timeout} = %v", got)
			}
			if err := receive(t, "the upstream handler's end", ended); !errors.Is(err, context.Canceled) {
				t.Errorf("the upstream request was not cancelled (context error %v)", err)
			}
			// The deadline that fired is the configured one: the request went
			// out with at most that much time left. (Delays before the round
			// trip only shorten what is left, so a loaded machine cannot
			// break this; a deadline of the wrong length, or none, does.)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.left) != 1 {
				t.Fatalf("%d upstream round trips, want 1", len(rec.left))
			}
			if left := rec.left[0]; left == noDeadline || left > timeout {
				t.Errorf("the upstream request had %v left before its deadline, want at most the configured %v", left, timeout)
			}
		})
	}
}

// noDeadline marks a round trip whose context had no deadline.
const noDeadline = time.Duration(math.MaxInt64)

// deadlineRecorder notes how long each upstream request had left before
// its context's deadline when it went out.
type deadlineRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	left []time.Duration
}

func (d *deadlineRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	left := noDeadline
	if dl, ok := r.Context().Deadline(); ok {
		left = time.Until(dl)
	}
	d.mu.Lock()
	d.left = append(d.left, left)
	d.mu.Unlock()
	return d.next.RoundTrip(r)
}
