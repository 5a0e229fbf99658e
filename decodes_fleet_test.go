package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"image-proxy/internal/testsupport/miniotest"
)

// decodesFleet is a fleet whose replicas keep decodes up to side pixels
// of every source (the test photos are small: rocket.jpg's renders of
// 100–150 px load it at shrink 4, 160×106) in the S3 tier, and may purge.
func decodesFleet(t *testing.T, n int, side string) *fleet {
	t.Helper()
	f := &fleet{minio: miniotest.Start(t)}
	f.bucket = f.minio.Bucket(t, "fleet")
	for range n {
		f.replicas = append(f.replicas, startBinary(t, t.TempDir(),
			"IMAGE_PROXY_ROOT_PATH=/nonexistent-root",
			"IMAGE_PROXY_S3_ENDPOINT="+f.minio.Endpoint, "IMAGE_PROXY_S3_BUCKET="+f.bucket,
			"IMAGE_PROXY_S3_ACCESS_KEY="+f.minio.AccessKey, "IMAGE_PROXY_S3_SECRET_KEY="+f.minio.SecretKey,
			"IMAGE_PROXY_S3_PREFIX=originals/", "IMAGE_PROXY_S3_RESULT_PREFIX="+fleetResults,
			"IMAGE_PROXY_INTERMEDIATE_SIZE="+side, "IMAGE_PROXY_INTERMEDIATE_MIN_SOURCE_BYTES=1",
			"IMAGE_PROXY_PURGE_TOKEN=purge-secret-0123456789"))
	}
	return f
}

// groupObjects counts the stored results of rel's group in the bucket
// (variants and decodes alike: every object under the group).
func (f *fleet) groupObjects(t *testing.T, rel string) int {
	t.Helper()
	sum := sha256.Sum256([]byte(rel))
	g := hex.EncodeToString(sum[:8])
	prefix := fleetResults + g[0:2] + "/" + g[2:4] + "/" + g + "-"
	n := 0
	for o := range f.minio.Client(t).ListObjects(context.Background(), f.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}

// storedDecodes is replica r's count of persisted decodes with result.
func storedDecodes(t *testing.T, r *binaryProcess, result string) float64 {
	t.Helper()
	return metricSum(t, scrape(r.base), "image_proxy_stored_decodes_total", `result="`+result+`"`)
}

// waitStored waits until replica r has stored n decodes (in the
// background, after its render answered).
func waitStored(t *testing.T, r *binaryProcess, n float64) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for storedDecodes(t, r, "stored") < n {
		if time.Now().After(deadline) {
			t.Fatalf("no decode stored after %v", hangGuard)
		}
		time.Sleep(10 * time.Millisecond) // the next look at the metric
	}
}

var fleetVariants = []string{"size=120&format=webp", "size=150&format=jpeg", "width=100&height=100&fit=cover&format=png"}

// TestFleetPersistedDecodeSameBytesAnyOrder: two replicas sharing the S3
// result tier serve every variant with the same bytes and ETag whether
// it was rendered from a persisted decode or decoded, whatever the order
// the variants came in and whichever replica decoded; the decode is
// stored once, beside the results, and a purge of the source removes it.
// A fleet with persisted decodes off serves the same bytes.
func TestFleetPersistedDecodeSameBytesAnyOrder(t *testing.T) {
	serve := func(side string, order []int) (*fleet, map[string]answer) {
		f := decodesFleet(t, 2, side)
		f.put(t, "p/rocket.jpg", "rocket.jpg")
		got := map[string]answer{}
		for i, vi := range order {
			// The first replica renders two variants: a decode is kept
			// by the second render of a load. The second replica reads that decode.
			r := f.replicas[i/2]
			a := get(t, r.base+"/p/rocket.jpg?"+fleetVariants[vi])
			if a.status != 200 || a.cache != "MISS" {
				t.Fatalf("%s: %d %s: %s", fleetVariants[vi], a.status, a.cache, a.body)
			}
			if i == 1 && side != "0" {
				waitStored(t, r, 1)
			}
			got[fleetVariants[vi]] = a
		}
		return f, got
	}
	f1, first := serve("160", []int{0, 1, 2})
	if storedDecodes(t, f1.replicas[1], "hit") < 1 || storedDecodes(t, f1.replicas[1], "stored") != 0 {
		t.Error("the second replica did not render from the first one's decode")
	}
	_, second := serve("160", []int{2, 1, 0})
	_, off := serve("0", []int{1, 0, 2})
	for _, v := range fleetVariants {
		// Two uploads are two identities (two ETags); the bytes are one.
		if !bytes.Equal(first[v].body, second[v].body) || !bytes.Equal(first[v].body, off[v].body) {
			t.Errorf("%s: other bytes in the other order, or without persisted decodes", v)
		}
		if a := get(t, f1.replicas[1].base+"/p/rocket.jpg?"+v); a.etag != first[v].etag || !bytes.Equal(a.body, first[v].body) {
			t.Errorf("%s: another replica answers ETag %s, other bytes %v", v, a.etag, !bytes.Equal(a.body, first[v].body))
		}
	}
	// One decode (the three variants load alike) and three variants.
	if n := f1.groupObjects(t, "p/rocket.jpg"); n != len(fleetVariants)+1 {
		t.Errorf("%d objects under the source's group, want %d variants and one decode", n, len(fleetVariants))
	}
	purge(t, f1.replicas[0], "p/rocket.jpg")
	if n := f1.groupObjects(t, "p/rocket.jpg"); n != 0 {
		t.Errorf("%d objects under the source's group after its purge", n)
	}
	// Rendered again with no decode kept anywhere: the same URL, the
	// same ETag and bytes as from the persisted decode before.
	for _, v := range fleetVariants[1:] {
		if a := get(t, f1.replicas[0].base+"/p/rocket.jpg?"+v); a.cache != "MISS" || a.etag != first[v].etag || !bytes.Equal(a.body, first[v].body) {
			t.Errorf("%s after the purge: %s, ETag %s (was %s), same bytes %v", v, a.cache, a.etag, first[v].etag, bytes.Equal(a.body, first[v].body))
		}
	}
}

func purge(t *testing.T, r *binaryProcess, rel string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.base+"/purge", strings.NewReader(`{"paths":["`+rel+`"]}`))
	req.Header.Set("Authorization", "Bearer purge-secret-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("purge: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestFleetPersistedDecodeFollowsReplacement: after the original is
// replaced, a new variant is rendered from the new original, never the
// old one's decode: its bytes are those a fleet that never saw the old
// original serves.
func TestFleetPersistedDecodeFollowsReplacement(t *testing.T) {
	f := decodesFleet(t, 2, "160")
	f.put(t, "a.jpg", "rocket.jpg")
	for _, q := range []string{"size=140&format=webp", "size=150&format=webp"} { // kept by the second render
		if a := get(t, f.replicas[0].base+"/a.jpg?"+q); a.status != 200 {
			t.Fatalf("%s: %d %s", q, a.status, a.body)
		}
	}
	waitStored(t, f.replicas[0], 1)
	f.put(t, "a.jpg", "rocket-exif-orientation-6.jpg")
	after := get(t, f.replicas[1].base+"/a.jpg?size=120&format=webp")

	fresh := decodesFleet(t, 1, "160")
	fresh.put(t, "a.jpg", "rocket-exif-orientation-6.jpg")
	want := get(t, fresh.replicas[0].base+"/a.jpg?size=120&format=webp")
	if after.status != 200 || !bytes.Equal(after.body, want.body) {
		t.Errorf("after the replacement: %d, the bytes of a fresh fleet: %v", after.status, bytes.Equal(after.body, want.body))
	}
	if h := storedDecodes(t, f.replicas[1], "hit"); h != 0 {
		t.Errorf("the replaced source's render found %v kept decodes", h)
	}
	// Deleted: the variant is gone, whatever decode was stored.
	if err := f.minio.Client(t).RemoveObject(context.Background(), f.bucket, "originals/a.jpg", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if a := get(t, f.replicas[0].base+"/a.jpg?size=100&format=webp"); a.status != 404 {
		t.Errorf("a new variant of a deleted original: %d", a.status)
	}
}
