package origin

import (
	"context"
	"iter"
	"strings"

	"github.com/minio/minio-go/v7"
)

// afterAll sorts after every key that continues a prefix: U+10FFFF, the
// largest code point, so "p" + afterAll is past every key under p that S3
// can hold (keys are UTF-8).
const afterAll = "\U0010FFFF"

// List yields the path, relative to the originals' prefix, of every object
// whose key starts with the prefix followed by under ("" for all of them),
// in key order, page by page as the bucket answers: nothing beyond the page
// being read is held. Keys under a prefix of skip (whole keys in the
// bucket, such as the result tier's and the export's) are left out; when
// the listing reaches one, it starts again after it, so a result tier of
// millions of objects costs one request, not a read of every page. An
// error ends the listing; it is the last thing yielded. Stopping early
// (break) sends no further request.
func (s *S3) List(ctx context.Context, under string, skip ...string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		opts := minio.ListObjectsOptions{Prefix: s.key(under), Recursive: true}
		for {
			next, ok := s.listFrom(ctx, opts, skip, yield)
			if !ok {
				return
			}
			opts.StartAfter = next
		}
	}
}

// listFrom yields one listing of opts until its end (ok false), the
// caller's stop (ok false) or a key under a prefix of skip: then next is
// where to start again, past every key under that prefix.
func (s *S3) listFrom(ctx context.Context, opts minio.ListObjectsOptions, skip []string, yield func(string, error) bool) (next string, ok bool) {
	ctx, cancel := context.WithCancel(ctx) // ends the page requests of a listing left early
	defer cancel()
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, opts) {
		if obj.Err != nil {
			yield("", s3Error(ctx, obj.Err))
			return "", false
		}
		if p, found := under(obj.Key, skip); found {
			return p + afterAll, true
		}
		rel, _ := strings.CutPrefix(obj.Key, s.prefix)
		if !yield(rel, nil) {
			return "", false
		}
	}
	if err := ctx.Err(); err != nil {
		yield("", err)
	}
	return "", false
}

// under reports the prefix of prefixes that key starts with, if any.
func under(key string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(key, p) {
			return p, true
		}
	}
	return "", false
}
