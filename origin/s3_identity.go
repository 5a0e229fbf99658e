package origin

import (
	"container/list"
	"strings"
	"sync"
	"time"
)

// identityCache remembers what a HEAD learnt about an S3 original, so a
// cache hit of a transform asks the bucket nothing. Its bounds:
//
//   - Time: a description is used while it is younger than maxAge
//     (IMAGE_PROXY_S3_STAT_MAX_AGE). A replaced object is served under its
//     old identity (so from the result tiers, under the old key) for at most
//     that long, unless Forget drops it first (an event).
//   - Absence: a missing key is remembered for missAge, shorter than
//     maxAge, so a flood of requests for it makes one HEAD per missAge
//     while an upload of that key is seen soon.
//   - Memory: at most max entries, least recently used dropped first.
//   - Bytes: a render's GET is conditional on the remembered ETag
//     (If-Match), and ReadAll refuses bytes whose identity is not the one
//     the key was built from, so a remembered identity never puts new bytes
//     under an old key.
type identityCache struct {
	maxAge, missAge time.Duration
	max             int
	now             func() time.Time

	mu sync.Mutex
	// gen counts forgets: an answer to a request that began before one
	// is not stored, so a HEAD in flight when an event drops its key
	// cannot put the old description back.
	gen   uint64
	byKey map[string]*list.Element // of *identityEntry
	lru   list.List                // front: most recently used
}

type identityEntry struct {
	rel     string
	o       Original
	etag    string // the object's ETag, for If-Match; "" when missing
	missing bool
	at      time.Time
}

// maxS3Identities bounds the entries: one is the key, the identity (key,
// ETag, size, time) and list links, about 300 bytes for a 60-byte key, so
// the cache holds at most about 15 MB.
const maxS3Identities = 50_000

// maxS3MissAge is the longest a missing key is remembered. One second
// turns a flood of requests for a missing key into one HEAD a second per
// replica, and delays a freshly uploaded key by at most that when no event
// drops the entry (a client that uploads and then asks at once may see
// one 404).
const maxS3MissAge = time.Second

func newIdentityCache(maxAge time.Duration, max int, now func() time.Time) *identityCache {
	return &identityCache{maxAge: maxAge, missAge: min(maxAge, maxS3MissAge), max: max, now: now, byKey: map[string]*list.Element{}}
}

// lookup returns rel's entry while it is young enough.
func (c *identityCache) lookup(rel string) (identityEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[rel]
	if !ok {
		return identityEntry{}, false
	}
	e := el.Value.(*identityEntry)
	age := c.maxAge
	if e.missing {
		age = c.missAge
	}
	if c.now().Sub(e.at) >= age {
		c.removeLocked(el)
		return identityEntry{}, false
	}
	c.lru.MoveToFront(el)
	return *e, true
}

// generation is read before a request whose answer store will keep.
func (c *identityCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// store remembers o with its ETag, or that rel is missing, as learnt by a
// request that began at generation gen.
func (c *identityCache) store(gen uint64, rel string, o Original, etag string, missing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	e := &identityEntry{rel: strings.Clone(rel), o: o, etag: etag, missing: missing, at: c.now()}
	if el, ok := c.byKey[rel]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.byKey[e.rel] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
}

// forget drops rel's entry, if any.
func (c *identityCache) forget(rel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, ok := c.byKey[rel]; ok {
		c.removeLocked(el)
	}
}

func (c *identityCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *identityCache) removeLocked(el *list.Element) {
	delete(c.byKey, el.Value.(*identityEntry).rel)
	c.lru.Remove(el)
}
