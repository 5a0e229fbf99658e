package proxy

import (
	"context"
	"log/slog"
	"sync"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/origin"
	"image-proxy/transform"
)

// decodeKeeper keeps the engine's persisted decodes (transform's
// persisted.go, issue 27) in the tiers that outlive the process (disk,
// S3: cache.Store; the decode cache already keeps them in memory), beside
// the source's results: filed under the source's group (cache.SourceKey),
// so a purge of the source, by hand or by an event, removes them, and
// keyed by the source's identity, so a replaced source never finds an old
// one. They count against the tiers' capacity like any result.
type decodeKeeper struct {
	store   *cache.Store
	pending chan struct{} // a slot per store under way: full, a new one is dropped
	wg      sync.WaitGroup
	count   func(result string)
	log     *slog.Logger
}

// maxPendingDecodeStores bounds the decodes held in memory until stored:
// a 1600 px decode is up to 7.7 MB (15 MB at 16 bits). A decode dropped
// costs a later render one decode, never a byte of its output.
const maxPendingDecodeStores = 4

// newDecodeKeeper keeps decodes in store's tiers; nil when it has none.
func newDecodeKeeper(store *cache.Store, m *metrics.Metrics, log *slog.Logger) *decodeKeeper {
	if store == nil || len(store.Tiers()) == 0 {
		return nil
	}
	return &decodeKeeper{store: store, pending: make(chan struct{}, maxPendingDecodeStores), log: log,
		count: func(r string) { m.StoredDecodes.WithLabelValues(r).Inc() }}
}

// decodeStore is the engine's store of o's decodes; nil (every render
// decodes) without a keeper.
func (s *Server) decodeStore(o origin.Original) transform.DecodeStore {
	if s.decodes == nil {
		return nil
	}
	return sourceDecodes{k: s.decodes, rel: o.Rel, identity: o.Identity}
}

// sourceDecodes is one source's decodes in the keeper's tiers.
type sourceDecodes struct {
	k             *decodeKeeper
	rel, identity string
}

// key is apart from every variant's ("dec|" where theirs start "v1|").
func (d sourceDecodes) key(name string) string {
	return cache.SourceKey(d.rel, "dec|"+name+"|"+d.identity)
}

func (d sourceDecodes) Get(ctx context.Context, name string) ([]byte, bool) {
	v, ok := d.k.store.Get(ctx, d.key(name))
	if ok {
		d.k.count(metrics.CacheHit)
	} else {
		d.k.count(metrics.CacheMiss)
	}
	return v, ok
}

// Put keeps dec in the background: the render's response has its bytes
// already and waits for no tier. With maxPendingDecodeStores under way
// it drops dec instead of queueing it.
func (d sourceDecodes) Put(name string, dec *transform.Decoded) {
	select {
	case d.k.pending <- struct{}{}:
	default:
		dec.Close()
		d.k.count(metrics.StoredDecodeDropped)
		return
	}
	d.k.wg.Add(1)
	go func() {
		defer d.k.wg.Done()
		defer func() { <-d.k.pending }()
		defer dec.Close()
		v, err := dec.Bytes()
		if err != nil {
			d.k.log.Warn("a decode could not be saved", "key", d.key(name), "err", err)
			d.k.count(metrics.StoredDecodeFailed)
			return
		}
		d.k.store.Put(context.Background(), d.key(name), v)
		d.k.count(metrics.StoredDecodeStored)
	}()
}

// wait returns once every store under way is done, or ctx ends.
func (k *decodeKeeper) wait(ctx context.Context) error {
	if k == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		k.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
