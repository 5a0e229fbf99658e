// Package cache keeps encoded transform results in an ordered list of
// tiers (memory, disk, …) and makes identical concurrent misses render
// once. It knows nothing of HTTP or libvips: values are opaque bytes.
package cache

import (
	"context"
	"strings"
)

// Status says where a value came from; it is the X-Cache-Status header.
type Status string

const (
	StatusMiss   Status = "MISS"
	StatusBypass Status = "BYPASS"
)

// HitStatus is the status of a value served by the tier called name, so a
// new tier gets its own header value without a new constant.
func HitStatus(name string) Status { return Status("HIT-" + strings.ToUpper(name)) }

func (s Status) String() string { return string(s) }

// RenderFunc produces the value for a missing key. Its context is cancelled
// only when every caller waiting for that key has gone away.
type RenderFunc func(ctx context.Context) ([]byte, error)

// Cache is what the HTTP layer uses.
type Cache interface {
	// Fetch returns the value for key from the fastest tier holding it, or
	// runs render once for all concurrent callers of the same key, stores a
	// successful result and returns it. Errors are returned, never stored.
	// The returned slice is shared: callers must not modify it.
	Fetch(ctx context.Context, key string, render RenderFunc) ([]byte, Status, error)
	// Cached looks only in the tiers on this machine (memory, then disk),
	// without the flight, a render or any waiting, and promotes a hit as
	// Fetch does. A caller that would set something up for a slow Fetch
	// (a hang-up watch) asks this first.
	Cached(ctx context.Context, key string) ([]byte, Status, bool)
	// Open is Cached for a caller that can send a file: a disk hit on a
	// value no faster tier would keep comes back as the value's first head
	// bytes (at most MaxHead) and a File of the rest, which the caller
	// closes; it is not promoted. Every other hit is Cached's.
	Open(ctx context.Context, key string, head int) (Hit, Status, bool)
	// Purge removes every result of the source at rel (the keys made by
	// SourceKey(rel, …)) from every tier, and reports what each removed.
	Purge(ctx context.Context, rel string) []Purged
	// Close flushes nothing half-written and releases the tiers.
	Close() error
}

// Tier is one level of the result cache.
type Tier interface {
	// Name is the metrics tier label ("memory", "disk", "s3"); the hit
	// status is HitStatus(Name()).
	Name() string
	// Local tells whether the tier is on this machine and cheap enough to
	// read outside the flight (memory, disk): Cached looks only in these.
	// It is part of the interface, not a marker type, so a wrapper (the
	// traced tier) passes it on instead of hiding it.
	Local() bool
	// Get never returns a damaged entry: it drops it and reports a miss.
	Get(ctx context.Context, key string) ([]byte, bool)
	// Set may decline to keep v (too large, writes failing); the cache does
	// not depend on it being kept.
	Set(ctx context.Context, key string, v []byte)
	// Purge removes every entry of the source group (SourceGroup) and
	// reports how many it removed; entries of keys made without
	// SourceKey are never removed.
	Purge(ctx context.Context, group string) (int, error)
	Close() error
}
