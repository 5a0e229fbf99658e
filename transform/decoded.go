package transform

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
	"container/list"
	"context"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"image-proxy/transform/internal/vips"
)

// The decode cache keeps recently decoded sources (already shrunk on
// load) in memory, so that the second and later variants of one source —
// the DPR 1, 2 and 3 and AVIF, WebP and JPEG variants a publish burst asks
// for within seconds — skip the decode, which for a progressive JPEG is
// most of a render.
//
// A decode is keyed by the caller's opaque source identity (Options.Source)
// and the load parameters, and shared while it runs: concurrent renders of
// one source wait for one decode instead of each decoding. It is bounded by
// bytes (a decode larger than the whole budget is never kept; older
// decodes make room for newer ones) and by age. Failures are never kept.
//
// libvips images are reference counted: the cache holds one reference to
// each decode it keeps and every render using it one more, so eviction
// frees the pixels only once the last render using them is done.

// familyBox is the box whose shrink-on-load every smaller box shares while
// the decode cache is on: the DPR 3 variant of a 400 px slot. Without it,
// 400, 800 and 1200 px from a 5120 px JPEG would load at shrinks 8, 4 and
// 4, two decodes; with it all three load at 4, one decode. The decode only
// depends on the box, never on which variant came first, so a variant's
// bytes are the same whatever the arrival order.
const familyBox = 1200

// Gate bounds how many renders work at once (the caller's slots). The
// caller holds it when it calls Render; Render leaves it while waiting for
// another render's decode of the same source and enters again before it
// works, so a waiting render does not keep a slot idle.
type Gate interface {
	Leave()
	Enter(ctx context.Context) error
}

// Observer receives the decode cache's events; nil fields are skipped.
// It is how a caller turns them into metrics.
type Observer struct {
	DecodeLookup func(hit bool)   // a render found its decode (done or running), or decoded
	DecodeBytes  func(size int64) // bytes the cache holds, after every change
}

type decodeKey struct {
	source string
	load   loadParams
}

// decoded is one decode, running or done.
type decoded struct {
	key   decodeKey
	ready chan struct{} // closed when img or err is set
	img   *vips.Image
	err   error
	size  int64
	born  time.Time
	refs  int           // guarded by decodeCache.mu; the cache's own counts while kept
	elem  *list.Element // in decodeCache.order while kept and done
}

type decodeCache struct {
	budget int64
	ttl    time.Duration
	now    func() time.Time
	obs    Observer
	idle   func() // called when expiry emptied the cache

	mu      sync.Mutex
	entries map[decodeKey]*decoded // kept decodes, done or running
	order   list.List              // done kept decodes, oldest first
	size    int64
	timer   *time.Timer

	seen *sightings // loads asked for once and streamed (baseline JPEG)

	decodes      atomic.Int64 // decodes run through the cache (for tests)
	beforeDecode func()       // tests: called before each decode
}

func newDecodeCache(budget int64, ttl time.Duration, obs Observer, idle func()) *decodeCache {
	return &decodeCache{budget: budget, ttl: ttl, now: time.Now, obs: obs, idle: idle, entries: map[decodeKey]*decoded{},
		seen: newSightings(ttl)}
}

// wanted tells whether a decode of key is worth keeping although its
// source gains from a finer shrink: it is kept or running already, or the
// same load was asked for within the TTL. Otherwise the caller streams
// its own decode, and the sighting is remembered for the next one.
func (c *decodeCache) wanted(key decodeKey) bool {
	c.mu.Lock()
	_, ok := c.entries[key]
	now := c.now()
	c.mu.Unlock()
	return ok || c.seen.again(key, now)
}

// acquire returns the decode for key, running decode when nobody has it
// or is running it. The caller must release what it gets.
func (c *decodeCache) acquire(ctx context.Context, key decodeKey, gate Gate, decode func() (*vips.Image, error)) (*decoded, error) {
	c.mu.Lock()
	c.expire()
	if d, ok := c.entries[key]; ok {
		d.refs++
		c.mu.Unlock()
		c.lookup(true)
		if err := d.wait(ctx, gate); err != nil {
			c.release(d)
			return nil, err
		}
		if d.err != nil {
			c.release(d)
			return nil, d.err
		}
		return d, nil
	}
	d := &decoded{key: key, ready: make(chan struct{}), refs: 2} // the caller's and the cache's
	c.entries[key] = d
	c.mu.Unlock()
	c.lookup(false)

	c.decodes.Add(1)
	if c.beforeDecode != nil {
		c.beforeDecode()
	}
	img, err := decode()
	c.finish(d, img, err)
	if err != nil {
		c.release(d)
		return nil, err
	}
	return d, nil
}

// finish records the decode's outcome and keeps it if it fits.
func (c *decodeCache) finish(d *decoded, img *vips.Image, err error) {
	c.mu.Lock()
	d.img, d.err = img, err
	switch {
	case err != nil:
		c.forget(d)
	case c.fits(img):
		d.size = imageBytes(img)
		d.born = c.now()
		d.elem = c.order.PushBack(d)
		c.size += d.size
		for c.size > c.budget {
			c.drop(c.order.Front().Value.(*decoded))
		}
		c.schedule()
	default:
		c.forget(d)
	}
	close(d.ready)
	size := c.size
	c.mu.Unlock()
	c.sized(size)
}

func (c *decodeCache) fits(img *vips.Image) bool { return imageBytes(img) <= c.budget }

// wait blocks until d is decoded, outside the gate.
func (d *decoded) wait(ctx context.Context, gate Gate) error {
	select {
	case <-d.ready:
		return nil
	default:
	}
	if gate != nil {
		gate.Leave()
	}
	var err error
	select {
	case <-d.ready:
	case <-ctx.Done():
		err = canceled(ctx)
	}
	if gate != nil {
		if gerr := gate.Enter(ctx); gerr != nil && err == nil {
			err = &Error{Kind: KindCanceled, Err: gerr}
		}
	}
	return err
}

// release drops the caller's reference.
func (c *decodeCache) release(d *decoded) {
	c.mu.Lock()
	c.unref(d)
	c.mu.Unlock()
}

// unref drops one reference; the last one frees the pixels. c.mu is held.
func (c *decodeCache) unref(d *decoded) {
	d.refs--
	if d.refs == 0 && d.img != nil {
		d.img.Close()
		d.img = nil
	}
}

// forget removes a decode that is not kept from the map. c.mu is held.
func (c *decodeCache) forget(d *decoded) {
	if c.entries[d.key] == d {
		delete(c.entries, d.key)
	}
	c.unref(d)
}

// drop evicts a kept, done decode. c.mu is held.
func (c *decodeCache) drop(d *decoded) {
	c.order.Remove(d.elem)
	d.elem = nil
	c.size -= d.size
	c.forget(d)
}

// expire drops the decodes older than the TTL. c.mu is held.
func (c *decodeCache) expire() bool {
	now := c.now()
	dropped := false
	for e := c.order.Front(); e != nil; e = c.order.Front() {
		d := e.Value.(*decoded)
		if now.Sub(d.born) < c.ttl {
			break
		}
		c.drop(d)
		dropped = true
	}
	return dropped
}

// schedule arms the timer that expires decodes when no render comes to do
// it, so an idle server gives their memory back. c.mu is held.
func (c *decodeCache) schedule() {
	if c.timer != nil || c.order.Len() == 0 {
		return
	}
	wait := c.ttl - c.now().Sub(c.order.Front().Value.(*decoded).born)
	c.timer = time.AfterFunc(max(wait, 0)+time.Millisecond, c.sweep)
}

func (c *decodeCache) sweep() {
	c.mu.Lock()
	c.timer = nil
	dropped := c.expire()
	c.schedule()
	size, empty := c.size, c.order.Len() == 0
	c.mu.Unlock()
	if dropped {
		c.sized(size)
		if empty && c.idle != nil {
			c.idle()
		}
	}
}

// close drops every kept decode; renders still using one free it when
// they finish.
func (c *decodeCache) close() {
	c.mu.Lock()
	for c.order.Len() > 0 {
		c.drop(c.order.Front().Value.(*decoded))
	}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	c.sized(0)
}

// bytes is what the cache holds now.
func (c *decodeCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

func (c *decodeCache) lookup(hit bool) {
	if c.obs.DecodeLookup != nil {
		c.obs.DecodeLookup(hit)
	}
}

func (c *decodeCache) sized(size int64) {
	if c.obs.DecodeBytes != nil {
		c.obs.DecodeBytes(size)
	}
}

// holdMapped is holdInMemory for a decode the cache keeps: every pixel
// decoded into a mapping of its own.
func holdMapped(im *vips.Image) error {
	out := C.to_mapped_memory(cImage(im))
	runtime.KeepAlive(im)
	if out == nil {
		return vipsError()
	}
	adopt(im, out)
	forgetSource(im)
	return nil
}

// forgetSource drops the bindings' reference to the source bytes, which
// they keep for loaders that read them lazily: a kept decode no longer
// reads them, and would otherwise hold the whole file in the Go heap for
// as long as it is kept.
func forgetSource(im *vips.Image) {
	f := reflect.ValueOf(im).Elem().FieldByName("buf")
	if f.Kind() != reflect.Slice {
		panic("vips.Image has no slice field buf")
	}
	*(*[]byte)(unsafe.Pointer(f.UnsafeAddr())) = nil
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
