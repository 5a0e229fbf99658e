package transform

/*
#cgo pkg-config: vips
#include <stdlib.h>
#include <vips/vips.h>

// libvips 8.14's webpsave writes EXIF and XMP chunks even with strip set,
// so every saver gets a copy with the metadata fields removed.
static VipsImage *without_metadata(VipsImage *in) {
	VipsImage *out;
	if (vips_copy(in, &out, NULL))
		return NULL;
	gchar **fields = vips_image_get_fields(out);
	static const char *prefixes[] = {"exif-", "xmp-", "iptc-", "icc-", "png-comment", "gif-comment", "orientation"};
	for (int i = 0; fields[i]; i++)
		for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++)
			if (g_str_has_prefix(fields[i], prefixes[p])) {
				vips_image_remove(out, fields[i]);
				break;
			}
	g_strfreev(fields);
	return out;
}

// The generated savers drop options whose value is zero, so quality 0,
// WebP effort 0 or PNG compression 0 would silently become libvips'
// defaults. These call each saver with every option we set, explicitly.
static int save_jpeg(VipsImage *in, void **buf, size_t *len, int q) {
	return vips_jpegsave_buffer(in, buf, len, "Q", q, "optimize_coding", TRUE, "strip", TRUE, NULL);
}
static int save_png(VipsImage *in, void **buf, size_t *len, int compression) {
	return vips_pngsave_buffer(in, buf, len, "compression", compression, "strip", TRUE, NULL);
}
// libvips 8.14's webpsave leaks about 0.5 MB whenever its input fails
// while it writes (a truncated source: libvips PR #4107 fixed it later), and
// errors are not cached, so one broken file asked at many sizes would grow
// the process without bound. A still image is decoded into memory first so
// that any failure happens before the saver starts; an animation is saved
// directly rather than holding every frame.
static int save_webp(VipsImage *in, void **buf, size_t *len, int q, int effort) {
	if (vips_image_get_page_height(in) < in->Ysize)
		return vips_webpsave_buffer(in, buf, len, "Q", q, "effort", effort, "strip", TRUE, NULL);
	VipsImage *mem = vips_image_copy_memory(in);
	if (!mem)
		return -1;
	int rc = vips_webpsave_buffer(mem, buf, len, "Q", q, "effort", effort, "strip", TRUE, NULL);
	g_object_unref(mem);
	return rc;
}
static int save_gif(VipsImage *in, void **buf, size_t *len) {
	return vips_gifsave_buffer(in, buf, len, "strip", TRUE, NULL);
}
static int save_avif(VipsImage *in, void **buf, size_t *len, int q, int effort) {
	return vips_heifsave_buffer(in, buf, len, "Q", q, "effort", effort, "bitdepth", 8,
		"compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "strip", TRUE, NULL);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// cImage is the VipsImage inside a generated Image, for the savers above.
func cImage(im *vips.Image) *C.VipsImage { return (*C.VipsImage)(vipsx.Ptr(im)) }

// saver encodes in (already stripped of metadata) with the record's
// quality, 0 when the format has none.
type saver func(in *C.VipsImage, quality int, c Config) ([]byte, error)

// encode writes out with every metadata block (EXIF, XMP, IPTC, ICC) stripped.
// quality, when not 0, replaces the format's configured quality (formats
// without one ignore it).
func (e *Engine) encode(im *vips.Image, out Format, quality int) ([]byte, error) {
	in := C.without_metadata(cImage(im))
	runtime.KeepAlive(im)
	if in == nil {
		return nil, vipsx.Error()
	}
	defer C.g_object_unref(C.gpointer(in))
	s := spec(out)
	if s.save == nil {
		return nil, fmt.Errorf("no encoder for %s", out)
	}
	switch {
	case s.quality == nil:
		quality = 0
	case quality == 0:
		quality = s.quality(e.cfg)
	}
	return s.save(in, min(quality, 100), e.cfg)
}

// saved takes the buffer a C saver wrote.
func saved(rc C.int, buf unsafe.Pointer, n C.size_t) ([]byte, error) {
	if rc != 0 {
		return nil, vipsx.Error()
	}
	defer C.g_free(C.gpointer(buf))
	return C.GoBytes(buf, C.int(n)), nil
}

// saveJPEG raises quality 0 to 1, the lowest jpegsave accepts.
func saveJPEG(in *C.VipsImage, quality int, _ Config) ([]byte, error) {
	var buf unsafe.Pointer
	var n C.size_t
	rc := C.save_jpeg(in, &buf, &n, C.int(max(1, quality)))
	return saved(rc, buf, n)
}

func savePNG(in *C.VipsImage, _ int, c Config) ([]byte, error) {
	var buf unsafe.Pointer
	var n C.size_t
	rc := C.save_png(in, &buf, &n, C.int(c.PNGCompression))
	return saved(rc, buf, n)
}

func saveWebP(in *C.VipsImage, quality int, c Config) ([]byte, error) {
	var buf unsafe.Pointer
	var n C.size_t
	rc := C.save_webp(in, &buf, &n, C.int(quality), C.int(c.WebPEffort))
	data, err := saved(rc, buf, n)
	if err != nil {
		return nil, err
	}
	return stripWebPMetadata(data), nil
}

func saveGIF(in *C.VipsImage, _ int, _ Config) ([]byte, error) {
	var buf unsafe.Pointer
	var n C.size_t
	rc := C.save_gif(in, &buf, &n)
	return saved(rc, buf, n)
}

// saveAVIF raises quality 0 to 1, the lowest heifsave accepts.
func saveAVIF(in *C.VipsImage, quality int, c Config) ([]byte, error) {
	var buf unsafe.Pointer
	var n C.size_t
	rc := C.save_avif(in, &buf, &n, C.int(max(1, quality)), C.int(avifEffort(c.AVIFSpeed)))
	return saved(rc, buf, n)
}

// avifEffort maps the contract's speed (1-10, higher = faster) onto libvips'
// heifsave effort (0-9, higher = slower). The default speed 6 becomes
// effort 3: measured on a 5120×2880 source → 400 px, effort 4 (libvips'
// default) costs 4.2× a WebP, effort 3 costs 1.7× (docs/benchmarks.md).
// Speeds 9 and 10 are both effort 0, libvips' fastest.
func avifEffort(speed int) int { return min(9, max(0, 9-speed)) }
