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
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/metrics"
)

// The header values are a contract with clients and dashboards: spelled
// out here, not derived, so a change to HitStatus cannot pass unnoticed.
const (
	hitMemory Status = "HIT-MEMORY"
	hitDisk   Status = "HIT-DISK"
)

type env struct {
	c     Cache
	tiers []Tier
	m     *metrics.Metrics
	logs  *bytes.Buffer
	calls atomic.Int64
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{m: metrics.New(prometheus.NewRegistry(), nil), logs: &bytes.Buffer{}}
	tiers, err := LocalTiers(cfg, e.m, slog.New(slog.NewTextHandler(e.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.tiers, e.c = tiers, New(tiers, e.m)
	t.Cleanup(func() { e.c.Close() })
	return e
}

// renderer returns a RenderFunc producing val and counting calls.
func (e *env) renderer(val []byte) RenderFunc {
	return func(context.Context) ([]byte, error) {
		e.calls.Add(1)
		return val, nil
	}
}

func (e *env) fetch(t *testing.T, key string, val []byte) Status {
	t.Helper()
	got, st, err := e.c.Fetch(context.Background(), key, e.renderer(val))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, val) {
		t.Fatalf("%s: got %d bytes, want %d", key, len(got), len(val))
	}
	return st
}

func diskConfig(dir string) Config {
	return Config{Enabled: true, MemorySize: 1 << 20, MaxItemSize: 64 << 10, DiskEnabled: true, DiskSize: 1 << 20, DiskPath: dir}
}

func value(n int, seed byte) []byte { return bytes.Repeat([]byte{seed}, n) }

func TestTiers(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, diskConfig(dir))
	small, big := value(1000, 1), value(100<<10, 2)
	steps := []struct {
		key  string
		val  []byte
		want Status
	}{
		{"a", small, StatusMiss},
		{"a", small, hitMemory},
		{"big", big, StatusMiss}, // over MaxItemSize: disk only
		{"big", big, hitDisk},    // …so it comes from disk
		{"big", big, hitDisk},    // …every time
		{"b", small, StatusMiss},
	}
	for i, s := range steps {
		if got := e.fetch(t, s.key, s.val); got != s.want {
			t.Errorf("step %d (%s): %s, want %s", i, s.key, got, s.want)
		}
	}
	if n := e.calls.Load(); n != 3 {
		t.Errorf("%d renders, want 3", n)
	}
	for _, c := range []struct {
		tier, result string
		want         float64
	}{{"memory", "hit", 1}, {"memory", "miss", 5}, {"disk", "hit", 2}, {"disk", "miss", 3}} {
		if got := testutil.ToFloat64(e.m.CacheRequests.WithLabelValues(c.tier, c.result)); got != c.want {
			t.Errorf("cache_requests{%s,%s} = %v, want %v", c.tier, c.result, got, c.want)
		}
	}
	if got := testutil.ToFloat64(e.m.CacheItems.WithLabelValues("disk")); got != 3 {
		t.Errorf("disk items %v, want 3", got)
	}
}

func TestDiskHitIsPromoted(t *testing.T) {
	dir := t.TempDir()
	first := newEnv(t, diskConfig(dir))
	first.fetch(t, "k", value(500, 3))
	first.c.Close()

	// A new process over the same directory: the disk answers, then memory.
	second := newEnv(t, diskConfig(dir))
	for i, want := range []Status{hitDisk, hitMemory} {
		if got := second.fetch(t, "k", value(500, 3)); got != want {
			t.Errorf("request %d: %s, want %s", i, got, want)
		}
	}
	if second.calls.Load() != 0 {
		t.Error("rendered although the disk held the value")
	}
}

func entryFiles(t *testing.T, dir string) []string {
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(d.Name()) == 64 {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func TestDamagedEntriesAreNeverServed(t *testing.T) {
	damage := map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)-10] ^= 0xFF; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)/2] },
		"zero length":  func([]byte) []byte { return nil },
		"header only":  func(b []byte) []byte { return b[:headerBytes] },
		"garbage":      func(b []byte) []byte { return bytes.Repeat([]byte("x"), len(b)) },
		"longer":       func(b []byte) []byte { return append(b, 0) },
		"wrong magic":  func(b []byte) []byte { b[0] = 'X'; return b },
		"length lies":  func(b []byte) []byte { b[11]++; return b },
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			val := value(2000, 7)
			first := newEnv(t, diskConfig(dir))
			first.fetch(t, "k", val)
			first.c.Close()
			files := entryFiles(t, dir)
			if len(files) != 1 {
				t.Fatalf("%d entry files", len(files))
			}
			raw, _ := os.ReadFile(files[0])
			os.WriteFile(files[0], f(raw), 0o644)

			second := newEnv(t, diskConfig(dir))
			if got := second.fetch(t, "k", val); got != StatusMiss {
				t.Errorf("damaged entry answered %s", got)
			}
			if second.calls.Load() != 1 {
				t.Error("not re-rendered")
			}
			if got := testutil.ToFloat64(second.m.CacheCorrupt); got != 1 {
				t.Errorf("corrupt counter %v", got)
			}
			// Re-rendered and rewritten: the disk serves it again after a restart.
			second.c.Close()
			third := newEnv(t, diskConfig(dir))
			if got := third.fetch(t, "k", val); got != hitDisk {
				t.Errorf("after repair: %s", got)
			}
		})
	}
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func TestDiskCapacity(t *testing.T) {
	dir := t.TempDir()
	cfg := diskConfig(dir)
	cfg.DiskSize = 200 << 10
	e := newEnv(t, cfg)
	for i := range 300 {
		e.fetch(t, fmt.Sprintf("variant-%d", i), value(3000+i, byte(i)))
		if n := dirBytes(dir); n > cfg.DiskSize*11/10 {
			t.Fatalf("after %d writes the directory holds %d bytes, cap %d", i, n, cfg.DiskSize)
		}
	}
	if got := testutil.ToFloat64(e.m.CacheEvictions.WithLabelValues("disk")); got < 200 {
		t.Errorf("disk evictions %v, want most of 300 writes", got)
	}
	// The most recent variant survived; the first did not.
	e.c.Close()
	again := newEnv(t, cfg)
	if got := again.fetch(t, "variant-299", value(3299, byte(299%256))); got != hitDisk && got != hitMemory {
		t.Errorf("newest variant: %s", got)
	}
	if got := again.fetch(t, "variant-0", value(3000, 0)); got != StatusMiss {
		t.Errorf("oldest variant: %s, want evicted", got)
	}
}

func TestCapacityAccountingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := diskConfig(dir)
	cfg.DiskSize = 100 << 10
	first := newEnv(t, cfg)
	for i := range 20 {
		first.fetch(t, fmt.Sprintf("old-%d", i), value(4000, 1))
	}
	first.c.Close()
	// A smaller cap after the restart: the rebuilt index must enforce it.
	cfg.DiskSize = 40 << 10
	second := newEnv(t, cfg)
	receive(t, "the disk index rebuild", second.tiers[1].(*diskTier).rebuilt)
	second.fetch(t, "new", value(4000, 2))
	if n := dirBytes(dir); n > cfg.DiskSize*11/10 {
		t.Errorf("directory holds %d bytes after restart, cap %d", n, cfg.DiskSize)
	}
}

// hangGuard bounds every wait for an event only a regression can prevent
// (a render never cancelled, a waiter never joining): the test fails
// instead of hanging. It says nothing about speed.
const hangGuard = 30 * time.Second

// receive waits for one value from ch, failing the test after hangGuard.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("%s: not after %v", what, hangGuard)
		var zero T
		return zero
	}
}

// waitWaiters waits until n callers wait on key's flight, failing the
// test after hangGuard. The poll reads the state; nothing depends on its
// interval.
func waitWaiters(t *testing.T, e *env, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for e.c.(*tiered).flight.waiting(key) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d callers waiting for %q, want %d", e.c.(*tiered).flight.waiting(key), key, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCoalescing(t *testing.T) {
	e := newEnv(t, Config{Enabled: true, MemorySize: 1 << 20, MaxItemSize: 1 << 20})
	release := make(chan struct{})
	var calls atomic.Int64
	render := func(ctx context.Context) ([]byte, error) {
		calls.Add(1)
		<-release
		return []byte("img"), nil
	}
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // a failed wait must not leave the render blocked
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			v, _, err := e.c.Fetch(context.Background(), "same", render)
			if err == nil && string(v) != "img" {
				err = fmt.Errorf("got %q", v)
			}
			errs <- err
		}()
	}
	// All of them join the one flight before it may finish: a caller
	// arriving later would be served by the memory tier, which proves nothing.
	waitWaiters(t, e, "same", n)
	open()
	for range n {
		if err := receive(t, "a Fetch to return", errs); err != nil {
			t.Error(err)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("%d renders for %d identical requests", got, n)
	}
}

func TestLeaderLeavingDoesNotCancelOthers(t *testing.T) {
	e := newEnv(t, Config{Enabled: true, MemorySize: 1 << 20, MaxItemSize: 1 << 20})
	started, release := make(chan struct{}), make(chan struct{})
	render := func(ctx context.Context) ([]byte, error) {
		close(started)
		select {
		case <-release:
			return []byte("img"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	leaderCtx, leave := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, _, err := e.c.Fetch(leaderCtx, "k", render)
		leaderErr <- err
	}()
	receive(t, "the render to start", started)
	follower := make(chan []byte, 1)
	go func() {
		v, _, _ := e.c.Fetch(context.Background(), "k", func(context.Context) ([]byte, error) { return nil, errors.New("second render") })
		follower <- v
	}()
	waitWaiters(t, e, "k", 2)
	leave()
	if err := receive(t, "the leader to return", leaderErr); !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	close(release)
	if v := receive(t, "the follower to return", follower); string(v) != "img" {
		t.Fatalf("follower got %q", v)
	}
}

func TestRenderCancelledWhenEveryoneLeaves(t *testing.T) {
	e := newEnv(t, Config{Enabled: true, MemorySize: 1 << 20, MaxItemSize: 1 << 20})
	cancelled := make(chan struct{})
	started := make(chan struct{})
	render := func(ctx context.Context) ([]byte, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go e.c.Fetch(ctx, "k", render)
	receive(t, "the render to start", started)
	cancel()
	receive(t, "the render to be cancelled", cancelled)
}

func TestErrorsAreNotCached(t *testing.T) {
	e := newEnv(t, diskConfig(t.TempDir()))
	boom := errors.New("boom")
	if _, _, err := e.c.Fetch(context.Background(), "k", func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got := e.fetch(t, "k", []byte("ok")); got != StatusMiss {
		t.Errorf("after an error: %s, want MISS", got)
	}
}

func TestDisabledBypasses(t *testing.T) {
	e := newEnv(t, Config{Enabled: false})
	for range 2 {
		if got := e.fetch(t, "k", []byte("v")); got != StatusBypass {
			t.Errorf("%s, want BYPASS", got)
		}
	}
	if e.calls.Load() != 2 {
		t.Error("disabled cache stored a value")
	}
}

func TestUnusableDirectoryDegrades(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, []byte("x"), 0o644)
	cases := map[string]string{
		"parent is a file": filepath.Join(file, "cache"),
		"path is a file":   file,
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, diskConfig(path))
			for i, want := range []Status{StatusMiss, hitMemory} {
				if got := e.fetch(t, "k", []byte("v")); got != want {
					t.Errorf("request %d: %s, want %s", i, got, want)
				}
			}
			if n := strings.Count(e.logs.String(), "level=WARN"); n != 1 {
				t.Errorf("%d warnings, want 1:\n%s", n, e.logs.String())
			}
		})
	}
}

func TestDiskFailingLaterDegrades(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, diskConfig(dir))
	e.fetch(t, "a", []byte("v"))
	// The disk goes away under us (unmounted, replaced by a file).
	os.RemoveAll(dir)
	os.WriteFile(dir, []byte("not a directory"), 0o644)
	for i := range 3 {
		if got := e.fetch(t, fmt.Sprintf("b%d", i), []byte("w")); got != StatusMiss {
			t.Errorf("%s", got)
		}
	}
	if n := strings.Count(e.logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
}

// TestCachedLooksOnThisMachineOnly: Cached answers from memory or disk
// (promoting a disk hit) and never renders, never asks a remote tier; each
// look at a tier is counted once, whether Cached answers or the Fetch that
// follows its miss does.
func TestCachedLooksOnThisMachineOnly(t *testing.T) {
	dir := t.TempDir()
	first := newEnv(t, diskConfig(dir))
	first.fetch(t, "k", value(500, 3))
	first.c.Close()

	m := metrics.New(prometheus.NewRegistry(), nil)
	remote := newMapTier("remote")
	remote.Set(context.Background(), "r", value(10, 4))
	mem, err := NewMemoryTier(1<<20, 64<<10, m)
	if err != nil {
		t.Fatal(err)
	}
	c := New([]Tier{mem, NewDiskTier(dir, 1<<20, m, nil), remote}, m)
	t.Cleanup(func() { c.Close() })
	count := func(tier, result string) float64 {
		return testutil.ToFloat64(m.CacheRequests.WithLabelValues(tier, result))
	}
	ctx := context.Background()
	for i, want := range []Status{hitDisk, hitMemory} {
		v, st, ok := c.Cached(ctx, "k")
		if !ok || st != want || !bytes.Equal(v, value(500, 3)) {
			t.Fatalf("look %d: %s %t, want %s", i, st, ok, want)
		}
	}
	if _, _, ok := c.Cached(ctx, "r"); ok {
		t.Fatal("Cached answered from the remote tier")
	}
	if v, st, err := c.Fetch(ctx, "r", func(context.Context) ([]byte, error) { return nil, errors.New("rendered") }); err != nil || st != "HIT-REMOTE" || len(v) != 10 {
		t.Fatalf("Fetch after Cached's miss: %s %v", st, err)
	}
	for _, c := range []struct {
		tier, result string
		want         float64
	}{
		{"memory", "hit", 1}, {"memory", "miss", 2}, {"disk", "hit", 1}, {"disk", "miss", 1},
		{"remote", "hit", 1}, {"remote", "miss", 0},
	} {
		if got := count(c.tier, c.result); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.tier, c.result, got, c.want)
		}
	}
}

// TestDiskReadSizes: entries around the read buffer's size come back whole.
func TestDiskReadSizes(t *testing.T) {
	tier := NewDiskTier(t.TempDir(), 16<<20, nil, nil)
	t.Cleanup(func() { tier.Close() })
	ctx := context.Background()
	for _, n := range []int{0, 1, readBuffer - headerBytes - 1, readBuffer - headerBytes, readBuffer - headerBytes + 1, readBuffer, 3*readBuffer + 7} {
		key := fmt.Sprint("size-", n)
		v := value(n, byte(n))
		tier.Set(ctx, key, v)
		got, ok := tier.Get(ctx, key)
		if !ok || !bytes.Equal(got, v) {
			t.Errorf("%d bytes: ok %t, got %d bytes", n, ok, len(got))
		}
	}
}
