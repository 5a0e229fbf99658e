package vipsx

/*
#cgo pkg-config: vips
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vips/vips.h>

// libvips 8.14 reads and writes its own format (.v) only by file name:
// vipsload_source and vipssave_target refuse a source or target without
// one. The bytes are kept in an anonymous memory file instead, named by
// /proc/self/fd/N: nothing touches a disk, and nothing is left behind.
static int anon_file(void) { return memfd_create("image-proxy-decode", MFD_CLOEXEC); }

// load_v and save_v build their operation outside libvips' operation
// cache, which keys a loader by its file name: a /proc/self/fd name is
// reused for other bytes.
static VipsImage *load_v(const char *name) {
	VipsOperation *op = vips_operation_new("vipsload");
	if (!op)
		return NULL;
	VipsImage *out = NULL;
	g_object_set(op, "filename", name, NULL);
	if (!vips_object_build(VIPS_OBJECT(op)))
		g_object_get(op, "out", &out, NULL);
	vips_object_unref_outputs(VIPS_OBJECT(op));
	g_object_unref(op);
	return out;
}

static int save_v(VipsImage *in, const char *name) {
	VipsOperation *op = vips_operation_new("vipssave");
	if (!op)
		return -1;
	g_object_set(op, "in", in, "filename", name, NULL);
	int rc = vips_object_build(VIPS_OBJECT(op));
	vips_object_unref_outputs(VIPS_OBJECT(op));
	g_object_unref(op);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"image-proxy/transform/internal/vips"
)

// VFiles turns images into libvips' own format (.v: the header, every
// pixel as stored, every metadata field) and back, in memory: a decode
// kept beyond the process is restored exactly, pixels and metadata, so
// what is rendered from it is what is rendered from the decode. The zero
// value is ready; Close it when done.
type VFiles struct {
	once sync.Once
	dir  string // where the saves' .v names live, as links: the saver wants a .v name
	err  error
	next atomic.Uint64
}

// linkDir makes, on first use, the directory the saves' names live in.
func (v *VFiles) linkDir() (string, error) {
	v.once.Do(func() { v.dir, v.err = os.MkdirTemp("", "image-proxy-decodes-") })
	return v.dir, v.err
}

// Close removes the directory, once no Save runs.
func (v *VFiles) Close() error {
	v.once.Do(func() {}) // a Save after Close fails instead of making one
	if v.dir == "" {
		return nil
	}
	return os.RemoveAll(v.dir)
}

// Save writes im in libvips' format and returns the bytes. The saver
// wants a file name ending in .v: a link of that name to the memory file.
func (v *VFiles) Save(im *vips.Image) ([]byte, error) {
	dir, err := v.linkDir()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("saving a decode after Close")
	}
	f, err := anonFile()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	link := filepath.Join(dir, strconv.FormatUint(v.next.Add(1), 10)+".v")
	if err := os.Symlink(fdName(f), link); err != nil {
		return nil, err
	}
	defer os.Remove(link)
	name := C.CString(link)
	defer C.free(unsafe.Pointer(name))
	rc := C.save_v((*C.VipsImage)(Ptr(im)), name)
	runtime.KeepAlive(im)
	if rc != 0 {
		return nil, Error()
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, err
	}
	return data, nil
}

// Load reads what Save wrote. The image's pixels are mapped from a memory
// file of their own, freed when the image closes; data is not kept.
func (v *VFiles) Load(data []byte) (*vips.Image, error) {
	f, err := anonFile()
	if err != nil {
		return nil, err
	}
	// libvips opens the name again and keeps its own descriptor.
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return nil, err
	}
	name := C.CString(fdName(f))
	defer C.free(unsafe.Pointer(name))
	out := C.load_v(name)
	if out == nil {
		return nil, Error()
	}
	return wrap(unsafe.Pointer(out)), nil
}

func anonFile() (*os.File, error) {
	fd, err := C.anon_file()
	if fd < 0 {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), "decode"), nil
}

// fdName names f's open file for a library that wants a name.
func fdName(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }
