package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"image-proxy/internal/testsupport/testclock"
	"image-proxy/metrics"
)

// smallVolume mounts a tmpfs of size (mount's syntax: "2m") on a fresh
// directory, unmounted when the test ends, so a full disk is a real one.
func smallVolume(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("cannot mount a %s tmpfs (%v): this test needs root or CAP_SYS_ADMIN, as on CI and the dev machines", size, err)
		}
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// remount makes the tmpfs at dir read-only or writable again.
func remount(t *testing.T, dir string, readOnly bool) {
	t.Helper()
	flags := uintptr(unix.MS_REMOUNT)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dir, "", flags, ""); err != nil {
		t.Fatalf("remount %s (read-only %t): %v", dir, readOnly, err)
	}
}

// fillVolume writes a file at p until the volume has no space left; the
// write that finds it full is expected, any other error is not.
func fillVolume(t *testing.T, p string) {
	t.Helper()
	err := os.WriteFile(p, value(8<<20, 'x'), 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the volume: %v, want no space left", err)
	}
}

type diskRig struct {
	tier  *diskTier
	clock *testclock.Clock
	m     *metrics.Metrics
	logs  *bytes.Buffer
	dir   string
}

func newDiskRig(t *testing.T, dir string, capacity int64, clock *testclock.Clock) *diskRig {
	t.Helper()
	r := &diskRig{clock: clock, m: metrics.New(prometheus.NewRegistry(), nil), logs: &bytes.Buffer{}, dir: dir}
	r.tier = newDiskTier(dir, capacity, r.m, slog.New(slog.NewTextHandler(r.logs, nil)), clock.Now)
	t.Cleanup(func() { r.tier.Close() })
	receive(t, "the disk index rebuild", r.tier.rebuilt)
	return r
}

func (r *diskRig) failures(reason string) float64 {
	return testutil.ToFloat64(r.m.CacheDiskWriteFailures.WithLabelValues(reason))
}

func (r *diskRig) warnings() int { return strings.Count(r.logs.String(), "level=WARN") }

// served reports whether the tier answers key with exactly v.
func (r *diskRig) served(key string, v []byte) bool {
	got, ok := r.tier.Get(context.Background(), key)
	return ok && bytes.Equal(got, v)
}

// checkAccounting: the tier's count of bytes and items is what its entry
// files take on the volume, its gauges say the same, and no temp file of a
// write (failed or not) is left.
func (r *diskRig) checkAccounting(t *testing.T) {
	t.Helper()
	var files, size int64
	filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(d.Name()) == 64 {
			fi, err := d.Info()
			if err != nil {
				t.Fatal(err)
			}
			files++
			size += onDisk(fi)
		}
		return nil
	})
	r.tier.mu.Lock()
	bytes, items := r.tier.bytes, int64(r.tier.lru.Len())
	r.tier.mu.Unlock()
	if bytes != size || items != files || bytes < 0 {
		t.Errorf("tier counts %d bytes in %d entries; the volume holds %d bytes in %d entry files", bytes, items, size, files)
	}
	if g := testutil.ToFloat64(r.m.CacheSizeBytes.WithLabelValues("disk")); g != float64(bytes) {
		t.Errorf("size gauge %v, tier counts %d", g, bytes)
	}
	if g := testutil.ToFloat64(r.m.CacheItems.WithLabelValues("disk")); g != float64(items) {
		t.Errorf("items gauge %v, tier counts %d", g, items)
	}
	if left, _ := os.ReadDir(filepath.Join(r.dir, tempDirName)); len(left) != 0 {
		t.Errorf("%d temp files left behind: %v", len(left), left)
	}
}

func entryValue(i int) []byte { return value(30_000+i, byte(i)) }

// TestFullVolumeKeepsTheTier: the disk tier on a 2 MB volume under the
// default 512 MB cap, half of it taken by another user. The write that
// finds it full shrinks the tier (evicting the oldest entries), which goes
// on serving what it holds, logs one warning and counts the failure; writes
// wait out the back-off, and land again once space is freed.
func TestFullVolumeKeepsTheTier(t *testing.T) {
	vol := smallVolume(t, "2m")
	filler := filepath.Join(vol, "filler")
	if err := os.WriteFile(filler, value(1<<20, 'f'), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newDiskRig(t, filepath.Join(vol, "cache"), 512<<20, testclock.New(time.Unix(1_700_000_000, 0)))
	ctx := context.Background()
	var stored []int
	for i := 0; r.failures(metrics.DiskWriteFull) == 0; i++ {
		if i == 100 {
			t.Fatal("100 entries of 30 KB went to a 2 MB volume without one finding it full")
		}
		r.tier.Set(ctx, fmt.Sprint("variant-", i), entryValue(i))
		if r.failures(metrics.DiskWriteFull) == 0 {
			stored = append(stored, i)
		}
	}
	if len(stored) < 10 {
		t.Fatalf("only %d entries stored before the volume was full", len(stored))
	}
	if n := r.warnings(); n != 1 {
		t.Errorf("%d warnings for the full volume, want 1:\n%s", n, r.logs)
	}
	shrunk := r.tier.limit.Load()
	if shrunk >= 512<<20 || shrunk <= 0 {
		t.Errorf("effective capacity %d after the volume filled up", shrunk)
	}
	t.Logf("%d entries stored before the volume filled up; capacity %d → %d bytes", len(stored), int64(512<<20), shrunk)
	checkStoredServed(t, r, stored)
	r.checkAccounting(t)

	// Within the back-off nothing is tried: no write, no failure, no log.
	r.tier.Set(ctx, "during-backoff", value(100, 1))
	if r.served("during-backoff", value(100, 1)) || r.failures(metrics.DiskWriteFull) != 1 {
		t.Errorf("a write inside the back-off was tried (failures %v)", r.failures(metrics.DiskWriteFull))
	}

	// Still full at the retry: counted, shrunk again, no second warning.
	fillVolume(t, filepath.Join(vol, "filler-2"))
	r.clock.Advance(firstBackoff)
	r.tier.Set(ctx, "retry-while-full", entryValue(1000))
	if r.failures(metrics.DiskWriteFull) != 2 || r.warnings() != 1 || r.tier.limit.Load() >= shrunk {
		t.Errorf("retry on a full volume: failures %v, warnings %d, capacity %d (was %d)",
			r.failures(metrics.DiskWriteFull), r.warnings(), r.tier.limit.Load(), shrunk)
	}
	r.checkAccounting(t)
	checkWritesLandAfterFreeing(t, r, filler, filepath.Join(vol, "filler-2"))
}

// checkStoredServed: every entry stored before the volume filled up is
// either served intact (through a cache, as HIT-DISK) or was evicted to
// make room, and the eviction took the oldest few only.
func checkStoredServed(t *testing.T, r *diskRig, stored []int) {
	t.Helper()
	c := New([]Tier{r.tier}, r.m)
	served := 0
	for _, i := range stored {
		v, st, ok := c.Cached(context.Background(), fmt.Sprint("variant-", i))
		switch {
		case ok && st == hitDisk && bytes.Equal(v, entryValue(i)):
			served++
		case ok:
			t.Errorf("variant-%d: %s, %d bytes", i, st, len(v))
		case served > 0:
			t.Errorf("variant-%d is gone but an older entry is served: not least recently used first", i)
		}
	}
	if lost := len(stored) - served; served == 0 || lost > len(stored)/fullMargin+1 {
		t.Errorf("%d of %d stored entries served after the volume filled up", served, len(stored))
	}
}

// checkWritesLandAfterFreeing: once the other user's files are gone and
// the back-off and the next look at free space have passed, writes land,
// the tier grows back, and one line says it is writable again.
func checkWritesLandAfterFreeing(t *testing.T, r *diskRig, fillers ...string) {
	t.Helper()
	before := r.tier.limit.Load()
	for _, f := range fillers {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	r.clock.Advance(measureEvery)
	ctx := context.Background()
	for i := 2000; i < 2020; i++ {
		key := fmt.Sprint("after-", i)
		r.tier.Set(ctx, key, entryValue(i))
		if !r.served(key, entryValue(i)) {
			t.Fatalf("%s not stored after the volume was freed (failures %v)", key, r.failures(metrics.DiskWriteFull))
		}
	}
	t.Logf("capacity after freeing: %d bytes (was %d)\n%s", r.tier.limit.Load(), before, r.logs)
	if after := r.tier.limit.Load(); after <= before {
		t.Errorf("effective capacity %d after freeing the volume, was %d: not grown back", after, before)
	}
	if n := strings.Count(r.logs.String(), "disk cache writable again"); n != 1 || r.warnings() != 1 {
		t.Errorf("%d recovery lines, %d warnings, want 1 and 1:\n%s", n, r.warnings(), r.logs)
	}
	r.checkAccounting(t)
}

// TestReadOnlyVolumeKeepsServing: a volume that turns read-only (or
// refuses us) is waited out like a full one, without evicting anything:
// the tier serves what it holds, also after a restart on the read-only
// volume, and writes again once the volume is writable.
func TestReadOnlyVolumeKeepsServing(t *testing.T) {
	vol := smallVolume(t, "4m")
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	r := newDiskRig(t, vol, 1<<20, clock)
	ctx := context.Background()
	for i := range 3 {
		r.tier.Set(ctx, fmt.Sprint("variant-", i), entryValue(i))
	}
	remount(t, vol, true)
	t.Cleanup(func() { remount(t, vol, false) })
	r.tier.Set(ctx, "new", entryValue(9))
	r.tier.Set(ctx, "new-again", entryValue(9)) // within the back-off: not tried
	if got := r.failures(metrics.DiskWriteError); got != 1 || r.warnings() != 1 || r.failures(metrics.DiskWriteFull) != 0 {
		t.Errorf("read-only volume: %v failed writes, %d warnings, want 1 and 1:\n%s", got, r.warnings(), r.logs)
	}
	if r.tier.limit.Load() != 1<<20 {
		t.Errorf("a read-only volume changed the capacity to %d", r.tier.limit.Load())
	}
	restarted := newDiskRig(t, vol, 1<<20, clock)
	for i := range 3 {
		for _, tier := range []*diskRig{r, restarted} {
			if !tier.served(fmt.Sprint("variant-", i), entryValue(i)) {
				t.Errorf("variant-%d not served from the read-only volume", i)
			}
		}
	}
	if restarted.warnings() != 1 || restarted.failures(metrics.DiskWriteError) != 1 {
		t.Errorf("start on a read-only volume: %d warnings, %v failures, want 1 and 1",
			restarted.warnings(), restarted.failures(metrics.DiskWriteError))
	}

	remount(t, vol, false)
	clock.Advance(firstBackoff)
	r.tier.Set(ctx, "new", entryValue(9))
	if !r.served("new", entryValue(9)) || !strings.Contains(r.logs.String(), "disk cache writable again") {
		t.Errorf("no write after the volume became writable again:\n%s", r.logs)
	}
	r.checkAccounting(t)
}

func TestFailureReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{syscall.ENOSPC, metrics.DiskWriteFull},
		{syscall.EDQUOT, metrics.DiskWriteFull},
		{&fs.PathError{Op: "write", Path: "/c/tmp/entry1", Err: syscall.ENOSPC}, metrics.DiskWriteFull},
		{&os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.ENOSPC}, metrics.DiskWriteFull},
		{&fs.PathError{Op: "open", Path: "/c/tmp/entry1", Err: syscall.EROFS}, metrics.DiskWriteError},
		{&fs.PathError{Op: "mkdir", Path: "/c/ab", Err: syscall.EACCES}, metrics.DiskWriteError},
		{syscall.EIO, metrics.DiskWriteError},
		{errors.New("anything else"), metrics.DiskWriteError},
	} {
		if got := failureReason(c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
}

// TestWriteBackoff: the waits double from firstBackoff up to maxBackoff,
// failures inside a wait neither extend nor re-announce it, a write begun
// before the latest failure does not close the episode, and a retry that
// lands does (the next failure starts over at firstBackoff).
func TestWriteBackoff(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	b := writeBackoff{now: clock.Now}
	if _, ok := b.allow(); !ok {
		t.Fatal("writes refused before any failure")
	}
	var waits []time.Duration
	for i := range 9 {
		first, fresh, wait := b.failed()
		if first != (i == 0) || !fresh {
			t.Fatalf("failure %d: first %t fresh %t", i, first, fresh)
		}
		if _, fresh, _ := b.failed(); fresh {
			t.Fatalf("a second failure inside wait %d counted as news", i)
		}
		if _, ok := b.allow(); ok {
			t.Fatalf("write allowed inside wait %d", i)
		}
		waits = append(waits, wait)
		clock.Advance(wait)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Fatalf("waits %v, want %v seconds", waits, want)
		}
	}
	token, ok := b.allow()
	if !ok || b.succeeded(0) || b.succeeded(token-1) {
		t.Fatal("a write begun before the latest failure closed the episode")
	}
	if !b.succeeded(token) || b.succeeded(token) {
		t.Fatal("the retry that landed did not close the episode exactly once")
	}
	if first, _, wait := b.failed(); !first || wait != firstBackoff {
		t.Errorf("next failure: first %t, wait %v", first, wait)
	}
}

// TestFullVolumeConcurrentWrites: writers racing into a volume that fills
// up leave the accounting exact (no entry counted twice or lost, no
// negative size, no temp file left) and announce the episode once.
func TestFullVolumeConcurrentWrites(t *testing.T) {
	vol := smallVolume(t, "2m")
	r := newDiskRig(t, vol, 512<<20, testclock.New(time.Unix(1_700_000_000, 0)))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				n := w*100 + i
				r.tier.Set(context.Background(), fmt.Sprint("variant-", n), entryValue(n))
			}
		}()
	}
	wg.Wait()
	if r.failures(metrics.DiskWriteFull) == 0 {
		t.Fatal("160 entries of 30 KB went to a 2 MB volume without one finding it full")
	}
	if n := r.warnings(); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, r.logs)
	}
	// Shrunk by a sixteenth of what it held (2 MB less the writes in
	// flight), not emptied.
	limit := r.tier.limit.Load()
	t.Logf("%v failed writes, capacity %d", r.failures(metrics.DiskWriteFull), limit)
	if limit < 3<<19 {
		t.Errorf("capacity %d after %v failed writes: shrunk more than once", limit, r.failures(metrics.DiskWriteFull))
	}
	r.checkAccounting(t)
}
