package proxy

import (
	"image-proxy/request"
	"image-proxy/transform"
)

// options are the transform options of the variant v for a source of
// format in. The variant itself (its fields, key and ETag) is the request
// grammar's (request.Variant); turning it into the engine's options is
// the one step that needs both, so it lives here; live renders and warm's
// (WarmRenderer) both go through it, so a key names the same bytes
// whichever rendered it.
func options(v request.Variant, in transform.Format) transform.Options {
	return transform.Options{Box: v.Box, Format: v.Format(in), Algorithm: v.Algorithm, Quality: v.Quality,
		Width: v.Width, Height: v.Height, Fit: v.Fit, Gravity: v.Gravity, Focus: v.Focus, Background: v.Background, Blur: v.Blur}
}
