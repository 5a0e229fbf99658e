package decode

import (
	"container/list"
	"context"
	"sync"
	"time"

	"image-proxy/transform/internal/vips"
)

// The decode cache keeps recently decoded sources (already shrunk on
// load) in memory, so that the second and later variants of one source —
// the DPR 1, 2 and 3 and AVIF, WebP and JPEG variants a publish burst asks
// for within seconds — skip the decode, which for a progressive JPEG is
// most of a render.
//
// A decode is keyed by the caller's opaque source identity (Source.ID)
// and the load parameters, and shared while it runs: concurrent renders of
// one source wait for one decode instead of each decoding. It is bounded by
// bytes (a decode larger than the whole budget is never kept; older
// decodes make room for newer ones) and by age. Failures are never kept.
//
// libvips images are reference counted: the cache holds one reference to
// each decode it keeps and every render using it one more, so eviction
// frees the pixels only once the last render using them is done.
//
// Which decodes go through the cache, and which stream, is Decoder.keeps'
// rule (decoder.go).

// key names a decode: the caller's identity of the source, and the load.
type key struct {
	source string
	load   Load
}

// decoded is one decode, running or done.
type decoded struct {
	key   key
	ready chan struct{} // closed when img or err is set
	img   *vips.Image
	err   error
	size  int64
	born  time.Time
	refs  int // guarded by cache.mu; the cache's own counts while kept
	// handed: a view of it went to be kept beyond the process, or it was
	// read from there (DecodeStored, handOver). Guarded by cache.mu.
	handed bool
	elem   *list.Element // in cache.order while kept and done
}

type cache struct {
	budget   int64
	ttl      time.Duration
	now      func() time.Time
	obs      Observer
	idle     func() // called when expiry emptied the cache
	decoding func() // Options.Decoding

	mu      sync.Mutex
	entries map[key]*decoded // kept decodes, done or running
	order   list.List        // done kept decodes, oldest first
	size    int64
	timer   *time.Timer

	seen *sightings // loads asked for once and streamed (baseline JPEG)
}

func newCache(o Options) *cache {
	c := &cache{budget: o.Budget, ttl: o.TTL, now: o.Now, obs: o.Observer, idle: o.Idle, decoding: o.Decoding,
		entries: map[key]*decoded{}, seen: newSightings(o.TTL)}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// wanted tells whether a decode of k is worth keeping although its
// source gains from a finer shrink: it is kept or running already, or the
// same load was asked for within the TTL. Otherwise the caller streams
// its own decode, and the sighting is remembered for the next one.
func (c *cache) wanted(k key) bool {
	c.mu.Lock()
	_, ok := c.entries[k]
	now := c.now()
	c.mu.Unlock()
	return ok || c.seen.again(k, now)
}

// acquire returns the decode for k, running decode when nobody has it
// or is running it. The caller must release what it gets.
func (c *cache) acquire(ctx context.Context, k key, gate Gate, decode func() (*vips.Image, error)) (*decoded, error) {
	c.mu.Lock()
	c.expire()
	if d, ok := c.entries[k]; ok {
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
	d := &decoded{key: k, ready: make(chan struct{}), refs: 2} // the caller's and the cache's
	c.entries[k] = d
	c.mu.Unlock()
	c.lookup(false)

	if c.decoding != nil {
		c.decoding()
	}
	img, err := decode()
	c.finish(d, img, err)
	if err != nil {
		c.release(d)
		return nil, err
	}
	return d, nil
}

// handOver marks d as handed to be kept beyond the process and tells
// whether it was not before: true once per decode.
func (c *cache) handOver(d *decoded) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !d.handed
	d.handed = true
	return first
}

// finish records the decode's outcome and keeps it if it fits.
func (c *cache) finish(d *decoded, img *vips.Image, err error) {
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

func (c *cache) fits(img *vips.Image) bool { return imageBytes(img) <= c.budget }

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
			err = &Error{Step: "wait", Err: gerr, Canceled: true}
		}
	}
	return err
}

// release drops the caller's reference.
func (c *cache) release(d *decoded) {
	c.mu.Lock()
	c.unref(d)
	c.mu.Unlock()
}

// unref drops one reference; the last one frees the pixels. c.mu is held.
func (c *cache) unref(d *decoded) {
	d.refs--
	if d.refs == 0 && d.img != nil {
		d.img.Close()
		d.img = nil
	}
}

// forget removes a decode that is not kept from the map. c.mu is held.
func (c *cache) forget(d *decoded) {
	if c.entries[d.key] == d {
		delete(c.entries, d.key)
	}
	c.unref(d)
}

// drop evicts a kept, done decode. c.mu is held.
func (c *cache) drop(d *decoded) {
	c.order.Remove(d.elem)
	d.elem = nil
	c.size -= d.size
	c.forget(d)
}

// expire drops the decodes older than the TTL. c.mu is held.
func (c *cache) expire() bool {
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
func (c *cache) schedule() {
	if c.timer != nil || c.order.Len() == 0 {
		return
	}
	wait := c.ttl - c.now().Sub(c.order.Front().Value.(*decoded).born)
	c.timer = time.AfterFunc(max(wait, 0)+time.Millisecond, c.sweep)
}

func (c *cache) sweep() {
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
func (c *cache) close() {
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
func (c *cache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

func (c *cache) lookup(hit bool) {
	if c.obs.DecodeLookup != nil {
		c.obs.DecodeLookup(hit)
	}
}

func (c *cache) sized(size int64) {
	if c.obs.DecodeBytes != nil {
		c.obs.DecodeBytes(size)
	}
}
