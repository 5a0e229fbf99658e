package proxy

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"image-proxy/cache"
	"image-proxy/fault"
	"image-proxy/imageformat"
	"image-proxy/origin"
	"image-proxy/placeholder"
	"image-proxy/request"
	"image-proxy/transform"
)

// format=json: the answer that describes a source, the output its other
// parameters make, and its placeholders (request/json.go). It is a variant
// like any other: the same gate, sources, key (with its own suffix), ETag,
// 304, cache tiers, slots and traces as an image; only the body is the
// engine's Describe, written as JSON, instead of a render.

// describer is an Engine that answers format=json (transform.Engine is);
// apart from Engine so that an engine made for a test need not.
type describer interface {
	Describe(ctx context.Context, src []byte, opts transform.Options, output bool) (transform.Facts, error)
}

var errNoDescriber = fault.New(fault.Internal, "", errors.New("the engine cannot describe images"))

// Facts is the JSON answer of format=json (apidocs/openapi.json's Facts
// schema describes it; TestFactsMatchTheSchema holds them together).
type Facts struct {
	Source       SourceFacts     `json:"source"`
	Output       *OutputFacts    `json:"output,omitempty"` // only with transform parameters
	Placeholders placeholder.Set `json:"placeholders"`     // what a page paints while the image loads
}

// SourceFacts describe the original; width and height are upright.
type SourceFacts struct {
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Format      string `json:"format"`
	Bytes       int    `json:"bytes"`
	Orientation int    `json:"orientation"`
	HasAlpha    bool   `json:"has_alpha"`
	Animated    bool   `json:"animated"`
	Frames      int    `json:"frames"`
	Colorspace  string `json:"colorspace"`
}

// OutputFacts are the exact size (one frame) and format of the image the
// same URL without format=json returns.
type OutputFacts struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Format string `json:"format"`
}

func newFacts(f transform.Facts) Facts {
	s := f.Source
	out := Facts{
		Source: SourceFacts{Width: s.Width, Height: s.Height, Format: s.Format.String(), Bytes: s.Bytes,
			Orientation: s.Orientation, HasAlpha: s.HasAlpha, Animated: s.Animated, Frames: s.Frames, Colorspace: s.Colorspace},
		Placeholders: f.Placeholders,
	}
	if f.Output != nil {
		out.Output = &OutputFacts{Width: f.Output.Width, Height: f.Output.Height, Format: f.Output.Format.String()}
	}
	return out
}

// describe answers format=json: from the cache when it can, else by
// describing the source once for all identical concurrent requests.
func (s *Server) describe(c *fiber.Ctx, rel string, req request.Request, vary request.Vary) (cache.Status, error) {
	ctx := c.UserContext()
	o, src, err := s.sources.Stat(ctx, rel)
	if err != nil {
		return cache.StatusBypass, err
	}
	accept := ""
	if req.Output.Auto {
		accept = c.Get(fiber.HeaderAccept) // a preset's format=auto: the output follows Accept
	}
	v := s.variants.Of(o.Identity, req, accept)
	key, vkey, group := storeKey(rel, v)
	hdr := imageHeaders{etag: request.StrongETag(vkey), tag: group, lastModified: o.ModTime,
		vary: vary, varyAccept: req.Output.Auto}
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), hdr.etag) {
		return s.revalidated(c, hdr), nil
	}
	if o.Size > s.cfg.MaxSourceBytes {
		return cache.StatusBypass, errSourceTooBig
	}
	val, status, ok := s.cache.Cached(ctx, key)
	if !ok {
		val, status, err = s.fetch(ctx, c, key, func(ctx context.Context) ([]byte, error) {
			return s.describeSource(ctx, src, o, v, req.Transform)
		})
		if err != nil {
			return status, err
		}
	}
	_, body := imageformat.Untag(val)
	hdr.cacheStatus = status
	s.setImageHeaders(c, hdr)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	writeBody(c, body)
	return status, nil
}

// describeSource waits for a transform slot, reads the original and
// describes it; output: the request has transform parameters, whose
// output the answer reports. The value is tagged as a render's is, with
// no format: the key's suffix is what says it is JSON.
func (s *Server) describeSource(ctx context.Context, src origin.Source, o origin.Original, v request.Variant, output bool) ([]byte, error) {
	sl, data, opts, err := s.readInSlot(ctx, src, o, v)
	if err != nil {
		return nil, err
	}
	defer sl.Leave()
	opts.Decodes = s.decodeStore(o)
	d, ok := s.engine.(describer)
	if !ok {
		return nil, errNoDescriber
	}
	s.m.TransformsInFlight.Inc()
	f, err := d.Describe(ctx, data, opts, output)
	s.m.TransformsInFlight.Dec()
	if err != nil {
		return nil, err
	}
	body, err := marshalLine(newFacts(f))
	if err != nil {
		return nil, err
	}
	return imageformat.Tag(imageformat.Unknown, body), nil
}

// Placeholders describes a source for warm's export manifest
// (warm.Describer): the placeholders format=json answers, from the same
// small decode.
func (r WarmRenderer) Placeholders(ctx context.Context, data []byte, id string) (placeholder.Set, error) {
	d, ok := r.s.engine.(describer)
	if !ok {
		return placeholder.Set{}, errNoDescriber
	}
	f, err := d.Describe(ctx, data, transform.Options{Source: id}, false)
	return f.Placeholders, err
}
