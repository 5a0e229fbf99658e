// Package origin is where originals come from: a Chain of Sources asked in
// order, the local root directory (with its stat cache), an S3-compatible
// bucket and the fallback upstream, each with its own settings. It knows
// nothing of HTTP serving: paths reach it already checked, and its errors
// are fault kinds the HTTP layer turns into responses.
package origin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"image-proxy/fault"
)

// Original is what a source knows of an image before its bytes are read.
type Original struct {
	Rel      string
	Size     int64
	ModTime  time.Time // zero when unknown
	Identity string    // changes whenever the bytes may have; feeds keys and ETags

	// data is the whole original when describing it meant fetching it (the
	// fallback upstream), so a render does not fetch it a second time.
	data []byte
}

// Body is an opened original: random access for sniffing and ranges.
type Body interface {
	io.ReaderAt
	io.Closer
}

// Source is one place originals come from. rel has passed every path-safety
// rule already. ErrMissing from either method means "not here: ask the next
// source"; any other error ends the search.
type Source interface {
	// Stat describes rel without reading it (transforms key on this).
	Stat(ctx context.Context, rel string) (Original, error)
	// Open returns rel's bytes and a description taken from the opened
	// object itself, so the two always agree. The caller closes the body.
	Open(ctx context.Context, rel string) (Original, Body, error)
	// Kind names the source in traces and logs ("local", "s3", …), so no
	// caller has to tell sources apart by their type.
	Kind() string
}

// ErrMissing means the source has nothing at the path.
var ErrMissing = errors.New("no such original")

// Chain asks its sources in order; the first that has the path answers.
type Chain []Source

// Stat describes rel from the first source that has it.
func (c Chain) Stat(ctx context.Context, rel string) (Original, Source, error) {
	for _, s := range c {
		o, err := s.Stat(ctx, rel)
		if !errors.Is(err, ErrMissing) {
			return o, s, err
		}
	}
	return Original{}, nil, fault.New(fault.NotFound, "", nil)
}

// Open opens rel from the first source that has it.
func (c Chain) Open(ctx context.Context, rel string) (Original, Body, error) {
	for _, s := range c {
		o, b, err := s.Open(ctx, rel)
		if !errors.Is(err, ErrMissing) {
			return o, b, err
		}
	}
	return Original{}, nil, fault.New(fault.NotFound, "", nil)
}

// Forgetter is a source that remembers what it learnt of its originals
// (the S3 identity cache) and can be told to drop what it knows of one.
type Forgetter interface {
	Forget(rel string)
}

// Forget drops what every source of the chain remembers of rel, so the
// next request describes it afresh: an event or a purge calls it when rel
// was replaced or removed.
func (c Chain) Forget(rel string) {
	for _, s := range c {
		if f, ok := s.(Forgetter); ok {
			f.Forget(rel)
		}
	}
}

// ReadAll reads the original src described as o whole, refusing one over
// limit bytes.
func ReadAll(ctx context.Context, src Source, o Original, limit int64) ([]byte, error) {
	if o.data != nil {
		if o.Size > limit {
			return nil, errSourceTooBig
		}
		return o.data, nil
	}
	opened, b, err := src.Open(ctx, o.Rel)
	if errors.Is(err, ErrMissing) {
		return nil, fault.New(fault.NotFound, "", err) // gone since it was described
	}
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if o.Identity != "" && opened.Identity != o.Identity {
		// Replaced since it was described: the caller's key was built from
		// o, and these bytes must never be stored under it. The source has
		// learnt the new identity, so a retry is keyed on it. (A caller
		// with no identity keyed nothing on one.)
		return nil, errChanged
	}
	o = opened
	if o.Size > limit {
		return nil, errSourceTooBig
	}
	if mb, ok := b.(MemoryBody); ok {
		return mb.Bytes(), nil
	}
	buf := make([]byte, o.Size)
	if _, err := b.ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && o.Size == 0) {
		return nil, fault.New(fault.Unprocessable, "", err)
	}
	return buf, nil
}

var errSourceTooBig = fault.New(fault.SourceTooBig, "", nil)

// errChanged is a 503: the next request describes the new version.
var errChanged = fault.New(fault.Overloaded, "The image changed while it was read; retry.", ErrChanged)

// ErrChanged means an original's bytes are no longer the version it was
// described as.
var ErrChanged = errors.New("original replaced since it was described")

// MemoryBody is an original already in memory (a fetched one): it is sent
// and rendered from the slice, never copied.
type MemoryBody struct {
	*bytes.Reader
	data []byte
}

// NewMemoryBody is a Body over b, which the caller must not modify.
func NewMemoryBody(b []byte) MemoryBody { return MemoryBody{bytes.NewReader(b), b} }

// Close has nothing to release.
func (m MemoryBody) Close() error { return nil }

// Bytes is the whole original; callers must not modify it.
func (m MemoryBody) Bytes() []byte { return m.data }
