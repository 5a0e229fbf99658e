package cache

import (
	"context"

	"golang.org/x/sys/unix"
)

// Open is Get for a caller that can send a file (FileTier). An entry is
// read and its checksum checked on its first use in this process, and
// again whenever its file is another (fileID: size, times, inode); in
// between, a hit costs an open, an fstat and a read of the header and the
// value's head, and the rest goes out by sendfile unread; an entry of up
// to heldMax bytes is read whole, and its descriptor held for the next
// hits, which cost a stat of the path and a pread (disk_held.go). A value of up to
// whole bytes is read (and checked) every time: a faster tier keeps it.
func (t *diskTier) Open(ctx context.Context, key string, head int, whole int64) (Hit, bool) {
	name := diskName(key)
	head = min(max(head, 0), MaxHead)
	p := t.path(name)
	if hit, ok := t.openHeld(name, p, head, whole); ok {
		return hit, true
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.forget(name)
		return Hit{}, false
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		t.forget(name)
		return Hit{}, false
	}
	id, n := idOf(&st), st.Size-headerBytes
	checked := t.wasChecked(name, id, stOnDisk(&st))
	if checked && n > whole && n >= int64(head) {
		if f, ok := t.openChecked(name, id, fd, st.Size, head); ok {
			return Hit{Value: f.head(head), File: f}, true
		}
		// The header disagrees with the file: the full check below drops it.
	}
	defer unix.Close(fd)
	raw, err := readAt0(fd, st.Size)
	if err != nil {
		t.forget(name)
		return Hit{}, false
	}
	payload, ok := verify(raw)
	if !ok {
		t.drop(ctx, name, len(raw))
		return Hit{}, false
	}
	t.markChecked(name, id)
	return Hit{Value: payload}, true
}

// openChecked returns the checked entry name (id, size bytes) open at fd
// as a File: one of up to heldMax bytes read whole (and fd held for later
// hits), a larger one on fd. When it fails, fd stays open.
func (t *diskTier) openChecked(name string, id fileID, fd int, size int64, head int) (*File, bool) {
	if size > heldMax {
		return openFile(fd, size, head)
	}
	f, ok := readWhole(fd, size, head, t.pool(size))
	if ok {
		t.hold(name, id, fd)
	}
	return f, ok
}

// wasChecked reports whether entry name's file is still the one Open last
// read and found intact, and counts a use of the entry. An entry an
// earlier run stored is indexed here, unchecked.
func (t *diskTier) wasChecked(name string, id fileID, size int64) bool {
	t.mu.Lock()
	el, indexed := t.index[name]
	if indexed {
		t.lru.MoveToFront(el)
		same := el.Value.(*diskEntry).checked == id
		t.mu.Unlock()
		return same
	}
	t.mu.Unlock()
	t.add(name, size)
	return false
}

// markChecked records that entry name's file id was read and found
// intact; an entry dropped from the index meanwhile stays unrecorded.
func (t *diskTier) markChecked(name string, id fileID) {
	t.mu.Lock()
	if el, ok := t.index[name]; ok {
		el.Value.(*diskEntry).checked = id
	}
	t.mu.Unlock()
}

// readAt0 reads size bytes of fd from its start (fewer when the file is
// shorter: verify rejects that).
func readAt0(fd int, size int64) ([]byte, error) {
	out := make([]byte, max(size, 0))
	n := 0
	for n < len(out) {
		m, err := unix.Pread(fd, out[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return out[:n], nil
}

// stOnDisk is onDisk of an fstat.
func stOnDisk(st *unix.Stat_t) int64 { return max(st.Size, st.Blocks*512) }
