package main

import (
	"bufio"
	"bytes"
	"context"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"image-proxy/internal/testsupport/miniotest"
)

// fleet is N real image-proxy processes sharing one real MinIO bucket for
// originals and results, with no local images (an S3-only deployment).
type fleet struct {
	minio    *miniotest.Server
	bucket   string
	replicas []*binaryProcess
}

const fleetResults = "_results/"

func startFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := &fleet{minio: miniotest.Start(t)}
	f.bucket = f.minio.Bucket(t, "fleet")
	for range n {
		f.replicas = append(f.replicas, f.start(t))
	}
	return f
}

// start adds one replica; its root does not exist, so every original comes
// from the bucket, and it has no disk tier, so a result it did not render
// itself can only come from the bucket.
func (f *fleet) start(t *testing.T) *binaryProcess {
	return startBinary(t, t.TempDir(),
		"IMAGE_PROXY_ROOT_PATH="+filepath.Join(t.TempDir(), "no-root"),
		"IMAGE_PROXY_S3_ENDPOINT="+f.minio.Endpoint, "IMAGE_PROXY_S3_BUCKET="+f.bucket,
		"IMAGE_PROXY_S3_ACCESS_KEY="+f.minio.AccessKey, "IMAGE_PROXY_S3_SECRET_KEY="+f.minio.SecretKey,
		"IMAGE_PROXY_S3_PREFIX=originals/", "IMAGE_PROXY_S3_RESULT_PREFIX="+fleetResults)
}

func (f *fleet) put(t *testing.T, key, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("data/images", file))
	if err != nil {
		t.Fatal(err)
	}
	f.minio.Put(t, f.bucket, "originals/"+key, b)
}

// renders is the number of successful renders across the fleet.
func (f *fleet) renders(t *testing.T) int {
	t.Helper()
	total := 0
	for _, r := range f.replicas {
		total += int(metricSum(t, scrape(r.base), "image_proxy_transforms_total", `result="ok"`))
	}
	return total
}

// metricSum adds the values of every series of name whose labels contain match.
func metricSum(t *testing.T, text, name, match string) float64 {
	t.Helper()
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, match) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

type answer struct {
	status      int
	etag, cache string
	body        []byte
}

func get(t *testing.T, url string) answer {
	t.Helper()
	a, err := fetch(url)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fetch is get for goroutines other than the test's own.
func fetch(url string) (answer, error) {
	client := http.Client{Timeout: hangGuard}
	resp, err := client.Get(url)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("X-Cache-Status"), body}, err
}

// TestFleetRendersEachVariantOnce: requests spread round-robin over three
// replicas render each variant once, and the others answer from the bucket.
func TestFleetRendersEachVariantOnce(t *testing.T) {
	f := startFleet(t, 3)
	f.put(t, "photos/rocket.jpg", "rocket.jpg")
	variants := []string{"size=64&format=webp", "size=128&format=png", "size=100&format=jpeg", "size=80&format=avif"}
	etags := map[string]string{}
	for i, v := range variants {
		for j := range f.replicas {
			r := f.replicas[(i+j)%len(f.replicas)]
			a := get(t, r.base+"/photos/rocket.jpg?"+v)
			want := "HIT-S3"
			if j == 0 {
				want = "MISS"
			}
			if a.status != 200 || a.cache != want {
				t.Fatalf("%s on replica %d: %d %s, want 200 %s: %s", v, (i+j)%3, a.status, a.cache, want, a.body)
			}
			if etags[v] == "" {
				etags[v] = a.etag
			} else if etags[v] != a.etag {
				t.Errorf("%s: ETag %s on one replica, %s on another", v, etags[v], a.etag)
			}
		}
	}
	if n := f.renders(t); n != len(variants) {
		t.Errorf("%d renders across the fleet for %d variants", n, len(variants))
	}

	// A burst: every replica asked at once for one new variant. Whether the
	// requests overlap or not, the lease or the bucket makes it one render.
	before := f.renders(t)
	var wg sync.WaitGroup
	results := make([]answer, len(f.replicas))
	for i, r := range f.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := fetch(r.base + "/photos/rocket.jpg?size=150&format=webp")
			if err != nil {
				a.body = []byte(err.Error())
			}
			results[i] = a
		}()
	}
	wg.Wait()
	for i, a := range results {
		if a.status != 200 {
			t.Errorf("burst, replica %d: %d %s", i, a.status, a.body)
		}
	}
	if n := f.renders(t) - before; n != 1 {
		t.Errorf("a burst across %d replicas rendered %d times, want 1", len(f.replicas), n)
	}
}

// TestFleetSeesReplacedObject: replacing an original changes the ETag of
// its passthrough and of its variants on every replica.
func TestFleetSeesReplacedObject(t *testing.T) {
	f := startFleet(t, 3)
	f.put(t, "a.jpg", "rocket.jpg")
	old := map[string]string{}
	for i, r := range f.replicas {
		for _, q := range []string{"", "?size=64&format=webp"} {
			a := get(t, r.base+"/a.jpg"+q)
			if a.status != 200 {
				t.Fatalf("replica %d %q: %d %s", i, q, a.status, a.body)
			}
			old[strconv.Itoa(i)+q] = a.etag
		}
	}
	f.put(t, "a.jpg", "coffee-progressive.jpg")
	for i, r := range f.replicas {
		for _, q := range []string{"", "?size=64&format=webp"} {
			a := get(t, r.base+"/a.jpg"+q)
			if a.status != 200 || a.etag == old[strconv.Itoa(i)+q] {
				t.Errorf("replica %d %q after the replacement: %d, ETag %s (was %s)", i, q, a.status, a.etag, old[strconv.Itoa(i)+q])
			}
		}
	}
}

// TestFleetNeverServesDamagedResult: a result object damaged in the bucket
// is re-rendered by the replica that finds it, and overwritten.
func TestFleetNeverServesDamagedResult(t *testing.T) {
	f := startFleet(t, 1)
	f.put(t, "a.jpg", "rocket.jpg")
	url := "/a.jpg?size=90&format=png"
	if a := get(t, f.replicas[0].base+url); a.status != 200 || a.cache != "MISS" {
		t.Fatalf("first request: %d %s", a.status, a.cache)
	}
	client := f.minio.Client(t)
	ctx := context.Background()
	var key string
	for obj := range client.ListObjects(ctx, f.bucket, minio.ListObjectsOptions{Prefix: fleetResults, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if !strings.Contains(obj.Key, "lease") {
			key = obj.Key
		}
	}
	if key == "" {
		t.Fatal("no result object in the bucket after a render")
	}
	garbage := bytes.Repeat([]byte{0x5a}, 512)
	f.minio.Put(t, f.bucket, key, garbage)

	fresh := f.start(t) // empty memory: the bucket is its only tier with the variant
	a := get(t, fresh.base+url)
	if a.status != 200 || a.cache != "MISS" {
		t.Fatalf("after the damage: %d %s, want a re-render (MISS)", a.status, a.cache)
	}
	img, err := png.Decode(bytes.NewReader(a.body))
	if err != nil || max(img.Bounds().Dx(), img.Bounds().Dy()) != 90 {
		t.Fatalf("the answer is not the 90 px PNG: %v", err)
	}
	obj, err := client.GetObject(ctx, f.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || bytes.Equal(stored, garbage) {
		t.Errorf("the damaged object was not overwritten (%v)", err)
	}
}
