package cache

import "context"

// Store writes results straight into the tiers that outlive the process
// (disk, S3), outside the request path: the pre-renderer fills what a later
// request reads. It shares the tiers' instances with the Cache built over
// them (one disk index, one S3 client) and never closes them: the Cache
// owns them.
type Store struct {
	tiers []Tier
}

// NewStore keeps values in every tier of tiers that persists: memory tiers
// are left out, since a value pre-rendered into memory is gone with the
// process and a live request fills memory on its own.
func NewStore(tiers []Tier) *Store {
	s := &Store{}
	for _, t := range tiers {
		if _, mem := t.(*memoryTier); !mem {
			s.tiers = append(s.tiers, t)
		}
	}
	return s
}

// Tiers names the tiers the store writes to, in order.
func (s *Store) Tiers() []string {
	names := make([]string, len(s.tiers))
	for i, t := range s.tiers {
		names[i] = t.Name()
	}
	return names
}

// Has reports whether every tier holds an intact value for key (Get
// verifies the checksum and drops a damaged entry). A value some tiers
// hold and others lack is copied to those that lack it, so the caller has
// nothing to render. With no tiers it reports false.
func (s *Store) Has(ctx context.Context, key string) bool {
	var v []byte
	var missing []Tier
	for _, t := range s.tiers {
		got, ok := t.Get(ctx, key)
		if !ok {
			missing = append(missing, t)
			continue
		}
		v = got
	}
	if v == nil {
		return false
	}
	for _, t := range missing {
		t.Set(ctx, key, v)
	}
	return true
}

// Put writes v to every tier. Each tier writes whole entries only (the disk
// tier through a temp file and a rename, S3 by its PUT), so an interrupted
// Put leaves every entry either absent or intact.
func (s *Store) Put(ctx context.Context, key string, v []byte) {
	for _, t := range s.tiers {
		t.Set(ctx, key, v)
	}
}

// Get returns the value for key from the first tier holding an intact
// one, and copies it to the tiers before that one (an S3 hit to the
// disk). Unlike Cache.Fetch it joins no flight and takes no lease: a
// miss costs the look-ups alone, never a wait for another replica's
// render. Nothing goes to the memory tier.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool) {
	for i, t := range s.tiers {
		if v, ok := t.Get(ctx, key); ok {
			for _, f := range s.tiers[:i] {
				f.Set(ctx, key, v)
			}
			return v, true
		}
	}
	return nil, false
}
