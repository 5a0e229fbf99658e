// Package vipsx is what the generated bindings (../vips) lack and transform
// needs: the VipsImage inside an Image, making an Image hold another
// VipsImage, libvips' error text, pixels held in memory, and an
// animation's frame geometry. The bindings are generated and not edited,
// so every reach into their unexported fields is here, in one place:
// regenerating them breaks this file alone, loudly.
package vipsx

/*
#cgo pkg-config: vips
#include <vips/vips.h>

static VipsImage *to_memory(VipsImage *in) { return vips_image_copy_memory(in); }
*/
import "C"

import (
	"errors"
	"reflect"
	"runtime"
	"unsafe"

	"image-proxy/transform/internal/vips"
)

// Ptr is the VipsImage* inside im, for C code of the caller's own. The
// caller keeps im alive while it uses the pointer.
func Ptr(im *vips.Image) unsafe.Pointer {
	return *(*unsafe.Pointer)(fieldAddr(im, "image", reflect.Pointer))
}

// Adopt makes im hold out (a VipsImage*), releasing what it held: the
// bindings' own setImage, which they do not export.
func Adopt(im *vips.Image, out unsafe.Pointer) {
	p := (**C.VipsImage)(unsafe.Pointer(fieldAddr(im, "image", reflect.Pointer)))
	old := *p
	*p = (*C.VipsImage)(out)
	// The cached page height belongs to the old image.
	*(*int)(fieldAddr(im, "pageHeight", reflect.Int)) = 0
	C.g_object_unref(C.gpointer(old))
}

// Take makes im hold other's image and closes other: an operation that
// makes a new Image (arrayjoin) replaces what im held, as the bindings'
// in-place operations do.
func Take(im, other *vips.Image) {
	p := Ptr(other)
	C.g_object_ref(C.gpointer(p))
	runtime.KeepAlive(other)
	Adopt(im, p)
	other.Close()
}

// ForgetSource drops the bindings' reference to the source bytes, which
// they keep for loaders that read them lazily: an image whose pixels are
// all in memory no longer reads them, and would otherwise hold the whole
// file in the Go heap for as long as it lives.
func ForgetSource(im *vips.Image) {
	*(*[]byte)(fieldAddr(im, "buf", reflect.Slice)) = nil
}

// HoldInMemory decodes every pixel of im into memory and makes im hold
// that copy: a loader streams, so without it every reader of im would
// decode the source again, and a step that reads out of order (a
// rotation) would fail on a sequential load.
func HoldInMemory(im *vips.Image) error {
	out := C.to_memory((*C.VipsImage)(Ptr(im)))
	runtime.KeepAlive(im)
	if out == nil {
		return Error()
	}
	Adopt(im, unsafe.Pointer(out))
	return nil
}

// Error takes libvips' error buffer (for logs only; never for clients).
func Error() error {
	msg := C.GoString(C.vips_error_buffer())
	C.vips_error_clear()
	return errors.New(msg)
}

// PageHeight is the height of one frame of im (all of it for a still).
func PageHeight(im *vips.Image) int {
	if ph := im.PageHeight(); ph > 0 && ph <= im.Height() && im.Height()%ph == 0 {
		return ph
	}
	return im.Height()
}

// Origin is where im's pixels were cut from the image they came from
// (libvips' extract_area and smartcrop record -left and -top in the
// image's offsets): left and top, as positive numbers.
func Origin(im *vips.Image) (left, top int) {
	p := (*C.VipsImage)(Ptr(im))
	left, top = -int(p.Xoffset), -int(p.Yoffset)
	runtime.KeepAlive(im)
	return left, top
}

// Pages is the number of frames stacked in im.
func Pages(im *vips.Image) int { return im.Height() / PageHeight(im) }

// fieldAddr is the address of an unexported field of the bindings' Image.
func fieldAddr(im *vips.Image, name string, kind reflect.Kind) unsafe.Pointer {
	f := reflect.ValueOf(im).Elem().FieldByName(name)
	if f.Kind() != kind {
		panic("vips.Image has no " + kind.String() + " field " + name)
	}
	return unsafe.Pointer(f.UnsafeAddr())
}

// wrap makes an Image of out, a VipsImage* the caller owned and the Image
// now owns: what the bindings' unexported constructor does.
func wrap(out unsafe.Pointer) *vips.Image {
	im := &vips.Image{}
	*(*unsafe.Pointer)(fieldAddr(im, "image", reflect.Pointer)) = out
	return im
}
