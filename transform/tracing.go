package transform

import (
	"context"

	"image-proxy/metrics/spans"
)

// Tracing: a render's stages are spans under the span its context carries
// (the caller's), made with that span's own provider, so transform needs no
// tracer of its own and knows nothing of where the trace came from. With
// no recording span in the context nothing is made.
//
// libvips evaluates lazily: transform.decode covers sniffing, the header
// and setting up the load; transform.resize the resize, colour, alpha and
// orientation steps (which mostly build the pipeline); most pixel work,
// the decode included, runs when transform.encode pulls the pixels through.

// stage starts the span of one stage of a render.
func stage(ctx context.Context, name string) spans.Span {
	_, sp := spans.Child(ctx, name)
	return sp
}
