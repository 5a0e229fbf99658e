package warm

import (
	"context"

	"image-proxy/cache"
	"image-proxy/imageformat"
	"image-proxy/origin"
	"image-proxy/transform"
)

// NewCacheSink stores into store (the persistent result tiers) under the
// keys live requests compute, each value the one a live render stores.
func NewCacheSink(store *cache.Store) Sink { return cacheSink{store} }

type cacheSink struct{ store *cache.Store }

func (c cacheSink) Has(ctx context.Context, o origin.Original, it Item) bool {
	return c.store.Has(ctx, cache.SourceKey(o.Rel, it.Variant.Key()))
}

func (c cacheSink) Put(ctx context.Context, o origin.Original, it Item, res transform.Result) error {
	c.store.Put(ctx, cache.SourceKey(o.Rel, it.Variant.Key()), imageformat.Tag(res.Format, res.Data))
	return nil
}

func (cacheSink) Flush() error { return nil }
