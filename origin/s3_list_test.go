package origin

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"image-proxy/internal/testsupport/miniotest"
)

// listCounter forwards to a MinIO server and counts the list requests it
// sees.
func listCounter(t *testing.T, endpoint string) (string, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(endpoint)
	must(t, err)
	var lists atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2" {
			lists.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &lists
}

func collect(t *testing.T, s *S3, under string, skip ...string) []string {
	t.Helper()
	var out []string
	for rel, err := range s.List(context.Background(), under, skip...) {
		must(t, err)
		out = append(out, rel)
	}
	return out
}

// TestS3List: the listing yields paths relative to the prefix, leaves out
// the skipped prefixes (even with an empty originals prefix), goes on past
// them without reading their pages, and stops when the caller does.
func TestS3List(t *testing.T) {
	srv := miniotest.Start(t)
	data := []byte("x")

	t.Run("prefix", func(t *testing.T) {
		bucket, cfg := newS3Fixture(t, srv, "originals/")
		for _, k := range []string{"originals/a.jpg", "originals/photos/b.jpg", "originals/photos/c/d.png", "other/e.jpg", "originalsX/f.jpg"} {
			srv.Put(t, bucket, k, data)
		}
		s := newS3(t, cfg)
		cases := []struct {
			under string
			want  []string
		}{
			{"", []string{"a.jpg", "photos/b.jpg", "photos/c/d.png"}},
			{"photos/", []string{"photos/b.jpg", "photos/c/d.png"}},
			{"photos/c/", []string{"photos/c/d.png"}},
			{"nothing/", nil},
		}
		for _, c := range cases {
			if got := collect(t, s, c.under); !slices.Equal(got, c.want) {
				t.Errorf("List(%q) = %q, want %q", c.under, got, c.want)
			}
		}
	})

	t.Run("skips result and export prefixes with an empty prefix", func(t *testing.T) {
		bucket, cfg := newS3Fixture(t, srv, "")
		for _, k := range []string{"a.jpg", "exports/a-100.webp", "exports/manifest.json", "m.jpg", "results/ab/cd", "results/x", "resultsY.jpg", "z.jpg"} {
			srv.Put(t, bucket, k, data)
		}
		s := newS3(t, cfg)
		want := []string{"a.jpg", "m.jpg", "resultsY.jpg", "z.jpg"}
		if got := collect(t, s, "", "results/", "exports/"); !slices.Equal(got, want) {
			t.Errorf("List = %q, want %q", got, want)
		}
		if got := collect(t, s, "results/", "results/", "exports/"); len(got) != 0 {
			t.Errorf("List(results/) = %q, want nothing", got)
		}
	})

	t.Run("a skipped prefix costs one request, not its pages", func(t *testing.T) {
		bucket, cfg := newS3Fixture(t, srv, "")
		keys := []string{"a.jpg", "z.jpg"}
		for i := range 2100 { // three pages of 1,000 keys
			keys = append(keys, fmt.Sprintf("results/%04d", i))
		}
		putAll(t, srv, bucket, keys, data)
		endpoint, lists := listCounter(t, srv.Endpoint)
		cfg.Endpoint = endpoint
		s := newS3(t, cfg)
		if got := collect(t, s, "", "results/"); !slices.Equal(got, []string{"a.jpg", "z.jpg"}) {
			t.Errorf("List = %q", got)
		}
		if n := lists.Load(); n != 2 {
			t.Errorf("%d list requests, want 2 (the first page, then one after results/)", n)
		}
		lists.Store(0)
		if got := collect(t, s, ""); len(got) != len(keys) {
			t.Errorf("without skip: %d keys, want %d", len(got), len(keys))
		}
		if n := lists.Load(); n != 3 {
			t.Errorf("without skip: %d list requests, want 3 pages", n)
		}
		lists.Store(0)
		for range s.List(context.Background(), "") {
			break
		}
		if n := lists.Load(); n != 1 {
			t.Errorf("stopped after one key: %d list requests, want 1", n)
		}
	})

	t.Run("errors end the listing", func(t *testing.T) {
		_, cfg := newS3Fixture(t, srv, "")
		cfg.Bucket = "no-such-bucket"
		var errs int
		for _, err := range newS3(t, cfg).List(context.Background(), "") {
			if err != nil {
				errs++
			}
		}
		if errs != 1 {
			t.Errorf("%d errors, want 1", errs)
		}
	})
}

// putAll stores data under every key, several at a time.
func putAll(t *testing.T, srv *miniotest.Server, bucket string, keys []string, data []byte) {
	t.Helper()
	client := srv.Client(t)
	next := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for k := range next {
				// Not srv.Put: t.Fatal belongs to the test's goroutine.
				_, err := client.PutObject(context.Background(), bucket, k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
				if err != nil {
					t.Errorf("put %s: %v", k, err)
				}
			}
		})
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
}
