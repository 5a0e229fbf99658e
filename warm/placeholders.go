package warm

import (
	"context"

	"image-proxy/origin"
	"image-proxy/placeholder"
)

// Placeholders: an export's manifest.json records, per source, the
// placeholders format=json answers (dominant colour, BlurHash, ThumbHash,
// LQIP), so a static site gets them at build time. They come from the
// source decoded small, once per source and run, through the Renderer
// when it can describe (proxy's WarmRenderer can).

// Describer computes a source's placeholders; id is its identity, under
// which renders share its decode.
type Describer interface {
	Placeholders(ctx context.Context, src []byte, id string) (placeholder.Set, error)
}

// PlaceholderSink is a sink that records placeholders per source (the
// export's manifest).
type PlaceholderSink interface {
	// NeedsPlaceholders reports whether the sink has none for o (this
	// very version of the source) yet.
	NeedsPlaceholders(o origin.Original) bool
	// PutPlaceholders records p for o.
	PutPlaceholders(o origin.Original, p placeholder.Set)
}

// needsPlaceholders reports whether o must be described for the sink.
func (w *Warmer) needsPlaceholders(o origin.Original) bool {
	ps, ok := w.sink.(PlaceholderSink)
	_, can := w.d.Renderer.(Describer)
	return ok && can && (w.spec.Force || ps.NeedsPlaceholders(o))
}

// placeholders describes data for the sink; a failure is the source's,
// as a failed render's is.
func (w *Warmer) placeholders(ctx context.Context, o origin.Original, data []byte) error {
	p, err := w.d.Renderer.(Describer).Placeholders(ctx, data, o.Identity)
	if err != nil {
		return err
	}
	w.sink.(PlaceholderSink).PutPlaceholders(o, p)
	return nil
}

// NeedsPlaceholders: some sink of b records placeholders and has none.
func (b both) NeedsPlaceholders(o origin.Original) bool {
	for _, s := range b {
		if ps, ok := s.(PlaceholderSink); ok && ps.NeedsPlaceholders(o) {
			return true
		}
	}
	return false
}

// PutPlaceholders gives p to every sink of b that records placeholders.
func (b both) PutPlaceholders(o origin.Original, p placeholder.Set) {
	for _, s := range b {
		if ps, ok := s.(PlaceholderSink); ok {
			ps.PutPlaceholders(o, p)
		}
	}
}
