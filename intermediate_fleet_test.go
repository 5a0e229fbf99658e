package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"image-proxy/internal/testsupport/miniotest"
)

// intermediateFleet is a fleet whose replicas keep a stored intermediate
// of every source over 1 byte and 160 px (the test photos are small), and
// may purge.
func intermediateFleet(t *testing.T, n int, side string) *fleet {
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
// (variants and intermediates alike: every object under the group).
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

// TestFleetIntermediateSameBytesAnyOrder: two replicas sharing the S3
// result tier serve every variant with the same bytes and ETag whatever
// the order the variants came in and whichever replica made the
// intermediate; the intermediate is stored once, beside the results, and
// a purge of the source removes it.
func TestFleetIntermediateSameBytesAnyOrder(t *testing.T) {
	variants := []string{"size=120&format=webp", "size=150&format=jpeg", "width=100&height=100&fit=cover&format=png"}
	serve := func(order []int, replicaOf func(i int) int) (*fleet, map[string]answer) {
		f := intermediateFleet(t, 2, "160")
		f.put(t, "p/rocket.jpg", "rocket.jpg")
		got := map[string]answer{}
		for i, vi := range order {
			a := get(t, f.replicas[replicaOf(i)].base+"/p/rocket.jpg?"+variants[vi])
			if a.status != 200 || a.cache != "MISS" {
				t.Fatalf("%s: %d %s: %s", variants[vi], a.status, a.cache, a.body)
			}
			got[variants[vi]] = a
		}
		return f, got
	}
	f1, first := serve([]int{0, 1, 2}, func(i int) int { return i % 2 })
	_, second := serve([]int{2, 1, 0}, func(i int) int { return (i + 1) % 2 })
	for _, v := range variants {
		// Two uploads are two identities (two ETags); the bytes are one.
		if !bytes.Equal(first[v].body, second[v].body) {
			t.Errorf("%s: other bytes in the other order", v)
		}
		if a := get(t, f1.replicas[1].base+"/p/rocket.jpg?"+v); a.etag != first[v].etag || !bytes.Equal(a.body, first[v].body) {
			t.Errorf("%s: another replica answers ETag %s, other bytes %v", v, a.etag, !bytes.Equal(a.body, first[v].body))
		}
	}
	// One intermediate and three variants under the source's group.
	if n := f1.groupObjects(t, "p/rocket.jpg"); n != len(variants)+1 {
		t.Errorf("%d objects under the source's group, want %d variants and one intermediate", n, len(variants))
	}
	req, _ := http.NewRequest(http.MethodPost, f1.replicas[0].base+"/purge", strings.NewReader(`{"paths":["p/rocket.jpg"]}`))
	req.Header.Set("Authorization", "Bearer purge-secret-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("purge: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := f1.groupObjects(t, "p/rocket.jpg"); n != 0 {
		t.Errorf("%d objects under the source's group after its purge", n)
	}

	// A fleet without the intermediate renders these variants directly:
	// other bytes.
	_, direct := func() (*fleet, map[string]answer) {
		f := intermediateFleet(t, 1, "0")
		f.put(t, "p/rocket.jpg", "rocket.jpg")
		got := map[string]answer{}
		for _, v := range variants {
			got[v] = get(t, f.replicas[0].base+"/p/rocket.jpg?"+v)
		}
		return f, got
	}()
	for _, v := range variants {
		if direct[v].status != 200 || bytes.Equal(direct[v].body, first[v].body) {
			t.Errorf("%s without the intermediate: %d, the same bytes", v, direct[v].status)
		}
	}
}

// TestFleetIntermediateFollowsReplacement: after the original is replaced,
// a new variant is rendered from the new original's intermediate, never
// the old one's: its bytes are those a fleet that never saw the old
// original serves.
func TestFleetIntermediateFollowsReplacement(t *testing.T) {
	f := intermediateFleet(t, 2, "160")
	f.put(t, "a.jpg", "rocket.jpg")
	if a := get(t, f.replicas[0].base+"/a.jpg?size=150&format=webp"); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	f.put(t, "a.jpg", "rocket-exif-orientation-6.jpg")
	after := get(t, f.replicas[1].base+"/a.jpg?size=120&format=webp")

	fresh := intermediateFleet(t, 1, "160")
	fresh.put(t, "a.jpg", "rocket-exif-orientation-6.jpg")
	want := get(t, fresh.replicas[0].base+"/a.jpg?size=120&format=webp")
	if after.status != 200 || !bytes.Equal(after.body, want.body) {
		t.Errorf("after the replacement: %d, the bytes of a fresh fleet: %v", after.status, bytes.Equal(after.body, want.body))
	}
	// Deleted: the variant is gone, whatever intermediate was stored.
	if err := f.minio.Client(t).RemoveObject(context.Background(), f.bucket, "originals/a.jpg", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if a := get(t, f.replicas[0].base+"/a.jpg?size=100&format=webp"); a.status != 404 {
		t.Errorf("a new variant of a deleted original: %d", a.status)
	}
}
