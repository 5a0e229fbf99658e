package cache

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Held descriptors: the disk tier keeps the file of a recently served,
// checked entry of up to heldMax bytes open, so that a hit on it costs a
// stat of its path and one pread instead of an open, an fstat, a read and
// a close. The stat is what notices a rewrite or a rename over the entry:
// the descriptor is used only while the path's fileID is the one the
// entry was checked as and the descriptor was opened at (the same inode,
// which an open descriptor keeps from being reused, and the same size and
// times), so a held descriptor serves exactly what a fresh open would.
// pread names its offset, so concurrent hits share one descriptor.
//
// At most maxHeld are open, taken in turn (a ring); an entry's descriptor
// is closed when the entry leaves the index (evicted, purged, dropped,
// forgotten) or is written again, so a held file never pins the space of a
// removed one, and by the last hit reading it when that is later.

const (
	maxHeld = 128
	heldMax = 64 << 10 // the largest entry read whole into a pooled buffer from a held descriptor
)

// heldFD is the open descriptor of a checked entry's file. refs and dead
// are under diskTier.mu.
type heldFD struct {
	fd   int
	id   fileID
	refs int  // hits reading it now
	dead bool // let go: the last reader closes it
}

// heldRing is the turn in which held descriptors are let go.
type heldRing struct {
	slots [maxHeld]*diskEntry
	hand  int
}

// openHeld serves entry name at path p from its held descriptor; false
// when it has none that is still the file at p (the caller opens it).
func (t *diskTier) openHeld(name, p string, head int, whole int64) (Hit, bool) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return Hit{}, false
	}
	id, n := idOf(&st), st.Size-headerBytes
	if n <= whole || n < int64(head) {
		return Hit{}, false
	}
	h := t.acquireHeld(name, id)
	if h == nil {
		return Hit{}, false
	}
	f, ok := readWhole(h.fd, st.Size, head, t.pool(st.Size))
	t.releaseHeld(h)
	if !ok {
		return Hit{}, false
	}
	return Hit{Value: f.head(head), File: f}, true
}

// pool is the buffer pool for an entry of size bytes read whole.
func (t *diskTier) pool(size int64) *wholePool {
	if size <= smallFile {
		return &t.small
	}
	return &t.medium
}

// acquireHeld is entry name's held descriptor, counted as in use, when the
// entry is indexed, was checked as id and holds a descriptor of id; it
// counts a use of the entry.
func (t *diskTier) acquireHeld(name string, id fileID) *heldFD {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.index[name]
	if !ok {
		return nil
	}
	e := el.Value.(*diskEntry)
	if e.checked != id || e.held == nil || e.held.id != id {
		return nil
	}
	t.lru.MoveToFront(el)
	e.held.refs++
	return e.held
}

func (t *diskTier) releaseHeld(h *heldFD) {
	t.mu.Lock()
	h.refs--
	if h.dead && h.refs == 0 {
		unix.Close(h.fd)
	}
	t.mu.Unlock()
}

// hold keeps fd, entry name's file checked as id, open for later hits, or
// closes it when the entry is gone, is another file now, or already holds
// one of id. It lets go of the descriptor whose turn it is.
func (t *diskTier) hold(name string, id fileID, fd int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.index[name]
	if !ok || el.Value.(*diskEntry).checked != id {
		unix.Close(fd)
		return
	}
	e := el.Value.(*diskEntry)
	switch {
	case e.held != nil && e.held.id == id:
		unix.Close(fd)
		return
	case e.held != nil:
		t.letGoLocked(e)
		e.held = &heldFD{fd: fd, id: id}
		return // keeps its turn
	}
	r := &t.ring
	if old := r.slots[r.hand]; old != nil {
		t.letGoLocked(old)
	}
	e.held = &heldFD{fd: fd, id: id}
	r.slots[r.hand] = e
	r.hand = (r.hand + 1) % maxHeld
}

// letGoLocked lets go of e's held descriptor, if any; t.mu is held.
func (t *diskTier) letGoLocked(e *diskEntry) {
	h := e.held
	if h == nil {
		return
	}
	e.held = nil
	h.dead = true
	if h.refs == 0 {
		unix.Close(h.fd)
	}
}

// heldCount is how many descriptors are held, for tests.
func (t *diskTier) heldCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	held := map[*heldFD]bool{}
	for _, e := range t.ring.slots {
		if e != nil && e.held != nil {
			held[e.held] = true
		}
	}
	return len(held)
}

// letGoAll closes every held descriptor (Close).
func (t *diskTier) letGoAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, e := range t.ring.slots {
		if e != nil {
			t.letGoLocked(e)
		}
		t.ring.slots[i] = nil
	}
}

// wholePool is a pool of buffers of one length for entries read whole.
type wholePool struct {
	sync.Pool
	size int
}
