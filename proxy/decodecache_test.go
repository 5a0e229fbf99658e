package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"image-proxy/cache"
	"image-proxy/transform"
)

// An edited original is never rendered from the decode of the old bytes:
// its identity changes, and so does the decode cache's key.
func TestEditedSourceIsDecodedAgain(t *testing.T) {
	ts := newTestServer(t, nil)
	res, body := ts.get(t, "/rocket.jpg?size=100&format=webp")
	if got := decodeInfo(t, body); res.StatusCode != 200 || got.width != 100 || got.height != 67 {
		t.Fatalf("%d, %+v", res.StatusCode, got)
	}
	hubble, err := os.ReadFile("../data/images/hubble_deep_field.jpg")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(ts.root, "rocket.jpg")
	if err := os.WriteFile(p, hubble, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	// 1000×872: a 90 px box is 90×78, where the old 640×427 gave 90×60.
	res, body = ts.get(t, "/rocket.jpg?size=90&format=webp")
	if got := decodeInfo(t, body); res.StatusCode != 200 || got.width != 90 || got.height != 78 {
		t.Errorf("%d, %+v: rendered from the old decode", res.StatusCode, got)
	}
}

// A publish burst: every variant of one new source at once, more than
// there are slots, with the decode cache on and off. Renders waiting for
// the shared decode give their slot back, so nothing deadlocks or times out.
func TestPublishBurst(t *testing.T) {
	for _, size := range []int64{128 << 20, 0} {
		t.Run(fmt.Sprintf("decode cache %d", size), func(t *testing.T) {
			ts := newTestServer(t, func(c *Config, cc *cache.Config, tc *transform.Config) {
				c.Concurrency, c.QueueDepth = 1, 64
				tc.DecodeCacheSize = size
			})
			var wg sync.WaitGroup
			formats := []string{"webp", "avif", "jpeg", "png"}
			status := make([]int, 12)
			bodies := make([][]byte, 12)
			for i := range bodies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, body, err := ts.try("GET", fmt.Sprintf("/coffee-progressive.jpg?size=%d&format=%s", 100*(1+i%3), formats[i/3]))
					if err != nil {
						t.Error(err)
						return
					}
					status[i], bodies[i] = res.StatusCode, body
				}()
			}
			wg.Wait()
			for i, body := range bodies {
				if status[i] != 200 {
					t.Errorf("request %d: status %d", i, status[i])
					continue
				}
				if got := decodeInfo(t, body); got.width != 100*(1+i%3) || got.format != formats[i/3] {
					t.Errorf("request %d: %+v", i, got)
				}
			}
		})
	}
}
