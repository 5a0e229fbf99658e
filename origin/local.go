package origin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"image-proxy/fault"
	"image-proxy/metrics"
)

// Local reads originals under a root directory. os.Root refuses every
// path, symlink included, that would resolve outside the root; every open
// goes through it.
type Local struct {
	root *os.Root
	dir  string     // the root's path, for the stat fast path
	meta *statCache // nil: stat on every request
	sys  sysCalls

	hits, statted prometheus.Counter // image_proxy_stat_cache_lookups_total
}

// Kind names the source in traces and logs.
func (l *Local) Kind() string { return "local" }

// LocalOption configures OpenLocal.
type LocalOption func(*localOptions)

type localOptions struct {
	m          *metrics.Metrics
	maxAge     time.Duration
	maxWatches int
	now        func() time.Time
	sys        sysCalls
	log        *slog.Logger
}

// sysCalls are the file system calls Local and its stat cache make to
// describe files and decide on watches. They are values so a test can
// count them (a hit must make none) or fake a file system type.
type sysCalls struct {
	stat, lstat func(name string) (fs.FileInfo, error)           // a file, following a final symlink or not
	statDir     func(p string, follow bool) (unix.Stat_t, error) // a directory a watch would be on
	fsMagic     func(dir string) (int64, error)                  // its file system's type
}

// realSysCalls are the calls themselves.
func realSysCalls() sysCalls {
	return sysCalls{stat: os.Stat, lstat: os.Lstat, statDir: statDir, fsMagic: statfsMagic}
}

// WithStatCache keeps file metadata between requests, invalidated by
// inotify and never trusted longer than maxAge (statcache.go); 0 leaves it
// off. log receives the one-time warnings when watching is not possible;
// m, which may be nil, the look-up counts and the number of watches.
func WithStatCache(maxAge time.Duration, log *slog.Logger, m *metrics.Metrics) LocalOption {
	return func(o *localOptions) { o.maxAge, o.log, o.m = maxAge, log, m }
}

// OpenLocal opens the root directory. Without WithStatCache every Stat
// is a system call.
func OpenLocal(dir string, opts ...LocalOption) (*Local, error) {
	o := localOptions{maxWatches: defaultMaxWatches, now: time.Now, sys: realSysCalls(), log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	if o.m == nil {
		o.m = metrics.New(prometheus.NewRegistry(), nil)
	}
	l := &Local{root: root, dir: dir, sys: o.sys,
		hits:    o.m.StatCacheLookups.WithLabelValues(metrics.StatCacheHit),
		statted: o.m.StatCacheLookups.WithLabelValues(metrics.StatCacheStat)}
	if o.maxAge > 0 {
		if l.meta, err = newStatCache(dir, o); err != nil {
			// No inotify at all (a seccomp profile, a kernel without it):
			// serve correctly, only slower.
			o.log.Warn("stat cache off: cannot watch files", "err", err)
		}
	}
	return l, nil
}

// Close releases the root directory handle and the watches.
func (l *Local) Close() error {
	var err error
	if l.meta != nil {
		err = l.meta.close()
	}
	return errors.Join(err, l.root.Close())
}

// Stat uses one plain stat in the common case (os.Root.Stat costs several
// syscalls a lookup, a third of a cache hit's time); that is safe because
// rel has already been checked lexically, and a stat opens nothing: the
// file is only ever read through os.Root, which refuses a symlink out of
// the root at render time. Any failure is classified by os.Root itself, so
// an escaping or dangling symlink is a 404 rather than a reason to ask the
// next source.
//
// With the stat cache, a file already described is answered from memory
// while its directory's watch says nothing changed; the watch is set up
// before the stat, so a change after it is never missed. A symlinked file
// is not cached: its target's changes are reported elsewhere.
func (l *Local) Stat(_ context.Context, rel string) (Original, error) {
	if l.meta == nil {
		l.statted.Inc()
		return l.stat(rel, l.sys.stat)
	}
	if o, ok := l.meta.lookup(rel); ok {
		l.hits.Inc()
		return o, nil
	}
	l.statted.Inc()
	d, gen := l.meta.watch(rel)
	o, err := l.stat(rel, l.sys.lstat)
	if errors.Is(err, errSymlink) {
		return l.stat(rel, l.sys.stat)
	}
	if err == nil && d != nil {
		l.meta.store(rel, o, d, gen)
	}
	return o, err
}

var errSymlink = errors.New("symlink")

// stat describes rel with one call of statFn (stat or lstat); errSymlink
// when lstat found a symlink.
func (l *Local) stat(rel string, statFn func(string) (fs.FileInfo, error)) (Original, error) {
	fi, err := statFn(filepath.Join(l.dir, rel))
	if err != nil {
		fi, err = l.root.Stat(rel)
	}
	if err != nil {
		return Original{}, missingOr404(err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return Original{}, errSymlink
	}
	if !fi.Mode().IsRegular() {
		return Original{}, fault.New(fault.NotFound, "", nil)
	}
	return describe(rel, fi), nil
}

func missingOr404(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ErrMissing
	}
	return fault.New(fault.NotFound, "", err)
}

func describe(rel string, fi fs.FileInfo) Original {
	return Original{Rel: rel, Size: fi.Size(), ModTime: fi.ModTime(), Identity: identity(rel, fi)}
}

// identity covers a replacement that keeps size and mtime (rsync -a): the
// inode and change time differ even then.
func identity(rel string, fi fs.FileInfo) string {
	var ino uint64
	var ctime int64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
		ctime = st.Ctim.Nano()
	}
	b := make([]byte, 0, len(rel)+80)
	b = append(b, "file:"...)
	b = append(b, rel...)
	for _, n := range [...]int64{fi.Size(), fi.ModTime().UnixNano(), int64(ino), ctime} {
		b = append(b, '|')
		b = strconv.AppendInt(b, n, 10)
	}
	return string(b)
}

// Open opens a regular file without ever blocking: O_NONBLOCK keeps a FIFO
// planted in the root from hanging the goroutine, and the type is checked
// on the opened descriptor so nothing can be swapped in between. The body
// is the *os.File itself, which the HTTP layer sends with sendfile.
func (l *Local) Open(_ context.Context, rel string) (Original, Body, error) {
	f, err := l.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return Original{}, nil, missingOr404(err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return Original{}, nil, fault.New(fault.NotFound, "", err)
	}
	o := describe(rel, fi)
	if l.meta != nil {
		l.meta.learn(rel, o)
	}
	return o, f, nil
}
