package origin

import (
	"errors"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// The stat cache keeps what Local.Stat learnt about a file so a cache hit
// needs no system call, and never trusts it longer than this:
//
//   - An entry is used only while an inotify watch on its directory (and on
//     every directory between it and the root) is live, and only if no
//     event for that directory has been processed since the entry's stat.
//     The watch is in place before the stat, so every change after the stat
//     produces an event; the staleness window is the time between the
//     change and our goroutine reading its event (normally well under a
//     millisecond, longer only when the process is starved of CPU).
//   - Whatever inotify cannot see (a write through a hard link in another
//     directory, a write through a shared mmap, a change made on another
//     host of a network file system) is bounded by maxAge: an entry older
//     than that is stat'ed again.
//   - Where watches are unavailable — the watch limit is reached (ENOSPC,
//     or our own cap), the directory is on a network or FUSE file system
//     (inotify misses remote changes there), or a path component is a
//     symlink to a file — every request stats, as before.
type statCache struct {
	root       string // absolute or as configured; watches use root-joined paths
	maxAge     time.Duration
	maxWatches int
	now        func() time.Time
	sys        sysCalls
	log        *slog.Logger
	watches    prometheus.Gauge

	entries sync.Map // rel → *statEntry
	count   atomic.Int64

	mu        sync.Mutex
	w         *fsnotify.Watcher
	dirs      map[string]*dirState // by watched path; a dir's ancestors are always here too
	inodes    map[fileID]string    // watched directories by inode
	fullUntil time.Time            // after ENOSPC, no new watch is tried before this
	skip      map[string]time.Time // directories found unwatchable, not probed again before then
	warned    map[string]bool      // fallback reasons already logged
	done      chan struct{}
}

// maxStatEntries bounds the entries kept: past it the cache starts over,
// so a tree of millions of files costs at most a few tens of MB.
const maxStatEntries = 100_000

// defaultMaxWatches is our own cap on inotify watches (one per directory
// served from, plus its ancestors), below the kernel's per-user limit on
// most systems, so other programs keep theirs.
const defaultMaxWatches = 8192

// watchRetry is how long after ENOSPC no new watch is tried.
const watchRetry = time.Minute

type dirState struct {
	id   fileID
	gen  atomic.Uint64 // bumped by every event in the directory
	live atomic.Bool   // false once the watch is gone: entries are not trusted
}

type statEntry struct {
	o   Original
	dir *dirState
	gen uint64
	at  time.Time
}

func newStatCache(root string, o localOptions) (*statCache, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	c := &statCache{
		root: filepath.Clean(root), maxAge: o.maxAge, maxWatches: o.maxWatches, now: o.now, sys: o.sys,
		log: o.log, watches: o.m.StatCacheWatches, w: w, dirs: map[string]*dirState{}, inodes: map[fileID]string{}, skip: map[string]time.Time{}, warned: map[string]bool{}, done: make(chan struct{}),
	}
	go c.run()
	return c, nil
}

func (c *statCache) close() error {
	err := c.w.Close()
	<-c.done
	return err
}

// lookup is the hit path: a map load, two atomic loads and a clock read.
func (c *statCache) lookup(rel string) (Original, bool) {
	v, ok := c.entries.Load(rel)
	if !ok {
		return Original{}, false
	}
	e := v.(*statEntry)
	if !e.dir.live.Load() || e.dir.gen.Load() != e.gen || c.now().Sub(e.at) >= c.maxAge {
		return Original{}, false
	}
	return e.o, true
}

// store keeps o, stat'ed after watch returned (d, gen).
func (c *statCache) store(rel string, o Original, d *dirState, gen uint64) {
	e := &statEntry{o: o, dir: d, gen: gen, at: c.now()}
	if _, loaded := c.entries.Swap(strings.Clone(rel), e); !loaded {
		if c.count.Add(1) > maxStatEntries {
			c.entries.Clear()
			c.count.Store(0)
		}
	}
}

// learn drops rel's entry when o, just read from the opened file, says
// the file is no longer the one described: inotify tells the same a little
// later, but a request that found the change (origin.ReadAll) starts over
// at once and must see the new identity.
func (c *statCache) learn(rel string, o Original) {
	v, ok := c.entries.Load(rel)
	if ok && v.(*statEntry).o.Identity != o.Identity && c.entries.CompareAndDelete(rel, v) {
		c.count.Add(-1)
	}
}

// watch makes sure rel's directory and its ancestors are watched and
// returns the directory's state and generation, to be read before the
// stat. nil means "cannot watch: stat every time".
func (c *statCache) watch(rel string) (*dirState, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := path.Dir(rel)
	if d := c.dirs[c.abs(dir)]; d != nil {
		return d, d.gen.Load()
	}
	var d *dirState
	for _, p := range ancestors(dir) {
		if d = c.addLocked(c.abs(p)); d == nil {
			return nil, 0
		}
	}
	return d, d.gen.Load()
}

// ancestors lists "." and every prefix of dir, root first.
func ancestors(dir string) []string {
	out := []string{"."}
	if dir == "." {
		return out
	}
	for i := 0; i < len(dir); i++ {
		if dir[i] == '/' {
			out = append(out, dir[:i])
		}
	}
	return append(out, dir)
}

func (c *statCache) abs(dir string) string { return filepath.Join(c.root, dir) }

// addLocked watches p unless it already is; nil when it cannot be.
func (c *statCache) addLocked(p string) *dirState {
	if d := c.dirs[p]; d != nil {
		return d
	}
	if c.now().Before(c.fullUntil) {
		return nil
	}
	if len(c.dirs) >= c.maxWatches {
		c.fallback("watch cap reached", p, nil)
		return nil
	}
	if until, ok := c.skip[p]; ok && c.now().Before(until) {
		return nil // every request here stats, but probes nothing more
	}
	id, ok := c.dirID(p)
	if !ok {
		return nil
	}
	magic, err := c.sys.fsMagic(p)
	if err != nil {
		return nil // gone or unreadable: the stat says what it is
	}
	if name := remoteFS(magic); name != "" {
		c.fallback("network or FUSE file system ("+name+"): inotify misses remote changes", p, nil)
		c.skipLocked(p)
		return nil
	}
	if err := c.w.Add(p); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			c.fullUntil = c.now().Add(watchRetry)
			c.fallback("inotify watch limit reached (fs.inotify.max_user_watches)", p, err)
		}
		return nil
	}
	d := &dirState{id: id}
	d.live.Store(true)
	c.dirs[p] = d
	c.inodes[id] = p
	c.watches.Set(float64(len(c.dirs)))
	return d
}

// skipLocked remembers p as unwatchable for watchRetry; the set is bounded
// like the watches.
func (c *statCache) skipLocked(p string) {
	if len(c.skip) >= c.maxWatches {
		clear(c.skip)
	}
	c.skip[p] = c.now().Add(watchRetry)
}

// dirID identifies the directory at p, refusing a symlink below the root
// and a directory already watched under another path (a bind mount):
// inotify reports each inode's events under one path only, so a second
// path to it would never see its changes.
func (c *statCache) dirID(p string) (fileID, bool) {
	// The root itself may be a symlink; inotify follows it.
	st, err := c.sys.statDir(p, p == c.root)
	if err != nil {
		return fileID{}, false // missing: not remembered, it may be created
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		c.fallback("symlinked directory", p, nil)
		c.skipLocked(p)
		return fileID{}, false
	}
	id := fileID{dev: uint64(st.Dev), ino: st.Ino}
	if other, ok := c.inodes[id]; ok && other != p {
		c.fallback("directory reachable under two paths", p, nil)
		c.skipLocked(p)
		return fileID{}, false
	}
	return id, true
}

type fileID struct{ dev, ino uint64 }

// fallback logs each reason once.
func (c *statCache) fallback(reason, dir string, err error) {
	if c.warned[reason] {
		return
	}
	c.warned[reason] = true
	c.log.Warn("stat cache: not watching, every request stats files here", "reason", reason, "dir", dir, "err", err)
}

// run applies events until the watcher is closed.
func (c *statCache) run() {
	defer close(c.done)
	for {
		select {
		case ev, ok := <-c.w.Events:
			if !ok {
				return
			}
			c.apply(ev)
		case err, ok := <-c.w.Errors:
			if !ok {
				return
			}
			// An overflow lost events; any other error may have too.
			c.log.Warn("stat cache: watch error, forgetting every entry", "err", err)
			c.reset()
		}
	}
}

// apply invalidates the event's directory; when the name is itself a
// watched directory (renamed, removed, replaced), that directory and all
// below it stop being trusted and are watched afresh on their next use.
func (c *statCache) apply(ev fsnotify.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.dirs[filepath.Dir(ev.Name)]; d != nil {
		d.gen.Add(1)
	}
	if d := c.dirs[ev.Name]; d != nil {
		prefix := ev.Name + "/"
		for p, d := range c.dirs {
			if p == ev.Name || strings.HasPrefix(p, prefix) {
				c.dropLocked(p, d)
			}
		}
	}
}

func (c *statCache) dropLocked(p string, d *dirState) {
	d.live.Store(false)
	delete(c.dirs, p)
	c.watches.Set(float64(len(c.dirs)))
	if c.inodes[d.id] == p {
		delete(c.inodes, d.id)
	}
	c.w.Remove(p) // may be gone already: the kernel drops a deleted directory's watch
}

// reset distrusts everything and drops every watch.
func (c *statCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, d := range c.dirs {
		c.dropLocked(p, d)
	}
}

// statDir describes the directory at p, or the symlink there unless follow.
func statDir(p string, follow bool) (unix.Stat_t, error) {
	var st unix.Stat_t
	if follow {
		return st, unix.Stat(p, &st)
	}
	return st, unix.Lstat(p, &st)
}

// statfsMagic is the file system type of dir.
func statfsMagic(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil
}

// remoteFS names the file systems where inotify sees only local changes:
// network file systems and FUSE (sshfs, s3fs, rclone, gcsfuse, …). "" for
// every other one.
func remoteFS(magic int64) string {
	switch magic {
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	case unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC:
		return "smb"
	case unix.FUSE_SUPER_MAGIC:
		return "fuse"
	case unix.V9FS_MAGIC:
		return "9p"
	case unix.CEPH_SUPER_MAGIC:
		return "ceph"
	case unix.AFS_SUPER_MAGIC, unix.AFS_FS_MAGIC:
		return "afs"
	case unix.CODA_SUPER_MAGIC:
		return "coda"
	case unix.OCFS2_SUPER_MAGIC:
		return "ocfs2"
	case gfs2Magic:
		return "gfs2"
	case lustreMagic:
		return "lustre"
	}
	return ""
}

// Cluster file systems x/sys/unix has no constant for.
const (
	gfs2Magic   = 0x01161970
	lustreMagic = 0x0bd00bd0
)
