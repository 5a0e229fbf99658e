package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/fault"
	"image-proxy/internal/testsupport/miniotest"
	"image-proxy/internal/testsupport/testclock"
	"image-proxy/metrics"
)

func withS3Clock(now func() time.Time) S3Option { return func(o *s3Options) { o.now = now } }

func withMaxIdentities(n int) S3Option { return func(o *s3Options) { o.maxKeys = n } }

// countingStore is a reverse proxy on loopback in front of MinIO that
// counts the requests the bucket receives: HEADs, GETs, and the GETs it
// refused with 412.
type countingStore struct {
	heads, gets, refused atomic.Int64
	endpoint             string
	// holdHead, when set, holds the first HEAD until it is closed.
	holdHead atomic.Pointer[chan struct{}]
}

func newCountingStore(t *testing.T, srv *miniotest.Server) *countingStore {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	must(t, err)
	rp := httputil.NewSingleHostReverseProxy(target) // keeps the signed Host
	c := &countingStore{}
	rp.ModifyResponse = func(r *http.Response) error {
		if r.StatusCode == http.StatusPreconditionFailed {
			c.refused.Add(1)
		}
		return nil
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodHead:
			if hold := c.holdHead.Load(); c.heads.Add(1) == 1 && hold != nil {
				select {
				case <-*hold:
				case <-r.Context().Done():
				}
			}
		case http.MethodGet:
			c.gets.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	c.endpoint = ts.URL
	return c
}

// identityFixture is a bucket reached through a counting store, read by a
// source with an identity cache of maxAge on a hand-moved clock.
type identityFixture struct {
	srv    *miniotest.Server
	bucket string
	store  *countingStore
	clock  *testclock.Clock
	m      *metrics.Metrics
	s3     *S3
}

func newIdentityFixture(t *testing.T, srv *miniotest.Server, maxAge time.Duration, opts ...S3Option) *identityFixture {
	t.Helper()
	bucket, cfg := newS3Fixture(t, srv, "p/")
	f := &identityFixture{srv: srv, bucket: bucket, store: newCountingStore(t, srv),
		clock: testclock.New(time.Unix(1_800_000_000, 0)), m: metrics.New(prometheus.NewRegistry(), nil)}
	cfg.Endpoint, cfg.StatMaxAge = f.store.endpoint, maxAge
	client, err := NewS3Client(cfg)
	must(t, err)
	f.s3 = NewS3(client, cfg, append([]S3Option{WithS3Metrics(f.m), withS3Clock(f.clock.Now)}, opts...)...)
	return f
}

func (f *identityFixture) put(t *testing.T, rel string, data []byte) {
	t.Helper()
	f.srv.Put(t, f.bucket, "p/"+rel, data)
}

func (f *identityFixture) lookups(result string) float64 {
	return testutil.ToFloat64(f.m.S3StatCacheLookups.WithLabelValues(result))
}

// stats describes rel n times and returns the identities seen.
func (f *identityFixture) stats(t *testing.T, rel string, n int) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for range n {
		o, err := f.s3.Stat(t.Context(), rel)
		must(t, err)
		seen[o.Identity] = true
	}
	return seen
}

// wantRequests checks the bucket received heads HEADs and gets GETs.
func (f *identityFixture) wantRequests(t *testing.T, when string, heads, gets int64) {
	t.Helper()
	if h, g := f.store.heads.Load(), f.store.gets.Load(); h != heads || g != gets {
		t.Fatalf("%s: the bucket received %d HEAD and %d GET, want %d and %d", when, h, g, heads, gets)
	}
}

func TestS3IdentityCache(t *testing.T) {
	srv := miniotest.Start(t)
	rocket := readImage(t, "rocket.jpg")
	coffee := readImage(t, "coffee.png")
	ctx := context.Background()

	t.Run("a burst of Stats for one key is one HEAD, counted", func(t *testing.T) {
		f := newIdentityFixture(t, srv, 10*time.Second)
		f.put(t, "a.jpg", rocket)
		if seen := f.stats(t, "a.jpg", 50); len(seen) != 1 {
			t.Fatalf("%d identities for one object", len(seen))
		}
		f.wantRequests(t, "50 Stats", 1, 0)
		if hit, head := f.lookups("hit"), f.lookups("head"); hit != 49 || head != 1 {
			t.Errorf("lookups hit=%v head=%v, want 49 and 1", hit, head)
		}
		f.clock.Advance(10 * time.Second) // the max age: described again
		f.stats(t, "a.jpg", 3)
		f.wantRequests(t, "after the max age", 2, 0)
	})

	t.Run("concurrent misses of one key share one HEAD", func(t *testing.T) {
		f := newIdentityFixture(t, srv, 10*time.Second)
		f.put(t, "a.jpg", rocket)
		hold := make(chan struct{})
		f.store.holdHead.Store(&hold)
		const callers = 20
		started, results := make(chan struct{}, callers), make(chan error, callers)
		for range callers {
			go func() {
				started <- struct{}{}
				_, err := f.s3.Stat(ctx, "a.jpg")
				results <- err
			}()
		}
		for range callers {
			receive(t, "a caller starting", started)
		}
		close(hold) // the first HEAD answers once every caller is under way
		for range callers {
			must(t, receive(t, "a Stat", results))
		}
		f.wantRequests(t, "20 concurrent Stats", 1, 0)
	})

	t.Run("max age 0 is a HEAD every time", func(t *testing.T) {
		f := newIdentityFixture(t, srv, 0)
		f.put(t, "a.jpg", rocket)
		f.stats(t, "a.jpg", 5)
		f.wantRequests(t, "5 Stats", 5, 0)
		if hit, head := f.lookups("hit"), f.lookups("head"); hit != 0 || head != 5 {
			t.Errorf("lookups hit=%v head=%v, want 0 and 5", hit, head)
		}
	})

	t.Run("an absent key is remembered briefly", func(t *testing.T) {
		f := newIdentityFixture(t, srv, time.Minute)
		for range 20 {
			if _, err := f.s3.Stat(ctx, "late.jpg"); !errors.Is(err, ErrMissing) {
				t.Fatalf("Stat of a missing key: %v, want ErrMissing", err)
			}
			if _, _, err := f.s3.Open(ctx, "late.jpg"); !errors.Is(err, ErrMissing) {
				t.Fatalf("Open of a missing key: %v, want ErrMissing", err)
			}
		}
		f.wantRequests(t, "20 Stats and Opens of a missing key", 1, 0)
		f.put(t, "late.jpg", rocket)
		f.clock.Advance(maxS3MissAge - time.Millisecond)
		if _, err := f.s3.Stat(ctx, "late.jpg"); !errors.Is(err, ErrMissing) {
			t.Fatalf("within the miss age: %v, want the remembered ErrMissing", err)
		}
		f.clock.Advance(time.Millisecond) // far below the max age of a minute
		if o, err := f.s3.Stat(ctx, "late.jpg"); err != nil || o.Size != int64(len(rocket)) {
			t.Fatalf("after the miss age: %+v, %v, want the uploaded object", o, err)
		}
		f.wantRequests(t, "after the miss age", 2, 0)
	})

	t.Run("Forget drops a key at once", func(t *testing.T) {
		f := newIdentityFixture(t, srv, time.Hour)
		f.put(t, "a.jpg", rocket)
		old := f.stats(t, "a.jpg", 1)
		f.put(t, "a.jpg", coffee)
		if seen := f.stats(t, "a.jpg", 3); !maps.Equal(seen, old) {
			t.Fatal("within the max age and without an event, the identity changed")
		}
		f.s3.Forget("a.jpg")
		o, err := f.s3.Stat(ctx, "a.jpg")
		must(t, err)
		if old[o.Identity] || o.Size != int64(len(coffee)) {
			t.Fatalf("after Forget: %+v, want the replacement's identity", o)
		}
		f.wantRequests(t, "after Forget", 2, 0)
	})

	t.Run("a flood of distinct keys keeps at most N entries", func(t *testing.T) {
		f := newIdentityFixture(t, srv, time.Hour, withMaxIdentities(8))
		f.put(t, "first.jpg", rocket)
		f.stats(t, "first.jpg", 1)
		for i := range 40 {
			if _, err := f.s3.Stat(ctx, fmt.Sprintf("missing-%d.jpg", i)); !errors.Is(err, ErrMissing) {
				t.Fatal(err)
			}
		}
		if n := f.s3.ids.len(); n != 8 {
			t.Fatalf("%d entries after 41 keys, want the bound of 8", n)
		}
		f.stats(t, "first.jpg", 1) // evicted first: asked again
		f.wantRequests(t, "after the flood", 42, 0)
	})

	t.Run("a replaced object never gives new bytes for the old identity", func(t *testing.T) {
		f := newIdentityFixture(t, srv, time.Hour)
		f.put(t, "a.jpg", rocket)
		old, err := f.s3.Stat(ctx, "a.jpg")
		must(t, err)
		f.put(t, "a.jpg", coffee) // no event: the cache still says rocket
		stale, err := f.s3.Stat(ctx, "a.jpg")
		must(t, err)
		if stale.Identity != old.Identity {
			t.Fatalf("identity changed within the max age: %q", stale.Identity)
		}
		// The render of a key built from the old identity: the GET is
		// conditional on the old ETag, refused, and the new bytes are not
		// handed over for the old key.
		data, err := ReadAll(ctx, f.s3, stale, 1<<30)
		if !errors.Is(err, ErrChanged) || kindOf(err) != fault.Overloaded || data != nil {
			t.Fatalf("ReadAll for the old identity: %d bytes, %v; want no bytes and ErrChanged (503)", len(data), err)
		}
		if n := f.store.refused.Load(); n != 1 {
			t.Errorf("%d GETs refused with 412, want 1 (If-Match on the remembered ETag)", n)
		}
		// The retry describes the new version, with no further HEAD (the
		// second GET described it), and reads the new bytes for it.
		cur, err := f.s3.Stat(ctx, "a.jpg")
		must(t, err)
		if cur.Identity == old.Identity || cur.Size != int64(len(coffee)) {
			t.Fatalf("after the refused read: %+v, want the replacement's identity", cur)
		}
		data, err = ReadAll(ctx, f.s3, cur, 1<<30)
		if err != nil || !bytes.Equal(data, coffee) {
			t.Fatalf("ReadAll for the new identity: %d bytes, %v; want the replacement", len(data), err)
		}
		// minio-go opens with a HEAD (conditional here) and reads with
		// GETs: Stat's HEAD, the refused HEAD, the unconditional one that
		// described the new version, the second read's HEAD and its GET.
		f.wantRequests(t, "the whole exchange", 4, 1)
	})
}
