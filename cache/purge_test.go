package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"image-proxy/internal/testsupport/miniotest"
)

// TestSourceKeyLayout pins where a source's results are filed: the
// operator's `printf '%s' photos/cat.jpg | sha256sum | cut -c1-16` is the
// group, and every entry of the source starts with it.
func TestSourceKeyLayout(t *testing.T) {
	const group = "9c4712116d1c1877" // printf '%s' photos/cat.jpg | sha256sum | cut -c1-16
	if g := SourceGroup("photos/cat.jpg"); g != group {
		t.Fatalf("SourceGroup = %s, want %s", g, group)
	}
	key := SourceKey("photos/cat.jpg", "v1|file:photos/cat.jpg|1|2|3|4|400|webp|auto|e")
	if want := group + "/v1|file:photos/cat.jpg|1|2|3|4|400|webp|auto|e"; key != want {
		t.Fatalf("SourceKey = %q, want %q", key, want)
	}
	name := entryName(key)
	if len(name) != 81 || !strings.HasPrefix(name, group+"-") || groupOf(key) != group {
		t.Errorf("entry name %q: want the group, '-', then 64 hex", name)
	}
	for _, k := range []string{"k", "v1|x", "0123456789abcdeX/v1", "0123456789ABCDEF/v1", "0123456789abcdef"} {
		if g := groupOf(k); g != "" {
			t.Errorf("groupOf(%q) = %q: not a SourceKey", k, g)
		}
		if n := entryName(k); len(n) != 64 {
			t.Errorf("entryName(%q) = %q: keys without a group keep the old layout", k, n)
		}
	}
}

// TestPurgeEveryTier purges one source from memory, disk and S3, and
// leaves another source's results and ungrouped keys alone.
func TestPurgeEveryTier(t *testing.T) {
	srv := miniotest.Start(t)
	e := &s3Env{srv: srv, client: srv.Client(t)}
	bucket := e.bucket(t)
	dir := t.TempDir()
	r := newReplica(t, replicaOpts{client: e.client, bucket: bucket, diskDir: dir})
	var cat, dog []string
	for i := range 3 {
		cat = append(cat, SourceKey("photos/cat.jpg", fmt.Sprintf("v1|cat|%d", i)))
	}
	for i := range 2 {
		dog = append(dog, SourceKey("photos/dog.jpg", fmt.Sprintf("v1|dog|%d", i)))
	}
	all := append(append(append([]string{}, cat...), dog...), "ungrouped")
	for _, k := range all {
		if st := r.fetch(t, k, []byte("value of "+k)); st != StatusMiss {
			t.Fatalf("%s: %s", k, st)
		}
	}
	got := r.c.Purge(context.Background(), "photos/cat.jpg")
	want := []Purged{{Tier: "memory", Removed: 3}, {Tier: "disk", Removed: 3}, {Tier: "s3", Removed: 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Purge = %v, want %v", got, want)
	}
	// Nothing of cat.jpg is left in the bucket or on disk.
	prefix := "results/" + SourceGroup("photos/cat.jpg")[:2] + "/"
	for o := range e.client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if strings.Contains(o.Key, SourceGroup("photos/cat.jpg")) {
			t.Errorf("object %s left", o.Key)
		}
	}
	g := SourceGroup("photos/cat.jpg")
	if names, _ := filepath.Glob(filepath.Join(dir, g[:2], g[2:4], g+"-*")); len(names) != 0 {
		t.Errorf("disk entries left: %v", names)
	}
	for _, k := range cat {
		if st := r.fetch(t, k, []byte("new")); st != StatusMiss {
			t.Errorf("%s after the purge: %s, want a render", k, st)
		}
	}
	for _, k := range append(dog, "ungrouped") {
		if st := r.fetch(t, k, []byte("value of "+k)); st != hitMemory {
			t.Errorf("%s after another source's purge: %s, want a memory hit", k, st)
		}
	}
	// A second purge of a source with nothing stored removes nothing.
	if got := r.c.Purge(context.Background(), "photos/none.jpg"); fmt.Sprint(got) != fmt.Sprint([]Purged{{"memory", 0, nil}, {"disk", 0, nil}, {"s3", 0, nil}}) {
		t.Errorf("purge of nothing: %v", got)
	}
}

// TestDiskPurgeAfterRestart purges entries an earlier process stored,
// which the new one has not indexed or read yet.
func TestDiskPurgeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	first := newDiskTier(dir, 1<<20, nil, nil, time.Now)
	ctx := context.Background()
	first.Set(ctx, SourceKey("a.jpg", "v1|1"), []byte("one"))
	first.Set(ctx, SourceKey("a.jpg", "v1|2"), []byte("two"))
	first.Set(ctx, SourceKey("b.jpg", "v1|1"), []byte("three"))
	first.Close()
	second := newDiskTier(dir, 1<<20, nil, nil, time.Now)
	defer second.Close()
	<-second.rebuilt
	n, err := second.Purge(ctx, SourceGroup("a.jpg"))
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	if _, ok := second.Get(ctx, SourceKey("a.jpg", "v1|1")); ok {
		t.Error("a purged entry is still served")
	}
	if v, ok := second.Get(ctx, SourceKey("b.jpg", "v1|1")); !ok || string(v) != "three" {
		t.Error("another source's entry is gone")
	}
	second.mu.Lock()
	defer second.mu.Unlock()
	if second.lru.Len() != 1 || second.bytes == 0 {
		t.Errorf("index holds %d entries (%d bytes) after the purge, want b.jpg's alone", second.lru.Len(), second.bytes)
	}
	if _, err := os.Stat(filepath.Join(dir, tempDirName)); err != nil {
		t.Error(err)
	}
}

// TestMemoryPurgeIndexIsBounded: the per-source index of the memory tier
// does not grow with keys the cache has evicted.
func TestMemoryPurgeIndexIsBounded(t *testing.T) {
	tier, err := NewMemoryTier(64<<10, 64<<10, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	mem := tier.(*memoryTier)
	ctx := context.Background()
	val := make([]byte, 1024)
	for i := range 20_000 {
		mem.Set(ctx, SourceKey(fmt.Sprintf("p/%d.jpg", i%500), fmt.Sprintf("v1|%d", i)), val)
	}
	mem.mu.Lock()
	indexed := mem.indexed
	mem.mu.Unlock()
	// The cache holds about 64 entries of 1 KB; the index sweeps at twice
	// what it holds plus 1024.
	if indexed > 2*200+1024+1 {
		t.Errorf("index holds %d keys for a cache of ~64 entries", indexed)
	}
}
