package proxy

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// source is what we know of an image before reading it. identity changes
// whenever the bytes may have changed; it feeds cache keys and ETags.
type source struct {
	rel      string
	size     int64
	modTime  time.Time
	identity string
	data     []byte // set for fallback sources, which arrive as bytes
}

// localFiles reads sources under the root. os.Root refuses every path,
// symlink included, that would resolve outside the root; every open goes
// through it.
type localFiles struct {
	root *os.Root
	dir  string // the root's path, for the stat fast path
}

// errMissing means no file exists at the path, so the fallback may be asked.
var errMissing = errors.New("no such file")

// stat describes rel for cache keys and ETags. The common case uses one
// plain stat (os.Root.Stat costs several syscalls a lookup, a third of a
// cache hit's time); that is safe because rel has already been checked
// lexically, and a stat opens nothing: the file is only ever read through
// os.Root, which refuses a symlink out of the root at render time. Any
// failure is classified by os.Root itself, so an escaping or dangling
// symlink is a 404 rather than a reason to ask the fallback upstream.
func (l localFiles) stat(rel string) (source, error) {
	fi, err := os.Stat(filepath.Join(l.dir, rel))
	if err != nil {
		fi, err = l.root.Stat(rel)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return source{}, errMissing
		}
		return source{}, fail(kindNotFound, "", err)
	}
	if !fi.Mode().IsRegular() {
		return source{}, fail(kindNotFound, "", nil)
	}
	return source{rel: rel, size: fi.Size(), modTime: fi.ModTime(), identity: identity(rel, fi)}, nil
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

// open opens a regular file without ever blocking: O_NONBLOCK keeps a FIFO
// planted in the root from hanging the goroutine, and the type is checked
// on the opened descriptor so nothing can be swapped in between.
func (l localFiles) open(rel string) (*os.File, fs.FileInfo, error) {
	f, err := l.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil, errMissing
		}
		return nil, nil, fail(kindNotFound, "", err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fail(kindNotFound, "", err)
	}
	return f, fi, nil
}

// read returns the whole file, refusing one over limit bytes.
func (l localFiles) read(rel string, limit int64) ([]byte, error) {
	f, fi, err := l.open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, errSourceTooBig
	}
	buf := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fail(kindUnprocessable, "", err)
	}
	return buf, nil
}

var errSourceTooBig = fail(kindUnprocessable, "The source image is larger than this server transforms.", nil)
