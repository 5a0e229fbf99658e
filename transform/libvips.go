package transform

/*
#cgo pkg-config: vips
#include <malloc.h>
#include <stdlib.h>
#include <vips/vips.h>

// Only the loaders and savers we call by name stay usable. This is a second
// layer: Render already decides the type in Go and calls one loader by name,
// so no libvips sniffer ever sees the bytes. allowed holds nicknames, which
// vips_operation_block_set does not match: each is unblocked by its type
// name. Returns the index of a name libvips does not know, before blocking
// anything, or -1.
static int restrict_operations(char **allowed, int n) {
	for (int i = 0; i < n; i++)
		if (!vips_type_find("VipsOperation", allowed[i]))
			return i;
	vips_block_untrusted_set(TRUE);
	vips_operation_block_set("VipsForeignLoad", TRUE);
	vips_operation_block_set("VipsForeignSave", TRUE);
	for (int i = 0; i < n; i++)
		vips_operation_block_set(g_type_name(vips_type_find("VipsOperation", allowed[i])), FALSE);
	return -1;
}
*/
import "C"

import (
	"fmt"
	"log/slog"
	"unsafe"

	"image-proxy/transform/internal/vips"
)

// Startup initialises libvips for the process; it is the one piece of
// process-wide state, started once in main (and in TestMain).
func Startup(log *slog.Logger) error {
	// libvips speaks through glib logging; route it to slog so JSON logs stay JSON.
	vips.SetLogging(func(domain string, level vips.LogLevel, msg string) {
		switch level {
		case vips.LogLevelError, vips.LogLevelCritical:
			log.Error("libvips", "domain", domain, "msg", msg)
		case vips.LogLevelWarning:
			log.Warn("libvips", "domain", domain, "msg", msg)
		default:
			log.Debug("libvips", "domain", domain, "msg", msg)
		}
	}, vips.LogLevelWarning)
	vips.Startup(&vips.Config{
		// One thread per image: we run IMAGE_PROXY_CONCURRENCY images at
		// once, which keeps every core busy without oversubscribing.
		ConcurrencyLevel: 1,
		// The operation cache keeps decoded images around for re-use by
		// identical operations; we cache encoded results ourselves, so it
		// would only hold memory.
		MaxCacheFiles: 0,
		MaxCacheMem:   0,
		MaxCacheSize:  0,
		// SIMD paths (orc) for resampling: about 10 % faster here.
		VectorEnabled: true,
	})
	return restrictOperations(allowedOperations())
}

// restrictOperations leaves only names usable among libvips' loaders and
// savers. A name libvips does not know is an error: it would leave a
// format on the table that can never load or save.
func restrictOperations(names []string) error {
	cs := make([]*C.char, len(names))
	for i, n := range names {
		cs[i] = C.CString(n)
		defer C.free(unsafe.Pointer(cs[i]))
	}
	if i := C.restrict_operations(unsafe.SliceData(cs), C.int(len(cs))); i >= 0 {
		return fmt.Errorf("libvips %s has no operation %q", Version(), names[i])
	}
	return nil
}

// Shutdown releases libvips' process-wide resources.
func Shutdown() { vips.Shutdown() }

// Version is the linked libvips version.
func Version() string { return C.GoString(C.vips_version_string()) }

// MemStats reports memory libvips tracks itself (pixel buffers) and the
// files it holds open.
func MemStats() (memBytes, openFiles int64) {
	var s vips.MemoryStats
	vips.ReadVipsMemStats(&s)
	return s.Mem, s.Files
}

// releaseMemory hands memory freed by libvips back to the system. glibc
// keeps freed pixel buffers in its arenas; trimming once the last running
// render ends lets RSS fall back at idle without slowing busy periods (with
// jemalloc preloaded this trims glibc's unused heap: a no-op).
func releaseMemory() { C.malloc_trim(0) }
