package cache

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	tmp      string
	capacity int64 // as configured (IMAGE_PROXY_CACHE_DISK_SIZE)
	log      *slog.Logger
	now      func() time.Time

	corrupt   prometheus.Counter
	evictions prometheus.Counter
	size      prometheus.Gauge
	items     prometheus.Gauge
	failures  *prometheus.CounterVec // reason

	writes writeBackoff
	// measureAt is when to look at the volume's free space next (unix
	// nanoseconds) while the tier holds itself below its capacity; 0 at
	// full capacity.
	measureAt atomic.Int64
	limit     atomic.Int64 // effective capacity; written under mu
	scratch   sync.Pool    // of *[]byte, readBuffer long: read's first read lands here
	small     wholePool    // of *[]byte, smallFile long: small entries Open sends (File)
	medium    wholePool    // of *[]byte, heldMax long: larger ones read from a held descriptor
	ring      heldRing     // under mu: disk_held.go
	rebuilt   chan struct{}

	mu    sync.Mutex
	lru   *list.List // of *diskEntry; front = most recently used
	index map[string]*list.Element
	bytes int64 // space the indexed entries take on the volume
}

type diskEntry struct {
	name string
	size int64
	// checked is the file whose bytes Open last read and found intact (zero:
	// none since it was indexed or written): while the file still is that
	// one, Open serves it unread.
	checked fileID
	held    *heldFD // the open file of checked, for hits (disk_held.go); nil: none
}

// fileID tells one state of a file from another without reading it: a
// rewrite changes the modification or change time or the size, a
// replacement (a rename over it) the inode. Bytes that change in place
// with none of these changing are not seen (README, "Disk cache").
type fileID struct {
	ino                uint64
	size, mtime, ctime int64
}

func idOf(st *unix.Stat_t) fileID {
	return fileID{ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// NewDiskTier keeps up to capacity bytes under base, evicting the least
// recently used entries, and less when the volume fills up. It never
// fails: a directory it cannot write turns into a tier that serves what
// it can read and retries writes later, with one warning, because a cache
// must not keep the service from starting. m and log may be nil.
func NewDiskTier(base string, capacity int64, m *metrics.Metrics, log *slog.Logger) Tier {
	return newDiskTier(base, capacity, m, log, time.Now)
}

// newDiskTier is NewDiskTier on the clock now, which times the write
// back-off and the looks at free space (tests pass their own).
func newDiskTier(base string, capacity int64, m *metrics.Metrics, log *slog.Logger, now func() time.Time) *diskTier {
	m = orDiscard(m)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &diskTier{base: base, tmp: filepath.Join(base, tempDirName), capacity: capacity,
		log: log, now: now, writes: writeBackoff{now: now},
		lru: list.New(), index: map[string]*list.Element{}, rebuilt: make(chan struct{}),
		corrupt:   m.CacheCorrupt,
		evictions: m.CacheEvictions.WithLabelValues(metrics.TierDisk),
		size:      m.CacheSizeBytes.WithLabelValues(metrics.TierDisk),
		items:     m.CacheItems.WithLabelValues(metrics.TierDisk),
		failures:  m.CacheDiskWriteFailures,
	}
	t.limit.Store(capacity)
	t.small.size, t.medium.size = smallFile, heldMax
	t.d = diskv.New(diskv.Options{
		BasePath:     base,
		TempDir:      t.tmp,
		CacheSizeMax: 0, // memory caching is the job of the tiers in front
		PathPerm:     0o755,
		FilePerm:     0o644,
		AdvancedTransform: func(name string) *diskv.PathKey {
			return &diskv.PathKey{Path: shards(name), FileName: name}
		},
		InverseTransform: func(pk *diskv.PathKey) string { return pk.FileName },
	})
	if err := resetTemp(t.tmp); err != nil {
		t.writeFailed(context.Background(), err)
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

func diskName(key string) string { return entryName(key) }

// shards are the directories of entry name: two levels of 256, so 10
// million entries make ~150 files a directory.
func shards(name string) []string { return []string{name[0:2], name[2:4]} }

// path is where diskv keeps entry name (its BasePath, the shards, the name).
func (t *diskTier) path(name string) string {
	return filepath.Join(t.base, name[0:2], name[2:4], name)
}

func (t *diskTier) Name() string { return metrics.TierDisk }

// Get serves whatever is stored and intact, whether or not writes
// succeed at the moment.
func (t *diskTier) Get(ctx context.Context, key string) ([]byte, bool) {
	name := diskName(key)
	// Read directly (open, read, close): writes are atomic renames, so a
	// file read here is a whole entry or none.
	p := t.path(name)
	raw, err := t.read(p)
	if err != nil {
		t.forget(name)
		return nil, false
	}
	payload, ok := verify(raw)
	if !ok {
		t.drop(ctx, name, len(raw))
		return nil, false
	}
	if !t.use(name) { // stored by an earlier run, not indexed yet
		if fi, err := os.Stat(p); err == nil {
			t.add(name, onDisk(fi))
		}
	}
	return payload, true
}

// drop removes a damaged entry of n bytes, counts and logs it.
func (t *diskTier) drop(ctx context.Context, name string, n int) {
	t.d.Erase(name)
	t.forget(name)
	t.corrupt.Inc()
	t.log.WarnContext(ctx, "damaged disk cache entry dropped", "entry", name, "bytes", n)
}

// Set writes v unless writes are backing off after a failure, or v could
// not stay (larger than the effective capacity).
func (t *diskTier) Set(ctx context.Context, key string, v []byte) {
	token, ok := t.writes.allow()
	if !ok {
		return
	}
	t.measureIfDue()
	buf := encodeEntry(v)
	if int64(len(buf)) > t.limit.Load() {
		return
	}
	name := diskName(key)
	size, err := writeFile(t.tmp, buf, func(tmp string) error { return t.place(tmp, name) })
	if err != nil {
		t.writeFailed(ctx, err)
		return
	}
	if t.writes.succeeded(token) {
		t.log.InfoContext(ctx, "disk cache writable again", "path", t.base,
			"effective_bytes", t.limit.Load(), "configured_bytes", t.capacity)
	}
	t.add(name, size)
}

// place moves the written temp file tmp into the store as entry name. The
// shard directories are made here first so that a failure to make them
// keeps its errno (diskv reports it as text).
func (t *diskTier) place(tmp, name string) error {
	if err := os.MkdirAll(filepath.Dir(t.path(name)), 0o755); err != nil {
		return err
	}
	return t.d.Import(tmp, name, true)
}

// writeFailed counts a failed write and backs off. A full volume is a
// capacity signal: the tier evicts down to less than it holds and keeps
// that as its capacity until the volume has room again. Only the failure
// that opens an episode is logged as a warning.
func (t *diskTier) writeFailed(ctx context.Context, err error) {
	reason := failureReason(err)
	t.failures.WithLabelValues(reason).Inc()
	first, fresh, wait := t.writes.failed()
	if fresh && reason == metrics.DiskWriteFull {
		t.shrink()
	}
	attrs := []any{"path", t.base, "err", err, "retry_in", wait,
		"effective_bytes", t.limit.Load(), "configured_bytes", t.capacity}
	switch {
	case !first:
		t.log.DebugContext(ctx, "disk cache write failed again", attrs...)
	case reason == metrics.DiskWriteFull:
		t.log.WarnContext(ctx, "disk cache volume full; evicted to fit, serving what is stored, retrying writes later", attrs...)
	default:
		t.log.WarnContext(ctx, "disk cache not writable; serving what is stored, retrying writes later", attrs...)
	}
}

// shrink lowers the effective capacity below what the tier holds and
// evicts down to it: the volume had no room for one more entry. Until the
// index covers what earlier runs stored, what the tier holds is unknown,
// and a capacity taken from part of it would evict nearly everything: the
// tier only backs off, and the retry that fails after the rebuild shrinks.
func (t *diskTier) shrink() {
	select {
	case <-t.rebuilt:
	default:
		return
	}
	t.mu.Lock()
	t.limit.Store(min(t.limit.Load(), t.bytes-t.bytes/fullMargin))
	victims := t.evictLocked()
	t.mu.Unlock()
	t.erase(victims)
	t.measureAt.Store(t.now().Add(measureEvery).UnixNano())
}

// measureIfDue sets the effective capacity from the volume's free space,
// every measureEvery while it is below the configured one: it grows back
// as space is freed (never past what fits less the margin, so the tier
// does not fill a shared volume again), and shrinks further when others
// take space. At full capacity it costs one atomic load.
func (t *diskTier) measureIfDue() {
	at := t.measureAt.Load()
	if at == 0 {
		return
	}
	now := t.now()
	if now.UnixNano() < at || !t.measureAt.CompareAndSwap(at, now.Add(measureEvery).UnixNano()) {
		return
	}
	free, err := freeBytes(t.base)
	if err != nil {
		return // measured again later
	}
	t.mu.Lock()
	fit := t.bytes + free
	limit := min(t.capacity, fit-fit/fullMargin)
	t.limit.Store(limit)
	victims := t.evictLocked()
	t.mu.Unlock()
	t.erase(victims)
	if limit == t.capacity && t.measureAt.CompareAndSwap(now.Add(measureEvery).UnixNano(), 0) {
		t.log.Info("disk cache back to its configured capacity", "path", t.base, "configured_bytes", t.capacity)
	}
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

// use records a use of an indexed entry; false when name is not indexed.
func (t *diskTier) use(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.index[name]
	if ok {
		t.lru.MoveToFront(el)
	}
	return ok
}

// add indexes name (size bytes on the volume) as the most recently used
// entry and evicts past the effective capacity.
func (t *diskTier) add(name string, size int64) {
	t.mu.Lock()
	if el, ok := t.index[name]; ok {
		e := el.Value.(*diskEntry)
		t.bytes += size - e.size
		e.size = size
		e.checked = fileID{} // a new file, not read yet
		t.letGoLocked(e)
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
	limit := t.limit.Load()
	for t.bytes > limit && t.lru.Len() > 0 {
		e := t.lru.Remove(t.lru.Back()).(*diskEntry)
		delete(t.index, e.name)
		t.letGoLocked(e)
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
		t.letGoLocked(el.Value.(*diskEntry))
		t.lru.Remove(el)
		delete(t.index, name)
		t.size.Set(float64(t.bytes))
		t.items.Set(float64(t.lru.Len()))
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
	filepath.WalkDir(t.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p == t.tmp {
				return filepath.SkipDir
			}
			return nil
		}
		if n := len(d.Name()); n != 64 && n != groupLen+1+64 {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			all = append(all, found{d.Name(), onDisk(fi), fi.ModTime().UnixNano()})
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
	t.letGoAll()
	return nil
}

func (t *diskTier) Local() bool { return true }

// Purge removes the group's entries: SourceKey's names start with the
// group, and shards are the name's first characters, so they all sit in
// one shard directory, read whole here.
func (t *diskTier) Purge(_ context.Context, group string) (int, error) {
	dir := filepath.Join(t.base, group[0:2], group[2:4])
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		name := e.Name()
		if len(name) != groupLen+1+64 || !strings.HasPrefix(name, group) || name[groupLen] != '-' {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		t.forget(name)
		removed++
	}
	return removed, nil
}
