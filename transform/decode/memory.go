package decode

/*
#cgo pkg-config: vips
#include <sys/mman.h>
#include <vips/vips.h>

// A decode kept in the cache lives seconds among the short-lived buffers of
// renders; in malloc's heap it would pin the arena pages around it, so it
// is mapped on its own and unmapped when the image closes.
typedef struct { void *p; size_t n; } mapping;

static void unmap_pixels(VipsImage *im, gpointer data) {
	mapping *m = data;
	munmap(m->p, m->n);
	g_free(m);
}

static VipsImage *to_mapped_memory(VipsImage *in) {
	size_t n = VIPS_IMAGE_SIZEOF_IMAGE(in);
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		vips_error("image-proxy", "cannot map %zu bytes", n);
		return NULL;
	}
	VipsImage *out = vips_image_new_from_memory(p, n, in->Xsize, in->Ysize, in->Bands, in->BandFmt);
	if (!out) {
		munmap(p, n);
		return NULL;
	}
	mapping *m = g_new(mapping, 1);
	m->p = p;
	m->n = n;
	g_signal_connect(out, "postclose", G_CALLBACK(unmap_pixels), m);
	if (vips_image_write(in, out)) {
		g_object_unref(out);
		return NULL;
	}
	return out;
}

static guint64 image_bytes(VipsImage *im) { return VIPS_IMAGE_SIZEOF_IMAGE(im); }
static guint64 pel_bytes(VipsImage *im) { return VIPS_IMAGE_SIZEOF_PEL(im); }
*/
import "C"

import (
	"runtime"
	"unsafe"

	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// holdMapped is vipsx.HoldInMemory for a decode the cache keeps: every
// pixel decoded into a mapping of its own. The kept decode no longer reads
// the source bytes, so the bindings' reference to them is dropped.
func holdMapped(im *vips.Image) error {
	out := C.to_mapped_memory(cImage(im))
	runtime.KeepAlive(im)
	if out == nil {
		return vipsx.Error()
	}
	vipsx.Adopt(im, unsafe.Pointer(out))
	vipsx.ForgetSource(im)
	return nil
}

// imageBytes is the memory of an image held in memory.
func imageBytes(im *vips.Image) int64 {
	n := int64(C.image_bytes(cImage(im)))
	runtime.KeepAlive(im)
	return n
}

// pelBytes is the size of one pixel of im: bands × sample size.
func pelBytes(im *vips.Image) int {
	n := int(C.pel_bytes(cImage(im)))
	runtime.KeepAlive(im)
	return n
}

func cImage(im *vips.Image) *C.VipsImage { return (*C.VipsImage)(vipsx.Ptr(im)) }
