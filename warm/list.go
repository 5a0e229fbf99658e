package warm

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"path"
	"strings"

	"image-proxy/request"
)

// Lister lists the originals of a bucket (origin's *S3): the paths,
// relative to the originals' prefix, of the objects under under, leaving
// out the keys under skip, page by page.
type Lister interface {
	List(ctx context.Context, under string, skip ...string) iter.Seq2[string, error]
}

// S3Paths checks the paths given to a warm over S3, relative to the
// originals' prefix (IMAGE_PROXY_S3_PREFIX), and returns them cleaned; a
// path may name a key or stand for every key under it, as a directory
// does. None, or ".", is all of them (""). A path the server would refuse,
// or one whose key lies under a prefix of skip (the results', an
// export's), is an error.
func S3Paths(paths []string, prefix string, skip []string) ([]string, error) {
	if len(paths) == 0 {
		return []string{""}, nil
	}
	var out []string
	for _, p := range paths {
		rel := path.Clean(p) // keeps a leading .. or /, which ResolvePath refuses
		if rel == "." {
			out = append(out, "")
			continue
		}
		if !nameable(rel) {
			return nil, fmt.Errorf("%s: not a plain path below IMAGE_PROXY_S3_PREFIX (no .., hidden or absolute paths)", p)
		}
		if s, found := underAny(prefix+rel+"/", skip); found {
			return nil, fmt.Errorf("%s: its key %s lies under %s, where results or exported files are kept, not originals", p, prefix+rel, s)
		}
		out = append(out, rel)
	}
	return out, nil
}

// S3Sources yields the paths to warm from the bucket, as the listing
// yields them (never the whole listing at once): for "" every original,
// for a path every original under it as under a directory, or the path
// itself when nothing lies under it (an object, or a missing key, which
// the warm reports). Keys no URL can name (hidden segments, empty
// segments such as a folder marker's trailing /) are left out, as the
// walk of a directory leaves out hidden files. err is the listing's
// failure, once the sequence has been read.
func S3Sources(ctx context.Context, l Lister, paths, skip []string) (seq iter.Seq[string], err func() error) {
	var failed error
	seq = func(yield func(string) bool) {
		for _, p := range paths {
			under := p
			if p != "" {
				under += "/"
			}
			n := 0
			for rel, err := range l.List(ctx, under, skip...) {
				if err != nil {
					failed = fmt.Errorf("list %s: %w", under, err)
					return
				}
				if !nameable(rel) {
					continue
				}
				n++
				if !yield(rel) {
					return
				}
			}
			if n == 0 && p != "" && !yield(p) {
				return
			}
		}
	}
	return seq, func() error { return failed }
}

// nameable reports whether a URL path can name rel: escaped segment by
// segment, the server resolves it back to rel.
func nameable(rel string) bool {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	got, err := request.ResolvePath("/"+strings.Join(segs, "/"), "")
	return err == nil && got == rel
}

// underAny reports the prefix of prefixes that key starts with, if any.
func underAny(key string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(key, p) {
			return p, true
		}
	}
	return "", false
}
