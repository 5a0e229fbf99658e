package proxy

import (
	"strconv"

	"image-proxy/transform"
)

// Variant is everything that decides the bytes of one transform result.
// The cache key and the ETag derive from it alone, so a parameter that
// changes the output must be a field here, and a field here must reach the
// key: TestVariantKeyCoversEveryField fails otherwise.
type Variant struct {
	Source    string              // source identity: changes whenever the bytes may have
	Box       int                 // effective box in pixels (size × dpr, capped); 0 = source size
	Output    outputFormat        // as asked: a format, the source's default, or auto
	Accept    acceptClass         // what auto resolves against; zero unless Output.auto
	Algorithm transform.Algorithm // resampling route
	Encoder   string              // transform.Config.Fingerprint(): qualities, efforts
	Quality   int                 // ?quality= or a preset's; 0 = the format's setting
}

// variantOf builds the variant a request asks for from src; accept is the
// raw Accept header, reduced to its class only when format=auto.
func (s *Server) variantOf(o Original, req request, accept string) Variant {
	v := Variant{
		Source:    o.Identity,
		Box:       req.box(s.cfg.MaxBox),
		Output:    req.format,
		Algorithm: s.cfg.Algorithm,
		Encoder:   s.cfg.EncoderSettings,
		Quality:   req.quality,
	}
	if req.algoSet {
		v.Algorithm = req.algorithm
	}
	if req.format.auto {
		v.Accept = classifyAccept(accept)
	}
	return v
}

// Key is the cache key. Its layout is unchanged since the first release, so
// ETags (and CDN revalidations) survive an upgrade: a quality is appended
// ("|q75") only when one was asked for, so keys without one keep their bytes.
func (v Variant) Key() string {
	b := make([]byte, 0, 64+len(v.Source)+len(v.Encoder))
	b = append(b, "v1|"...)
	b = append(b, v.Source...)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(v.Box), 10)
	b = append(b, '|')
	b = append(b, v.outputKey()...)
	b = append(b, '|')
	b = append(b, v.Algorithm.String()...)
	b = append(b, '|')
	b = append(b, v.Encoder...)
	if v.Quality != 0 {
		b = append(b, "|q"...)
		b = strconv.AppendInt(b, int64(v.Quality), 10)
	}
	return string(b)
}

// ETag is the strong validator of the variant's bytes.
func (v Variant) ETag() string { return strongETag(v.Key()) }

// outputKey names the output in the key: the Accept class for auto (many
// Accept strings resolve to a few outputs), else the format or "source".
func (v Variant) outputKey() string {
	switch {
	case v.Output.auto:
		return v.Accept.String()
	case v.Output.format != transform.FormatUnknown:
		return v.Output.format.String()
	}
	return "source"
}

// Options are the transform options of the variant for a source of type in.
func (v Variant) Options(in transform.Format) transform.Options {
	f := v.Output.format
	if v.Output.auto {
		f = v.Accept.resolve(in)
	}
	return transform.Options{Box: v.Box, Format: f, Algorithm: v.Algorithm, Quality: v.Quality}
}
