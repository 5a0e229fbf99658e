package events

import (
	"strings"

	"image-proxy/request"
)

// Scope is which objects' events are this server's: its originals, in its
// bucket, under its prefix, and never what it writes itself.
type Scope struct {
	Bucket string // IMAGE_PROXY_S3_BUCKET
	Prefix string // IMAGE_PROXY_S3_PREFIX: originals' keys start with it
	// Own are the prefixes this server writes under in the bucket (the
	// shared result tier's, the events' export): the recursion guard.
	// They are excluded even when Prefix is empty and contains them.
	Own []string
}

// Why an event in the right form is not acted on: the values of the
// "reason" attribute of the log line.
const (
	ReasonKind      = "not an object creation or deletion"
	ReasonBucket    = "another bucket"
	ReasonPrefix    = "outside IMAGE_PROXY_S3_PREFIX"
	ReasonOwn       = "under a prefix this server writes (results or export)"
	ReasonPath      = "not a path the server serves (hidden, .., or empty segments)"
	ReasonDirectory = "a folder marker, not an object"
)

// Rel is the request path of r's object (its key less the prefix), or why
// the event is not this server's.
func (s Scope) Rel(r Record) (rel, why string) {
	switch {
	case r.Kind == Other:
		return "", ReasonKind
	case r.Bucket != s.Bucket:
		return "", ReasonBucket
	case !strings.HasPrefix(r.Key, s.Prefix):
		return "", ReasonPrefix
	}
	for _, own := range s.Own {
		if own != "" && strings.HasPrefix(r.Key, own) {
			return "", ReasonOwn
		}
	}
	rel = strings.TrimPrefix(r.Key, s.Prefix)
	if rel == "" || strings.HasSuffix(rel, "/") {
		return "", ReasonDirectory
	}
	// Checked by the request rules: an event must not reach what a URL
	// cannot.
	if got, ok := request.PlainPath(rel); !ok || got != rel {
		return "", ReasonPath
	}
	return rel, ""
}
