package cache

import (
	"context"
	"encoding/binary"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// Hit is a value found by Cache.Open: its bytes, or, from a tier that keeps
// entries in files (the disk tier), its first bytes and an open section of
// the entry's file holding the rest, which the caller sends without reading
// it (sendfile) and closes.
type Hit struct {
	// Value is the whole value when File is nil; else its first bytes (as
	// many as Open's head asked for), and File the rest.
	Value []byte
	File  *File
}

// FileTier is a tier that can hand out a stored value as a file (the disk
// tier). Open is Get, except that a value longer than whole bytes whose
// file has been checked before comes back as a File behind its first head
// bytes, unread; one of up to whole bytes comes back as bytes, since a
// faster tier will keep it.
type FileTier interface {
	Open(ctx context.Context, key string, head int, whole int64) (Hit, bool)
}

// MaxHead is the most of a value Open reads into memory ahead of a File.
const MaxHead = 16

// File is the rest of a stored value: a read-only descriptor of the entry's
// file, positioned where the value's head ends, and how many bytes are
// left. Its WriteTo hands a net.TCPConn (or a bufio.Writer over one, as
// fasthttp's writer is) a *io.LimitedReader over a syscall.Conn, which net
// sends with sendfile(2): the bytes never enter the process. Close it
// once; an unlinked entry (evicted, purged, overwritten) stays readable
// until then.
type File struct {
	fd   fdReader
	rest io.LimitedReader // of &fd
	hdr  [headerBytes + MaxHead]byte
	// A small entry is read whole in one read, its descriptor closed at
	// once: mem is the rest of the value in buf, a buffer of pool.
	mem  []byte
	buf  *[]byte
	pool *wholePool
}

// smallFile is the largest entry Open reads whole into a pooled buffer
// rather than sending from its descriptor: one read instead of two, and
// below fasthttp's 8 KB the body is copied into its write buffer anyway.
const smallFile = 8 << 10

// readWhole reads the entry of size bytes (at most pool's length) whole
// from fd, at offset 0 (a held descriptor is shared), into a buffer of
// pool, and returns it as a File of the value past its first head bytes;
// false when the header does not say what size does.
func readWhole(fd int, size int64, head int, pool *wholePool) (*File, bool) {
	if size > int64(pool.size) || size < headerBytes+int64(head) {
		return nil, false
	}
	bp, _ := pool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, pool.size)
		bp = &b
	}
	raw := (*bp)[:size]
	n, err := preadRetry(fd, raw)
	if err != nil || int64(n) != size || string(raw[:4]) != entryMagic ||
		binary.BigEndian.Uint64(raw[4:]) != uint64(size-headerBytes) {
		pool.Put(bp)
		return nil, false
	}
	f := &File{fd: fdReader{-1}, buf: bp, pool: pool, mem: raw[headerBytes+head:]}
	copy(f.hdr[headerBytes:], raw[headerBytes:headerBytes+head])
	return f, true
}

// preadRetry is one pread of b at offset 0, retried on EINTR.
func preadRetry(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Pread(fd, b, 0)
		if err != unix.EINTR {
			return max(n, 0), err
		}
	}
}

// openFile reads the entry header and the value's first head bytes from
// fd, the open entry of size bytes, and returns the rest as a File; false
// when the header does not say what size does (the file changed).
func openFile(fd int, size int64, head int) (*File, bool) {
	f := &File{fd: fdReader{fd}}
	want := headerBytes + head
	n, err := readRetry(fd, f.hdr[:want])
	if err != nil || n != want || string(f.hdr[:4]) != entryMagic ||
		binary.BigEndian.Uint64(f.hdr[4:]) != uint64(size-headerBytes) {
		return nil, false
	}
	f.rest = io.LimitedReader{R: &f.fd, N: size - int64(want)}
	return f, true
}

// head is the value's first bytes, read by openFile.
func (f *File) head(n int) []byte { return f.hdr[headerBytes : headerBytes+n] }

// Len is how many bytes of the value are left to send.
func (f *File) Len() int64 {
	if f.buf != nil {
		return int64(len(f.mem))
	}
	return f.rest.N
}

// Read reads the value on from where the File is (a client that is not a
// plain TCP connection gets the bytes this way).
func (f *File) Read(p []byte) (int, error) {
	if f.buf != nil {
		if len(f.mem) == 0 {
			return 0, io.EOF
		}
		n := copy(p, f.mem)
		f.mem = f.mem[n:]
		return n, nil
	}
	return f.rest.Read(p)
}

// WriteTo sends the rest of the value to w: with sendfile when w passes a
// reader on to a TCP connection (io.ReaderFrom), by reads otherwise.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	if f.buf != nil {
		n, err := w.Write(f.mem)
		f.mem = f.mem[n:]
		return int64(n), err
	}
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(&f.rest)
	}
	var buf [8 << 10]byte
	return io.CopyBuffer(w, struct{ io.Reader }{&f.rest}, buf[:])
}

// Close releases the descriptor, or gives a small entry's buffer back.
func (f *File) Close() error {
	if f.buf != nil {
		f.pool.Put(f.buf)
		f.buf, f.mem = nil, nil
		return nil
	}
	if f.fd.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd.fd)
	f.fd.fd = -1
	return err
}

// fdReader reads a regular file's descriptor from its current position.
// It is a syscall.Conn, so that net's sendfile path takes it as it takes an
// *os.File, without what an *os.File costs per hit (its allocation, the
// poller registration attempt, a cleanup).
type fdReader struct{ fd int }

func (r *fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := readRetry(r.fd, p)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *fdReader) SyscallConn() (syscall.RawConn, error) { return (*fdConn)(r), nil }

// fdConn is fdReader's syscall.RawConn: a regular file never blocks, so
// each function runs once.
type fdConn fdReader

func (c *fdConn) Control(f func(fd uintptr)) error { f(uintptr(c.fd)); return nil }

func (c *fdConn) Read(f func(fd uintptr) bool) error { f(uintptr(c.fd)); return nil }

func (c *fdConn) Write(f func(fd uintptr) bool) error { f(uintptr(c.fd)); return nil }
