package proxy

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/transform"
)

// decodeServer is a test server of root with a memory and a disk tier in
// dir, keeping decodes (side 0: off) of every source: the test photos are
// small, and rocket.jpg's 100–150 px renders load it at shrink 4.
func decodeServer(t *testing.T, root, dir string, side int) *testServer {
	t.Helper()
	cfg := defaultTestConfig(root)
	tcfg := transform.DefaultConfig()
	tcfg.IntermediateSize, tcfg.IntermediateMinBytes = side, 1
	m := metrics.New(prometheus.NewRegistry(), transform.MemStats)
	log := slog.New(slog.DiscardHandler)
	tiers, err := cache.LocalTiers(cache.Config{Enabled: true, MemorySize: 64 << 20, MaxItemSize: 1 << 20,
		DiskEnabled: true, DiskPath: dir, DiskSize: 1 << 30}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(tiers, m)
	sources, _ := testSources(t, root, c, m)
	e := transform.New(tcfg)
	s, err := New(cfg, Deps{Sources: sources, Engine: e, Cache: c, Metrics: m, Log: log, Decodes: cache.NewStore(tiers)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Drain(context.Background()); err != nil {
			t.Error(err)
		}
		c.Close()
		e.Close()
	})
	return &testServer{Server: s, root: root, m: m}
}

// imageRoot is a copy of the test images: one per test, so every server
// of the test sees the same source identities.
func imageRoot(t *testing.T) string {
	root := t.TempDir()
	copyTree(t, "../data/images", root)
	return root
}

func (ts *testServer) storedDecodes(result string) float64 {
	return testutil.ToFloat64(ts.m.StoredDecodes.WithLabelValues(result))
}

// waitStored waits for the background store of n decodes.
func (ts *testServer) waitStored(t *testing.T, n float64) {
	t.Helper()
	eventually(t, "a decode stored", func() bool { return ts.storedDecodes(metrics.StoredDecodeStored) >= n })
}

// largestFile is the largest file under dir: a decode among variants.
func largestFile(t *testing.T, dir string) (string, int64) {
	t.Helper()
	var path string
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil && info.Size() > size {
			path, size = p, info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return path, size
}

// TestPersistedDecodeOnDisk: a render keeps its decode in the disk tier,
// where it counts in the tier's size; another process over the same disk
// renders a new variant from it, with the bytes and ETag a server
// without persisted decodes answers; a purge of the source removes it.
func TestPersistedDecodeOnDisk(t *testing.T) {
	root, dir := imageRoot(t), t.TempDir()
	first := decodeServer(t, root, dir, 4000)
	// A decode is kept by the second render of the same load
	// (transform/decode's KeepsNow).
	for _, u := range []string{"/rocket.jpg?size=110&format=webp", "/rocket.jpg?size=100&format=webp"} {
		if r, _ := first.get(t, u); r.StatusCode != 200 {
			t.Fatalf("%s: status %d", u, r.StatusCode)
		}
	}
	first.waitStored(t, 1)
	path, size := largestFile(t, dir)
	if size < 160*106*3 {
		t.Fatalf("no decode on disk: the largest file is %s, %d bytes", path, size)
	}
	if used := testutil.ToFloat64(first.m.CacheSizeBytes.WithLabelValues(metrics.TierDisk)); used < float64(size) {
		t.Errorf("the disk tier counts %v bytes, less than the decode's %d", used, size)
	}

	again := decodeServer(t, root, dir, 4000) // a restart: no decode in memory
	off := decodeServer(t, root, t.TempDir(), 0)
	for _, u := range []string{"/rocket.jpg?size=120&format=webp", "/rocket.jpg?width=100&height=100&fit=cover&format=avif"} {
		r, body := again.get(t, u)
		w, want := off.get(t, u)
		if r.StatusCode != 200 || !bytes.Equal(body, want) || r.Header.Get("ETag") != w.Header.Get("ETag") {
			t.Errorf("%s: %d, ETag %s (%s without persisted decodes), same bytes %v", u, r.StatusCode,
				r.Header.Get("ETag"), w.Header.Get("ETag"), bytes.Equal(body, want))
		}
	}
	if again.storedDecodes(metrics.CacheHit) < 1 || again.storedDecodes(metrics.StoredDecodeStored) != 0 {
		t.Errorf("the restarted server read %v kept decodes and stored %v, want some and 0",
			again.storedDecodes(metrics.CacheHit), again.storedDecodes(metrics.StoredDecodeStored))
	}

	again.Purge(context.Background(), "rocket.jpg", metrics.PurgeEvent)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the decode is still on disk after the source's purge: %v", err)
	}
}

// TestDamagedDecodeOnDiskIsAMiss: a kept decode whose file was changed
// on disk (a flipped byte, or cut short) is a miss: the render answers
// 200 with the bytes of a direct render and keeps a good decode again.
func TestDamagedDecodeOnDiskIsAMiss(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func([]byte) []byte
	}{
		{"a flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"cut short", func(b []byte) []byte { return b[:len(b)-100] }},
	} {
		root, dir := imageRoot(t), t.TempDir()
		first := decodeServer(t, root, dir, 4000)
		first.get(t, "/rocket.jpg?size=110&format=webp") // a decode is kept by the second render
		first.get(t, "/rocket.jpg?size=100&format=webp")
		first.waitStored(t, 1)
		path, _ := largestFile(t, dir)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, damage.do(b), 0o644); err != nil {
			t.Fatal(err)
		}
		again := decodeServer(t, root, dir, 4000)
		off := decodeServer(t, root, t.TempDir(), 0)
		r, body := again.get(t, "/rocket.jpg?size=120&format=jpeg")
		_, want := off.get(t, "/rocket.jpg?size=120&format=jpeg")
		if r.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Errorf("%s: %d, the direct render's bytes %v", damage.name, r.StatusCode, bytes.Equal(body, want))
		}
		if again.storedDecodes(metrics.CacheHit) != 0 {
			t.Errorf("%s: the damaged decode was read", damage.name)
		}
		// The second render of that load keeps a good decode in its place.
		if r, body := again.get(t, "/rocket.jpg?size=130&format=jpeg"); r.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("%s: the second render: %d", damage.name, r.StatusCode)
		}
		again.waitStored(t, 1)
	}
}
