package proxy

import (
	"context"

	"image-proxy/cache"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

// intermediateStore keeps a source's stored intermediate (transform's,
// issue 27) in the result tiers, beside the source's results: filed under
// the source's group (cache.SourceKey), so a purge of the source removes
// it, and keyed by the source's identity, so a replaced source never
// finds the old one. It counts against the tiers' capacity like any
// result, and the S3 tier's render lease makes it once for the fleet.
type intermediateStore struct {
	s   *Server
	key string
}

// intermediateStore is the store of o's intermediate for v, or nil when
// v's key does not name one (the engine then renders from the source).
func (s *Server) intermediateStore(o origin.Original, v request.Variant) transform.IntermediateStore {
	if v.Intermediate == "" {
		return nil
	}
	return intermediateStore{s: s, key: intermediateKey(o.Rel, v)}
}

// intermediateKey is the tier key of the intermediate v names of the
// source at rel: apart from every variant's ("im|" where theirs start
// "v1|").
func intermediateKey(rel string, v request.Variant) string {
	return cache.SourceKey(rel, "im|"+v.Intermediate+"|"+v.Source)
}

func (st intermediateStore) Cached(ctx context.Context) ([]byte, bool) {
	v, _, ok := st.s.cache.Cached(ctx, st.key)
	return v, ok
}

// Fetch makes the intermediate once for every concurrent render of the
// source (the cache's flight; across replicas, the S3 tier's lease). The
// render asking has left its slot while it waits, so make takes one of
// its own.
func (st intermediateStore) Fetch(ctx context.Context, make func(context.Context) ([]byte, error)) ([]byte, error) {
	v, _, err := st.s.cache.Fetch(ctx, st.key, func(ctx context.Context) ([]byte, error) {
		sl, err := st.s.enterSlot(ctx)
		if err != nil {
			return nil, err
		}
		defer sl.Leave()
		return make(ctx)
	})
	return v, err
}
