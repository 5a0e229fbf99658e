package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"

	"image-proxy/cache"
	"image-proxy/internal/testsupport/miniotest"
)

const e2eEventsToken = "events-token-0123456789abcdef"

// countingProxy stands between image-proxy and MinIO and counts the
// requests of each method MinIO receives from it.
type countingProxy struct {
	url   string
	heads atomic.Int64
	all   atomic.Int64
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingProxy{}
	// The Host header is passed on as it came, so MinIO checks the
	// signature against the host the client signed.
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.all.Add(1)
		if r.Method == http.MethodHead {
			c.heads.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// eventsEnv is MinIO calling one image-proxy through its real webhook
// target: originals under originals/, shared results under _results/.
type eventsEnv struct {
	minio  *miniotest.Server
	bucket string
	proxy  *countingProxy
	p      *binaryProcess
}

func startEventsEnv(t *testing.T) *eventsEnv {
	t.Helper()
	addr := freeAddr(t)
	// The queue directory keeps events MinIO could not deliver (the
	// server below starts after MinIO) and sends them once it answers.
	mc := miniotest.StartEnv(t,
		"MINIO_NOTIFY_WEBHOOK_ENABLE_IMAGEPROXY=on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_IMAGEPROXY=http://"+addr+"/events/s3",
		"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_IMAGEPROXY="+e2eEventsToken,
		"MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_IMAGEPROXY="+t.TempDir())
	e := &eventsEnv{minio: mc, bucket: mc.Bucket(t, "photos")}
	q := notification.NewConfig(notification.NewArn("minio", "sqs", "", "IMAGEPROXY", "webhook"))
	q.AddEvents(notification.ObjectCreatedAll, notification.ObjectRemovedAll)
	var cfg notification.Configuration
	cfg.AddQueue(q)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := mc.Client(t).SetBucketNotification(ctx, e.bucket, cfg); err != nil {
		t.Fatalf("bucket notification: %v", err)
	}
	e.proxy = newCountingProxy(t, mc.Endpoint)
	e.p = startBinaryAt(t, addr, t.TempDir(),
		"IMAGE_PROXY_ROOT_PATH="+filepath.Join(t.TempDir(), "no-root"),
		"IMAGE_PROXY_S3_ENDPOINT="+e.proxy.url, "IMAGE_PROXY_S3_BUCKET="+e.bucket,
		"IMAGE_PROXY_S3_ACCESS_KEY="+mc.AccessKey, "IMAGE_PROXY_S3_SECRET_KEY="+mc.SecretKey,
		"IMAGE_PROXY_S3_PREFIX=originals/", "IMAGE_PROXY_S3_RESULT_PREFIX=_results/",
		// Long: only an event can tell the server an object changed.
		"IMAGE_PROXY_S3_STAT_MAX_AGE=1h",
		"IMAGE_PROXY_EVENTS_TOKEN="+e2eEventsToken,
		"IMAGE_PROXY_WARM_SIZES=64,128", "IMAGE_PROXY_WARM_FORMATS=webp,png",
		"IMAGE_PROXY_EVENTS_EXPORT_PREFIX=resized/")
	return e
}

func (e *eventsEnv) put(t *testing.T, key, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("data/images", file))
	if err != nil {
		t.Fatal(err)
	}
	e.minio.Put(t, e.bucket, key, b)
}

// events is the count of events of kind that ended with outcome.
func (e *eventsEnv) events(t *testing.T, kind, outcome string) float64 {
	return metricSum(t, scrape(e.p.base), "image_proxy_events_total", `kind="`+kind+`",outcome="`+outcome+`"`)
}

// waitEvents waits, up to hangGuard, until n events of kind have ended
// with outcome: MinIO has called the server and its work is done.
func (e *eventsEnv) waitEvents(t *testing.T, kind, outcome string, n float64) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for e.events(t, kind, outcome) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s events %s: %v after %v, want %v\n%s", kind, outcome, e.events(t, kind, outcome), hangGuard, n, e.p.logs.String())
		}
		time.Sleep(20 * time.Millisecond) // the next look; the deadline bounds the wait
	}
}

// exported lists the objects under the events' export prefix.
func (e *eventsEnv) exported(t *testing.T) []string {
	t.Helper()
	var names []string
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for o := range e.minio.Client(t).ListObjects(ctx, e.bucket, minio.ListObjectsOptions{Prefix: "resized/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		names = append(names, strings.TrimPrefix(o.Key, "resized/"))
	}
	return names
}

func (e *eventsEnv) results(t *testing.T, rel string) int {
	t.Helper()
	g := cache.SourceGroup(rel)
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for o := range e.minio.Client(t).ListObjects(ctx, e.bucket, minio.ListObjectsOptions{Prefix: "_results/" + g[:2] + "/" + g[2:4] + "/" + g, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}

// TestS3EventsFromMinIO: MinIO's own webhook tells the server of uploads,
// replacements and deletions; its variants are ready before anyone asks,
// a hit asks the bucket nothing, and its own writes trigger nothing.
func TestS3EventsFromMinIO(t *testing.T) {
	e := startEventsEnv(t)
	variants := []string{"size=64&format=webp", "size=128&format=webp", "size=64&format=png", "size=128&format=png"}

	e.put(t, "originals/photos/rocket.jpg", "rocket.jpg")
	e.waitEvents(t, "created", "done", 1)
	if n := e.results(t, "photos/rocket.jpg"); n != len(variants) {
		t.Fatalf("%d results in the bucket after the upload, want %d", n, len(variants))
	}
	wantExport := "manifest.json photos/rocket-128.png photos/rocket-128.webp photos/rocket-64.png photos/rocket-64.webp"
	if got := strings.Join(e.exported(t), " "); got != wantExport {
		t.Errorf("exported %q, want %q", got, wantExport)
	}
	first := map[string]answer{}
	for _, v := range variants {
		a := get(t, e.p.base+"/photos/rocket.jpg?"+v)
		if a.status != 200 || a.cache != "HIT-S3" {
			t.Errorf("%s after the upload: %d %s, want a HIT-S3 of the warmed variant", v, a.status, a.cache)
		}
		first[v] = a
	}
	if n := metricSum(t, scrape(e.p.base), "image_proxy_transforms_total", `work="live"`); n != 0 {
		t.Errorf("%v live renders: the upload's warm should have made every variant", n)
	}

	// A burst of hits asks the bucket nothing: no HEAD per hit.
	heads, all := e.proxy.heads.Load(), e.proxy.all.Load()
	for range 50 {
		if a := get(t, e.p.base+"/photos/rocket.jpg?"+variants[0]); a.status != 200 || a.cache != "HIT-MEMORY" {
			t.Fatalf("burst: %d %s", a.status, a.cache)
		}
	}
	if h, n := e.proxy.heads.Load()-heads, e.proxy.all.Load()-all; h != 0 || n != 0 {
		t.Errorf("50 memory hits sent %d HEADs (%d requests) to the bucket, want none", h, n)
	}

	// The server's own writes (results) and an object outside the prefix
	// trigger nothing.
	ignored := e.events(t, "created", "ignored")
	e.put(t, "_results/zz/zz/planted", "rocket.jpg")
	e.put(t, "resized/planted.jpg", "rocket.jpg")
	e.put(t, "elsewhere/rocket.jpg", "rocket.jpg")
	e.waitEvents(t, "created", "ignored", ignored+3)
	if n := e.events(t, "created", "done"); n != 1 {
		t.Errorf("%v uploads worked, want 1: results and other prefixes must be ignored", n)
	}

	// A replacement is served at once, under a new ETag, though the
	// identity cache would trust the old object for an hour.
	e.put(t, "originals/photos/rocket.jpg", "coffee.png")
	e.waitEvents(t, "created", "done", 2)
	for _, v := range variants {
		a := get(t, e.p.base+"/photos/rocket.jpg?"+v)
		if a.status != 200 || a.etag == first[v].etag || string(a.body) == string(first[v].body) {
			t.Errorf("%s after the replacement: %d, ETag %s (was %s): want the new picture", v, a.status, a.etag, first[v].etag)
		}
	}

	// A deletion: 404, and every stored variant of it is gone.
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := e.minio.Client(t).RemoveObject(ctx, e.bucket, "originals/photos/rocket.jpg", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitEvents(t, "removed", "done", 1)
	for _, v := range variants {
		if a := get(t, e.p.base+"/photos/rocket.jpg?"+v); a.status != 404 {
			t.Errorf("%s after the deletion: %d %s, want 404", v, a.status, a.cache)
		}
	}
	if n := e.results(t, "photos/rocket.jpg"); n != 0 {
		t.Errorf("%d results of the deleted photo left in the bucket", n)
	}
	if got := strings.Join(e.exported(t), " "); got != "manifest.json planted.jpg" {
		t.Errorf("export after the deletion: %q, want the manifest (and the planted object) only", got)
	}
	scraped := scrape(e.p.base)
	if n := metricSum(t, scraped, "image_proxy_purged_entries_total", `tier="s3"`); n < float64(len(variants)) {
		t.Errorf("%v S3 entries purged, want at least %d", n, len(variants))
	}
	if !strings.Contains(scraped, `image_proxy_purges_total{trigger="event"} 1`) {
		t.Error("the deletion's purge is not counted")
	}
}
