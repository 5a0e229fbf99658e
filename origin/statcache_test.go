package origin

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"image-proxy/metrics"
)

// Test-only options of the local source.
func withMaxWatches(n int) LocalOption { return func(o *localOptions) { o.maxWatches = n } }
func withClock(now func() time.Time) LocalOption {
	return func(o *localOptions) { o.now = now }
}
func withFSMagic(magic int64) LocalOption {
	return func(o *localOptions) { o.sys.fsMagic = func(string) (int64, error) { return magic, nil } }
}

// sysCounter counts the system calls the local source makes: stats of
// files, and probes (a directory's stat, its file system type) deciding
// on a watch.
type sysCounter struct{ stats, probes atomic.Int64 }

// withCounter wraps the calls the options before it left in place.
func withCounter(n *sysCounter) LocalOption {
	return func(o *localOptions) {
		sys := o.sys
		count := func(f func(string) (fs.FileInfo, error)) func(string) (fs.FileInfo, error) {
			return func(name string) (fs.FileInfo, error) { n.stats.Add(1); return f(name) }
		}
		o.sys.stat, o.sys.lstat = count(sys.stat), count(sys.lstat)
		o.sys.statDir = func(p string, follow bool) (unix.Stat_t, error) { n.probes.Add(1); return sys.statDir(p, follow) }
		o.sys.fsMagic = func(dir string) (int64, error) { n.probes.Add(1); return sys.fsMagic(dir) }
	}
}

// localFixture is a Local over an empty temporary root with its stat
// cache, a fresh metrics registry and its system calls counted.
type localFixture struct {
	root  string
	local *Local
	m     *metrics.Metrics
	calls *sysCounter
}

// newLocalFixture opens a root whose stat cache keeps entries for maxAge
// (0: off); 24h means only events invalidate (TestStatCacheMaxAge covers
// the age).
func newLocalFixture(t *testing.T, maxAge time.Duration, opts ...LocalOption) *localFixture {
	t.Helper()
	f := &localFixture{root: t.TempDir(), m: metrics.New(prometheus.NewRegistry(), nil), calls: &sysCounter{}}
	opts = append([]LocalOption{WithStatCache(maxAge, nil, f.m)}, opts...)
	l, err := OpenLocal(f.root, append(opts, withCounter(f.calls))...)
	must(t, err)
	t.Cleanup(func() { l.Close() })
	f.local = l
	return f
}

// trusted reports whether a Stat of rel would be answered without a stat.
func (c *statCache) trusted(rel string) bool {
	_, ok := c.lookup(rel)
	return ok
}

// waitUntrusted waits until the stat cache has processed an event that
// invalidates rel: from then on, no Stat may be answered from what was
// known before.
func (f *localFixture) waitUntrusted(t testing.TB, rel string) {
	t.Helper()
	if f.local.meta == nil {
		return
	}
	eventually(t, "stat cache invalidates "+rel, func() bool { return !f.local.meta.trusted(rel) })
}

// statted describes rel as a request would, and returns the number of
// stat calls that made, the identity (which keys and ETags derive from)
// and the error.
func (f *localFixture) statted(t testing.TB, rel string) (int64, string, error) {
	t.Helper()
	before := f.calls.stats.Load()
	o, err := f.local.Stat(context.Background(), rel)
	return f.calls.stats.Load() - before, o.Identity, err
}

// found is what a change leaves at servedRel: an original (true) or
// nothing, so the chain asks the next source and answers 404 (false).
func found(err error) (bool, bool) {
	switch {
	case err == nil:
		return true, true
	case errors.Is(err, ErrMissing):
		return false, true
	}
	return false, false // any other error is a failure of its own
}

const servedRel = "a/b/photo.jpg"

// changes are the ways a served original changes on disk; each leaves
// different bytes or a different identity at servedRel, or nothing.
var changes = []struct {
	name   string
	exists bool
	change func(t *testing.T, root string)
}{
	{"edited in place", true, func(t *testing.T, root string) {
		must(t, os.WriteFile(filepath.Join(root, servedRel), readImage(t, "hubble_deep_field.jpg"), 0o644))
	}},
	{"replaced by rename, same size and mtime", true, func(t *testing.T, root string) {
		p := filepath.Join(root, servedRel)
		fi, err := os.Stat(p)
		must(t, err)
		b := readImage(t, "coffee-progressive.jpg")
		b = append(b, make([]byte, max(0, int(fi.Size())-len(b)))...)[:fi.Size()]
		must(t, os.WriteFile(p+".tmp", b, 0o644))
		must(t, os.Chtimes(p+".tmp", fi.ModTime(), fi.ModTime()))
		must(t, os.Rename(p+".tmp", p))
	}},
	{"touched", true, func(t *testing.T, root string) {
		later := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		must(t, os.Chtimes(filepath.Join(root, servedRel), later, later))
	}},
	{"deleted", false, func(t *testing.T, root string) {
		must(t, os.Remove(filepath.Join(root, servedRel)))
	}},
	{"renamed away and recreated", true, func(t *testing.T, root string) {
		p := filepath.Join(root, servedRel)
		must(t, os.Rename(p, p+".old"))
		must(t, os.WriteFile(p, readImage(t, "hubble_deep_field.jpg"), 0o644))
	}},
	{"ancestor directory swapped", true, func(t *testing.T, root string) {
		must(t, os.Rename(filepath.Join(root, "a"), filepath.Join(root, "a.old")))
		must(t, os.MkdirAll(filepath.Join(root, "a", "b"), 0o755))
		must(t, os.WriteFile(filepath.Join(root, servedRel), readImage(t, "hubble_deep_field.jpg"), 0o644))
	}},
}

// serveNested puts rocket.jpg at servedRel and returns its first identity.
func serveNested(t *testing.T, f *localFixture) string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(f.root, "a", "b"), 0o755))
	must(t, os.WriteFile(filepath.Join(f.root, servedRel), readImage(t, "rocket.jpg"), 0o644))
	_, id, err := f.statted(t, servedRel)
	if err != nil {
		t.Fatalf("first Stat: %v", err)
	}
	return id
}

// seesChange reports whether a description (id, err) of servedRel is the
// changed file's: the expected presence and, when there, a new identity.
func seesChange(exists bool, first, id string, err error) bool {
	there, ok := found(err)
	return ok && there == exists && (!exists || id != first)
}

// TestStatCacheHitMakesNoStat: with watches, the first Stat stats and
// every later one is answered from memory, stat and all.
func TestStatCacheHitMakesNoStat(t *testing.T) {
	f := newLocalFixture(t, 24*time.Hour)
	first := serveNested(t, f)
	for i := range 3 {
		n, id, err := f.statted(t, servedRel)
		if n != 0 || id != first || err != nil {
			t.Fatalf("hit %d: %d stat calls, identity %s (first %s), %v", i, n, id, first, err)
		}
	}
	if !f.local.meta.trusted(servedRel) {
		t.Fatal("entry not trusted after hits")
	}
	hits := testutil.ToFloat64(f.m.StatCacheLookups.WithLabelValues("hit"))
	stats := testutil.ToFloat64(f.m.StatCacheLookups.WithLabelValues("stat"))
	watched := testutil.ToFloat64(f.m.StatCacheWatches)
	if hits != 3 || stats != 1 || watched != 3 { // the root, a and a/b
		t.Errorf("metrics: %v hits, %v stats, %v watched directories; want 3, 1, 3", hits, stats, watched)
	}
}

// TestStatCacheSeesChanges: with watches, once the change's event is
// processed the very next Stat has the new identity (or nothing); and a
// caller polling sees it within the deadline without any help.
func TestStatCacheSeesChanges(t *testing.T) {
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			f := newLocalFixture(t, 24*time.Hour)
			first := serveNested(t, f)
			if n, _, _ := f.statted(t, servedRel); n != 0 || !f.local.meta.trusted(servedRel) {
				t.Fatalf("not cached before the change: %d stat calls", n)
			}
			c.change(t, f.root)
			f.waitUntrusted(t, servedRel)
			n, id, err := f.statted(t, servedRel)
			if !seesChange(c.exists, first, id, err) || n == 0 {
				t.Fatalf("after the event: identity %s (before %s), %v (want found=%t), %d stat calls", id, first, err, c.exists, n)
			}
		})
		t.Run(c.name+", polled", func(t *testing.T) {
			f := newLocalFixture(t, 24*time.Hour)
			first := serveNested(t, f)
			c.change(t, f.root)
			eventually(t, "a Stat sees the change", func() bool {
				_, id, err := f.statted(t, servedRel)
				return seesChange(c.exists, first, id, err)
			})
		})
	}
}

// TestStatCacheWithoutWatches: out of watches, on a network or FUSE file
// system, or with the cache off, every Stat stats and sees a change at
// once, with no event to wait for.
func TestStatCacheWithoutWatches(t *testing.T) {
	modes := []struct {
		name   string
		maxAge time.Duration
		opts   []LocalOption
	}{
		{"watch limit reached", 24 * time.Hour, []LocalOption{withMaxWatches(0)}},
		{"watch limit reached below the root", 24 * time.Hour, []LocalOption{withMaxWatches(2)}},
		{"nfs", 24 * time.Hour, []LocalOption{withFSMagic(unix.NFS_SUPER_MAGIC)}},
		{"fuse", 24 * time.Hour, []LocalOption{withFSMagic(unix.FUSE_SUPER_MAGIC)}},
		{"cache off", 0, nil},
	}
	for _, m := range modes {
		for _, c := range changes {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				f := newLocalFixture(t, m.maxAge, m.opts...)
				first := serveNested(t, f)
				if n, id, _ := f.statted(t, servedRel); n != 1 || id != first {
					t.Fatalf("hit: %d stat calls (want 1), identity %s (first %s)", n, id, first)
				}
				if hits := testutil.ToFloat64(f.m.StatCacheLookups.WithLabelValues("hit")); hits != 0 {
					t.Fatalf("%v stat cache hits counted", hits)
				}
				if f.local.meta != nil {
					// Deciding that a directory cannot be watched costs
					// probes once, not on every Stat.
					before := f.calls.probes.Load()
					f.statted(t, servedRel)
					if n := f.calls.probes.Load() - before; n != 0 {
						t.Fatalf("%d lstat/statfs probes on a repeated Stat", n)
					}
				}
				c.change(t, f.root)
				n, id, err := f.statted(t, servedRel)
				if !seesChange(c.exists, first, id, err) || n == 0 {
					t.Fatalf("next Stat: identity %s (before %s), %v (want found=%t), %d stat calls", id, first, err, c.exists, n)
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
	f := newLocalFixture(t, time.Minute, withClock(clock))
	serveNested(t, f)
	for _, step := range []struct {
		advance time.Duration
		stats   int64
	}{{59 * time.Second, 0}, {time.Second, 1}, {0, 0}} {
		mu.Lock()
		now = now.Add(step.advance)
		mu.Unlock()
		if n, _, _ := f.statted(t, servedRel); n != step.stats {
			t.Fatalf("after +%v: %d stat calls, want %d", step.advance, n, step.stats)
		}
	}
}

// TestStatCacheSymlinks: a symlinked file, or a file under a symlinked
// directory, is stat'ed on every Stat (its changes are reported under the
// target's path), so a change of the target is seen at once.
func TestStatCacheSymlinks(t *testing.T) {
	for _, c := range []struct{ link, target, rel string }{
		{"link.jpg", "a/b/photo.jpg", "link.jpg"},
		{"alias", "a", "alias/b/photo.jpg"},
	} {
		t.Run(c.link, func(t *testing.T) {
			f := newLocalFixture(t, 24*time.Hour)
			serveNested(t, f)                                            // the real directory is watched first
			must(t, os.Symlink(c.target, filepath.Join(f.root, c.link))) // relative: os.Root refuses absolute links
			_, first, err := f.statted(t, c.rel)
			if err != nil {
				t.Fatal(err)
			}
			if n, _, _ := f.statted(t, c.rel); n == 0 {
				t.Fatal("a hit through a symlink made no stat call")
			}
			must(t, os.WriteFile(filepath.Join(f.root, servedRel), readImage(t, "hubble_deep_field.jpg"), 0o644))
			if _, id, _ := f.statted(t, c.rel); id == first {
				t.Fatal("described stale through the symlink")
			}
		})
	}
}

// TestStatCacheWatchErrorForgetsAll: a watch error (an event queue
// overflow loses events) distrusts every entry and drops every watch.
func TestStatCacheWatchErrorForgetsAll(t *testing.T) {
	f := newLocalFixture(t, 24*time.Hour)
	serveNested(t, f)
	if !f.local.meta.trusted(servedRel) {
		t.Fatal("not cached")
	}
	f.local.meta.reset()
	if f.local.meta.trusted(servedRel) {
		t.Fatal("still trusted after a watch error")
	}
	if n, _, _ := f.statted(t, servedRel); n != 1 {
		t.Fatalf("%d stat calls after the reset, want 1", n)
	}
	if n, _, _ := f.statted(t, servedRel); n != 0 {
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

// TestStatCacheMissingFiles: a missing file is never cached and never
// leaves a watch on a directory that does not exist.
func TestStatCacheMissingFiles(t *testing.T) {
	f := newLocalFixture(t, 24*time.Hour)
	for _, rel := range []string{"nope.jpg", "no/such/dir/x.jpg"} {
		if _, _, err := f.statted(t, rel); !errors.Is(err, ErrMissing) {
			t.Fatalf("%s: %v, want ErrMissing", rel, err)
		}
	}
	must(t, os.WriteFile(filepath.Join(f.root, "nope.jpg"), readImage(t, "rocket.jpg"), 0o644))
	if _, _, err := f.statted(t, "nope.jpg"); err != nil {
		t.Fatalf("created file: %v", err)
	}
	f.local.meta.mu.Lock()
	defer f.local.meta.mu.Unlock()
	for p := range f.local.meta.dirs {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			t.Errorf("watch entry for a missing directory %s", p)
		}
	}
}
