package proxy

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"image-proxy/cache"
	"image-proxy/transform"
)

// Test-only options of the local source.
func withMaxWatches(n int) LocalOption { return func(o *localOptions) { o.maxWatches = n } }
func withClock(now func() time.Time) LocalOption {
	return func(o *localOptions) { o.now = now }
}
func withFSMagic(magic int64) LocalOption {
	return func(o *localOptions) { o.fsMagic = func(string) (int64, error) { return magic, nil } }
}

// waitUntrusted waits until the stat cache has processed an event that
// invalidates rel: from then on, no request may be answered from what was
// known before.
func (ts *testServer) waitUntrusted(t testing.TB, rel string) {
	t.Helper()
	if ts.local.meta == nil {
		return
	}
	eventually(t, "stat cache invalidates "+rel, func() bool { return !ts.local.meta.trusted(rel) })
}

// statted returns the number of stat calls the request for target made.
func (ts *testServer) statted(t testing.TB, target string) (int64, string, int) {
	t.Helper()
	before := ts.local.stats.Load()
	resp, _ := ts.get(t, target)
	return ts.local.stats.Load() - before, resp.Header.Get("ETag"), resp.StatusCode
}

const servedRel = "a/b/photo.jpg"
const servedURL = "/" + servedRel + "?size=50&format=webp"

// changes are the ways a served original changes on disk; each leaves
// different bytes or a different identity at servedRel, or nothing (404).
var changes = []struct {
	name   string
	status int
	change func(t *testing.T, root string)
}{
	{"edited in place", 200, func(t *testing.T, root string) {
		must(t, os.WriteFile(filepath.Join(root, servedRel), readFixture(t, root, "hubble_deep_field.jpg"), 0o644))
	}},
	{"replaced by rename, same size and mtime", 200, func(t *testing.T, root string) {
		p := filepath.Join(root, servedRel)
		fi, err := os.Stat(p)
		must(t, err)
		b := readFixture(t, root, "coffee-progressive.jpg")
		b = append(b, make([]byte, max(0, int(fi.Size())-len(b)))...)[:fi.Size()]
		must(t, os.WriteFile(p+".tmp", b, 0o644))
		must(t, os.Chtimes(p+".tmp", fi.ModTime(), fi.ModTime()))
		must(t, os.Rename(p+".tmp", p))
	}},
	{"touched", 200, func(t *testing.T, root string) {
		later := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		must(t, os.Chtimes(filepath.Join(root, servedRel), later, later))
	}},
	{"deleted", 404, func(t *testing.T, root string) {
		must(t, os.Remove(filepath.Join(root, servedRel)))
	}},
	{"renamed away and recreated", 200, func(t *testing.T, root string) {
		p := filepath.Join(root, servedRel)
		must(t, os.Rename(p, p+".old"))
		must(t, os.WriteFile(p, readFixture(t, root, "hubble_deep_field.jpg"), 0o644))
	}},
	{"ancestor directory swapped", 200, func(t *testing.T, root string) {
		must(t, os.Rename(filepath.Join(root, "a"), filepath.Join(root, "a.old")))
		must(t, os.MkdirAll(filepath.Join(root, "a", "b"), 0o755))
		must(t, os.WriteFile(filepath.Join(root, servedRel), readFixture(t, root, "hubble_deep_field.jpg"), 0o644))
	}},
}

func readFixture(t *testing.T, root, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	must(t, err)
	return b
}

// serveNested puts rocket.jpg at servedRel and returns the first ETag.
func serveNested(t *testing.T, ts *testServer) string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(ts.root, "a", "b"), 0o755))
	must(t, os.WriteFile(filepath.Join(ts.root, servedRel), readFixture(t, ts.root, "rocket.jpg"), 0o644))
	resp, _ := ts.get(t, servedURL)
	if resp.StatusCode != 200 {
		t.Fatalf("first request: status %d", resp.StatusCode)
	}
	return resp.Header.Get("ETag")
}

// TestStatCacheHitMakesNoStat: with watches, the first request stats and
// every later one is answered from memory, stat and all.
func TestStatCacheHitMakesNoStat(t *testing.T) {
	ts := newTestServer(t, nil)
	first := serveNested(t, ts)
	for i := range 3 {
		n, etag, status := ts.statted(t, servedURL)
		if n != 0 || etag != first || status != 200 {
			t.Fatalf("hit %d: %d stat calls, ETag %s (first %s), status %d", i, n, etag, first, status)
		}
	}
	if !ts.local.meta.trusted(servedRel) {
		t.Fatal("entry not trusted after hits")
	}
	hits := testutil.ToFloat64(ts.m.StatCacheLookups.WithLabelValues("hit"))
	stats := testutil.ToFloat64(ts.m.StatCacheLookups.WithLabelValues("stat"))
	watched := testutil.ToFloat64(ts.m.StatCacheWatches)
	if hits != 3 || stats != 1 || watched != 3 { // the root, a and a/b
		t.Errorf("metrics: %v hits, %v stats, %v watched directories; want 3, 1, 3", hits, stats, watched)
	}
}

// TestStatCacheSeesChanges: with watches, once the change's event is
// processed the very next request has the new identity (or 404); and a
// client polling sees it within the deadline without any help.
func TestStatCacheSeesChanges(t *testing.T) {
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			first := serveNested(t, ts)
			if n, _, _ := ts.statted(t, servedURL); n != 0 || !ts.local.meta.trusted(servedRel) {
				t.Fatalf("not cached before the change: %d stat calls", n)
			}
			c.change(t, ts.root)
			ts.waitUntrusted(t, servedRel)
			n, etag, status := ts.statted(t, servedURL)
			if status != c.status || (status == 200 && etag == first) || n == 0 {
				t.Fatalf("after the event: status %d (want %d), ETag %s (before %s), %d stat calls", status, c.status, etag, first, n)
			}
		})
		t.Run(c.name+", polled", func(t *testing.T) {
			ts := newTestServer(t, nil)
			first := serveNested(t, ts)
			c.change(t, ts.root)
			eventually(t, "a request sees the change", func() bool {
				resp, _ := ts.get(t, servedURL)
				return resp.StatusCode == c.status && (c.status != 200 || resp.Header.Get("ETag") != first)
			})
		})
	}
}

// TestStatCacheWithoutWatches: out of watches, on a network or FUSE file
// system, or with the cache off, every request stats and sees a change at
// once, with no event to wait for.
func TestStatCacheWithoutWatches(t *testing.T) {
	modes := []struct {
		name string
		edit func(*Config, *cache.Config, *transform.Config)
		opts []LocalOption
	}{
		{"watch limit reached", nil, []LocalOption{withMaxWatches(0)}},
		{"watch limit reached below the root", nil, []LocalOption{withMaxWatches(2)}},
		{"nfs", nil, []LocalOption{withFSMagic(unix.NFS_SUPER_MAGIC)}},
		{"fuse", nil, []LocalOption{withFSMagic(unix.FUSE_SUPER_MAGIC)}},
		{"cache off", func(c *Config, _ *cache.Config, _ *transform.Config) { c.StatCacheMaxAge = 0 }, nil},
	}
	for _, m := range modes {
		for _, c := range changes {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				ts := newTestServerWith(t, m.edit, m.opts...)
				first := serveNested(t, ts)
				if n, etag, _ := ts.statted(t, servedURL); n != 1 || etag != first {
					t.Fatalf("hit: %d stat calls (want 1), ETag %s (first %s)", n, etag, first)
				}
				if hits := testutil.ToFloat64(ts.m.StatCacheLookups.WithLabelValues("hit")); hits != 0 {
					t.Fatalf("%v stat cache hits counted", hits)
				}
				if meta := ts.local.meta; meta != nil {
					// Deciding that a directory cannot be watched costs
					// probes once, not on every request.
					before := meta.probes.Load()
					ts.statted(t, servedURL)
					if n := meta.probes.Load() - before; n != 0 {
						t.Fatalf("%d lstat/statfs probes on a repeated request", n)
					}
				}
				c.change(t, ts.root)
				n, etag, status := ts.statted(t, servedURL)
				if status != c.status || (status == 200 && etag == first) || n == 0 {
					t.Fatalf("next request: status %d (want %d), ETag %s (before %s), %d stat calls", status, c.status, etag, first, n)
				}
			})
		}
	}
}

// TestStatCacheMaxAge: an entry older than the setting is stat'ed again,
// even with no event (what inotify cannot see).
func TestStatCacheMaxAge(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := newTestServerWith(t, func(c *Config, _ *cache.Config, _ *transform.Config) { c.StatCacheMaxAge = time.Minute }, withClock(clock))
	serveNested(t, ts)
	for _, step := range []struct {
		advance time.Duration
		stats   int64
	}{{59 * time.Second, 0}, {time.Second, 1}, {0, 0}} {
		mu.Lock()
		now = now.Add(step.advance)
		mu.Unlock()
		if n, _, _ := ts.statted(t, servedURL); n != step.stats {
			t.Fatalf("after +%v: %d stat calls, want %d", step.advance, n, step.stats)
		}
	}
}

// TestStatCacheSymlinks: a symlinked file, or a file under a symlinked
// directory, is stat'ed on every request (its changes are reported under
// the target's path), so a change of the target is seen at once.
func TestStatCacheSymlinks(t *testing.T) {
	for _, c := range []struct{ link, target, url, file string }{
		{"link.jpg", "a/b/photo.jpg", "/link.jpg?size=50", servedRel},
		{"alias", "a", "/alias/b/photo.jpg?size=50", servedRel},
	} {
		t.Run(c.link, func(t *testing.T) {
			ts := newTestServer(t, nil)
			serveNested(t, ts)                                            // the real directory is watched first
			must(t, os.Symlink(c.target, filepath.Join(ts.root, c.link))) // relative: os.Root refuses absolute links
			_, first, status := ts.statted(t, c.url)
			if status != 200 {
				t.Fatalf("status %d", status)
			}
			if n, _, _ := ts.statted(t, c.url); n == 0 {
				t.Fatal("a hit through a symlink made no stat call")
			}
			must(t, os.WriteFile(filepath.Join(ts.root, c.file), readFixture(t, ts.root, "hubble_deep_field.jpg"), 0o644))
			if _, etag, _ := ts.statted(t, c.url); etag == first {
				t.Fatal("served stale through the symlink")
			}
		})
	}
}

// TestStatCacheWatchErrorForgetsAll: a watch error (an event queue
// overflow loses events) distrusts every entry and drops every watch.
func TestStatCacheWatchErrorForgetsAll(t *testing.T) {
	ts := newTestServer(t, nil)
	serveNested(t, ts)
	if !ts.local.meta.trusted(servedRel) {
		t.Fatal("not cached")
	}
	ts.local.meta.reset()
	if ts.local.meta.trusted(servedRel) {
		t.Fatal("still trusted after a watch error")
	}
	if n, _, _ := ts.statted(t, servedURL); n != 1 {
		t.Fatalf("%d stat calls after the reset, want 1", n)
	}
	if n, _, _ := ts.statted(t, servedURL); n != 0 {
		t.Fatalf("%d stat calls once watched again, want 0", n)
	}
}

func TestRemoteFS(t *testing.T) {
	for _, c := range []struct {
		magic  int64
		remote bool
	}{
		{unix.NFS_SUPER_MAGIC, true}, {unix.CIFS_SUPER_MAGIC, true}, {unix.SMB2_SUPER_MAGIC, true},
		{unix.SMB_SUPER_MAGIC, true}, {unix.FUSE_SUPER_MAGIC, true}, {unix.V9FS_MAGIC, true},
		{unix.CEPH_SUPER_MAGIC, true}, {gfs2Magic, true}, {lustreMagic, true},
		{unix.EXT4_SUPER_MAGIC, false}, {unix.XFS_SUPER_MAGIC, false}, {unix.TMPFS_MAGIC, false},
		{unix.BTRFS_SUPER_MAGIC, false}, {unix.OVERLAYFS_SUPER_MAGIC, false},
	} {
		if got := remoteFS(c.magic) != ""; got != c.remote {
			t.Errorf("magic %#x: remote %t, want %t", c.magic, got, c.remote)
		}
	}
}

// TestStatCacheMissingFiles: a 404 is never cached and never leaves a
// watch on a directory that does not exist.
func TestStatCacheMissingFiles(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, target := range []string{"/nope.jpg?size=10", "/no/such/dir/x.jpg?size=10"} {
		if _, _, status := ts.statted(t, target); status != 404 {
			t.Fatalf("%s: status %d", target, status)
		}
	}
	must(t, os.WriteFile(filepath.Join(ts.root, "nope.jpg"), readFixture(t, ts.root, "rocket.jpg"), 0o644))
	if _, _, status := ts.statted(t, "/nope.jpg?size=10"); status != 200 {
		t.Fatalf("created file: status %d", status)
	}
	ts.local.meta.mu.Lock()
	defer ts.local.meta.mu.Unlock()
	for p := range ts.local.meta.dirs {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			t.Errorf("watch entry for a missing directory %s", p)
		}
	}
}
