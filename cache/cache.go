// Package cache keeps encoded transform results in a memory tier
// (ristretto) in front of an optional disk tier (diskv), and makes
// identical concurrent misses render once. It knows nothing of HTTP or
// libvips: values are opaque bytes.
package cache

import (
	"context"
)

// Status says where a value came from; its String is the X-Cache-Status header.
type Status uint8

const (
	StatusMiss Status = iota
	StatusHitMemory
	StatusHitDisk
	StatusBypass
)

var statusNames = [...]string{"MISS", "HIT-MEMORY", "HIT-DISK", "BYPASS"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "MISS"
}

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
	// Close flushes nothing half-written and releases the tiers.
	Close() error
}

// Config is the cache part of the settings.
type Config struct {
	Enabled     bool   // false: every Fetch renders (coalesced) and reports StatusBypass
	MemorySize  int64  // bytes
	MaxItemSize int64  // larger values skip the memory tier
	DiskEnabled bool   // needs Enabled
	DiskSize    int64  // bytes
	DiskPath    string // created if missing
}
