package cache

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"image-proxy/metrics"
)

// A disk tier whose writes fail keeps serving what it holds and tries
// again later: a full volume (shared with logs or other processes, or a
// cap set above its size) and a volume that is read-only or not ours for a
// while are ordinary, and neither should cost the process its cache until
// a restart. One warning opens an episode of failures, one line closes it
// when a write lands again.
const (
	// firstBackoff is the wait after the first failed write; each failure
	// after a retry doubles it, up to maxBackoff. A retry costs one failed
	// write, so a minute bounds how long a freed volume stays unused.
	firstBackoff = time.Second
	maxBackoff   = time.Minute
	// measureEvery spaces the looks at the volume's free space while the
	// tier holds itself below its configured capacity: how soon it grows
	// back once space is freed.
	measureEvery = 30 * time.Second
	// fullMargin: after the volume filled up, the tier leaves 1/fullMargin
	// of what would fit free, so the next writes and the volume's other
	// users have room, and the tier does not fill it to the brim again.
	fullMargin = 16
)

// writeBackoff decides when the disk tier may write after a failure. The
// request path only reads a timestamp: no sleeping, no timer.
type writeBackoff struct {
	now     func() time.Time
	retryAt atomic.Int64 // unix nanoseconds; 0 while writes succeed

	mu    sync.Mutex
	delay time.Duration // the wait after the next failure
}

// allow reports whether a write may be tried now and returns the token
// that write hands to succeeded. While writes succeed it reads no clock.
func (b *writeBackoff) allow() (token int64, ok bool) {
	at := b.retryAt.Load()
	if at == 0 {
		return 0, true
	}
	return at, b.now().UnixNano() >= at
}

// failed records a failed write. first: it opens an episode (writes were
// succeeding). fresh: no other failure has already started the current
// wait, so this one is the episode's news (concurrent writes failing
// together shrink and double the wait once). wait is the back-off.
func (b *writeBackoff) failed() (first, fresh bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now().UnixNano()
	at := b.retryAt.Load()
	if at != 0 && now < at {
		return false, false, time.Duration(at - now)
	}
	first = at == 0
	if first {
		b.delay = firstBackoff
	}
	wait = b.delay
	b.retryAt.Store(now + int64(wait))
	b.delay = min(2*b.delay, maxBackoff)
	return first, true, wait
}

// succeeded records a write that landed, tried with token from allow, and
// reports whether it closes an episode. A write that began before the
// latest failure (its token is older) proves nothing about the volume now.
func (b *writeBackoff) succeeded(token int64) bool {
	if token == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.retryAt.Load() != token {
		return false
	}
	b.retryAt.Store(0)
	return true
}

// failureReason is the metrics reason of a failed write: a volume or quota
// that is full is a capacity signal the tier answers by evicting; anything
// else it can only wait out.
func failureReason(err error) string {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return metrics.DiskWriteFull
	}
	return metrics.DiskWriteError
}

// freeBytes is the space unprivileged writers may still use on the volume
// holding dir.
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// onDisk is the space a file takes: its allocated blocks, and never less
// than its length (a file system may allocate lazily, or keep small files
// inline). Counting blocks rather than lengths keeps the capacity honest
// for small entries, which take a whole block each.
func onDisk(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return max(fi.Size(), st.Blocks*512)
	}
	return fi.Size()
}

// writeFile writes buf to a new temp file in tmpDir and hands it to place,
// which renames it into the store: a reader sees the old entry, the new
// one or none, never part of one. The tier writes the temp file itself,
// rather than through diskv.Write, so that a failure keeps its errno (a
// full volume is told apart from the rest) and a failed write, whichever
// step failed, leaves no temp file behind. It returns the space the entry
// takes.
func writeFile(tmpDir string, buf []byte, place func(tmp string) error) (int64, error) {
	f, err := os.CreateTemp(tmpDir, "entry")
	if errors.Is(err, os.ErrNotExist) { // removed under us: make it again
		if err = os.MkdirAll(tmpDir, 0o755); err == nil {
			f, err = os.CreateTemp(tmpDir, "entry")
		}
	}
	if err != nil {
		return 0, err
	}
	size, err := fill(f, buf)
	if err == nil {
		err = place(f.Name())
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, err
	}
	return size, nil
}

// fill writes buf to f, readable by other users as entries always were,
// closes f and returns the space it takes.
func fill(f *os.File, buf []byte) (int64, error) {
	_, err := f.Write(buf)
	if err == nil {
		err = f.Chmod(0o644)
	}
	var size int64
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil {
			size = onDisk(fi)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return size, err
}
