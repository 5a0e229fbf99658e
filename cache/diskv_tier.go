package cache

import (
	"bytes"
	"container/list"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/peterbourgon/diskv/v3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"image-proxy/metrics"
)

// An entry on disk is encodeEntry's header followed by the value (entry.go).
// Writes go to a temp file in the same directory tree and are renamed into
// place, so a crash leaves either the old state or a whole file; the length
// and checksum catch everything else (bit rot, truncation, a zero-length
// file left by a crash before the data reached the disk).
const tempDirName = "tmp"

type diskTier struct {
	d        *diskv.Diskv
	base     string
	capacity int64
	log      *slog.Logger

	corrupt   prometheus.Counter
	evictions prometheus.Counter
	size      prometheus.Gauge
	items     prometheus.Gauge

	disabled atomic.Bool
	warn     sync.Once
	scratch  sync.Pool // of *[]byte, readBuffer long: read's first read lands here
	rebuilt  chan struct{}

	mu    sync.Mutex
	lru   *list.List // of *diskEntry; front = most recently used
	index map[string]*list.Element
	bytes int64
}

type diskEntry struct {
	name string
	size int64
}

// NewDiskTier keeps up to capacity bytes under base, evicting the least
// recently used entries. It never fails: a directory it cannot use turns
// it into a tier that always misses, with one warning, because a cache
// must not keep the service from starting. m and log may be nil.
func NewDiskTier(base string, capacity int64, m *metrics.Metrics, log *slog.Logger) Tier {
	m = orDiscard(m)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &diskTier{base: base, capacity: capacity, log: log, lru: list.New(),
		index: map[string]*list.Element{}, rebuilt: make(chan struct{}),
		corrupt:   m.CacheCorrupt,
		evictions: m.CacheEvictions.WithLabelValues(metrics.TierDisk),
		size:      m.CacheSizeBytes.WithLabelValues(metrics.TierDisk),
		items:     m.CacheItems.WithLabelValues(metrics.TierDisk),
	}
	tmp := filepath.Join(base, tempDirName)
	t.d = diskv.New(diskv.Options{
		BasePath:     base,
		TempDir:      tmp,
		CacheSizeMax: 0, // memory caching is the job of the tiers in front
		PathPerm:     0o755,
		FilePerm:     0o644,
		AdvancedTransform: func(name string) *diskv.PathKey {
			return &diskv.PathKey{Path: shards(name), FileName: name}
		},
		InverseTransform: func(pk *diskv.PathKey) string { return pk.FileName },
	})
	if err := resetTemp(tmp); err != nil {
		t.fail(err)
		close(t.rebuilt)
		return t
	}
	go t.rebuild()
	return t
}

// resetTemp empties dir, since temp files left by a crash are never valid
// entries, and proves it writable now rather than on the first render.
func resetTemp(dir string) error {
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// fail turns the tier off for the rest of the process, logging once.
func (t *diskTier) fail(err error) {
	t.disabled.Store(true)
	t.warn.Do(func() {
		t.log.Warn("disk cache unusable; serving from memory only", "path", t.base, "err", err)
	})
}

func diskName(key string) string { return entryName(key) }

// shards are the directories of entry name: two levels of 256, so 10
// million entries make ~150 files a directory.
func shards(name string) []string { return []string{name[0:2], name[2:4]} }

// path is where diskv keeps entry name (its BasePath, the shards, the name).
func (t *diskTier) path(name string) string {
	return filepath.Join(t.base, name[0:2], name[2:4], name)
}

func (t *diskTier) Name() string { return metrics.TierDisk }

func (t *diskTier) Get(ctx context.Context, key string) ([]byte, bool) {
	if t.disabled.Load() {
		return nil, false
	}
	name := diskName(key)
	// Read directly rather than through diskv.Read (a stat, an open, reads
	// into a growing buffer): writes are atomic renames, so a file read
	// here is a whole entry or none.
	raw, err := t.read(t.path(name))
	if err != nil {
		t.forget(name)
		return nil, false
	}
	payload, ok := verify(raw)
	if !ok {
		t.d.Erase(name)
		t.forget(name)
		t.corrupt.Inc()
		t.log.WarnContext(ctx, "damaged disk cache entry dropped", "entry", name, "bytes", len(raw))
		return nil, false
	}
	t.touch(name, int64(len(raw)))
	return payload, true
}

func (t *diskTier) Set(_ context.Context, key string, v []byte) {
	if t.disabled.Load() {
		return
	}
	buf := encodeEntry(v)
	name := diskName(key)
	if err := t.d.Write(name, buf); err != nil {
		t.fail(err)
		return
	}
	t.touch(name, int64(len(buf)))
}

// readBuffer holds most entries whole: one read answers them.
const readBuffer = 64 << 10

// read returns the file at p whole, usually with three system calls (open,
// read, close) where os.ReadFile makes six. A short read is taken as the
// end of the file, as it is for a local regular file; verify rejects
// anything else.
func (t *diskTier) read(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	bp, _ := t.scratch.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, readBuffer)
		bp = &b
	}
	defer t.scratch.Put(bp)
	buf := *bp
	n, err := readRetry(fd, buf)
	if err != nil {
		return nil, err
	}
	if n < len(buf) {
		return bytes.Clone(buf[:n]), nil
	}
	var st unix.Stat_t // larger than the buffer: the rest by its size
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	out := make([]byte, max(st.Size, int64(n)))
	copy(out, buf)
	for n < len(out) {
		m, err := readRetry(fd, out[n:])
		if err != nil || m == 0 {
			return out[:n], err
		}
		n += m
	}
	return out, nil
}

func readRetry(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return max(n, 0), err
		}
	}
}

// touch records a use of name (size bytes) and evicts past the capacity.
func (t *diskTier) touch(name string, size int64) {
	t.mu.Lock()
	if el, ok := t.index[name]; ok {
		e := el.Value.(*diskEntry)
		t.bytes += size - e.size
		e.size = size
		t.lru.MoveToFront(el)
	} else {
		t.index[name] = t.lru.PushFront(&diskEntry{name: name, size: size})
		t.bytes += size
	}
	victims := t.evictLocked()
	t.mu.Unlock()
	t.erase(victims)
}

// evictLocked unlinks least-recently-used entries until the tier fits.
func (t *diskTier) evictLocked() []string {
	var victims []string
	for t.bytes > t.capacity && t.lru.Len() > 0 {
		e := t.lru.Remove(t.lru.Back()).(*diskEntry)
		delete(t.index, e.name)
		t.bytes -= e.size
		victims = append(victims, e.name)
	}
	t.size.Set(float64(t.bytes))
	t.items.Set(float64(t.lru.Len()))
	return victims
}

func (t *diskTier) erase(names []string) {
	for _, n := range names {
		t.d.Erase(n)
		t.evictions.Inc()
	}
}

func (t *diskTier) forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.index[name]; ok {
		t.bytes -= el.Value.(*diskEntry).size
		t.lru.Remove(el)
		delete(t.index, name)
	}
}

// rebuild walks the directory after a restart so the capacity accounting
// covers entries from earlier runs. It runs in the background: until it
// is done, old entries are still served (and indexed when read).
func (t *diskTier) rebuild() {
	defer close(t.rebuilt)
	type found struct {
		name string
		size int64
		mod  int64
	}
	var all []found
	tmp := filepath.Join(t.base, tempDirName)
	filepath.WalkDir(t.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p == tmp {
				return filepath.SkipDir
			}
			return nil
		}
		if len(d.Name()) != 64 {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			all = append(all, found{d.Name(), fi.Size(), fi.ModTime().UnixNano()})
		}
		return nil
	})
	// Newest first, so PushBack leaves the oldest at the back to go first.
	sort.Slice(all, func(i, j int) bool { return all[i].mod > all[j].mod })
	t.mu.Lock()
	for _, f := range all {
		if _, ok := t.index[f.name]; !ok {
			t.index[f.name] = t.lru.PushBack(&diskEntry{name: f.name, size: f.size})
			t.bytes += f.size
		}
	}
	victims := t.evictLocked()
	t.mu.Unlock()
	t.erase(victims)
}

// Close waits for the background rebuild, so that no goroutine outlives
// the tier or walks a directory that is about to be removed or reused.
func (t *diskTier) Close() error {
	<-t.rebuilt
	return nil
}

func (t *diskTier) Local() bool { return true }
