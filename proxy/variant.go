package proxy

import (
	"strconv"
	"strings"

	"image-proxy/origin"
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
	Encoder   string              // the fingerprint of the formats Output can produce: encoderKeys
	Quality   int                 // ?quality= or a preset's; 0 = the format's setting
}

// variantOf builds the variant a request asks for from src; accept is the
// raw Accept header, reduced to its class only when format=auto.
func (s *Server) variantOf(o origin.Original, req request, accept string) Variant {
	v := Variant{
		Source:    o.Identity,
		Box:       req.box(s.cfg.MaxBox),
		Output:    req.format,
		Algorithm: s.cfg.Algorithm,
		Quality:   req.quality,
	}
	if req.algoSet {
		v.Algorithm = req.algorithm
	}
	if req.format.auto {
		v.Accept = classifyAccept(accept)
	}
	v.Encoder = s.encoders.of(v.Output, v.Accept)
	return v
}

// encoderKeys are the encoder fingerprints a variant's key can hold, one
// per output a request can ask for, joined once at start so that a
// request builds no string. A setting then re-keys exactly the variants
// whose bytes it may change: a named format keys on that format alone;
// an output that follows the source, or format=auto, on every format that
// request could produce.
type encoderKeys struct {
	format map[transform.Format]string
	source string       // no format: the source's own, or PNG or JPEG
	auto   [2][2]string // format=auto, by [avif][webp] of the Accept class
}

func newEncoderKeys(f transform.Fingerprints) encoderKeys {
	k := encoderKeys{format: map[transform.Format]string{}, source: f.Of(transform.Outputs()...)}
	for _, out := range transform.Outputs() {
		k.format[out] = f.Of(out)
	}
	for _, avif := range []bool{false, true} {
		for _, webp := range []bool{false, true} {
			k.auto[b2i(avif)][b2i(webp)] = f.Of(acceptClass{avif: avif, webp: webp}.outputs()...)
		}
	}
	return k
}

func (k encoderKeys) of(out outputFormat, accept acceptClass) string {
	switch {
	case out.auto:
		return k.auto[b2i(accept.avif)][b2i(accept.webp)]
	case out.format != transform.FormatUnknown:
		return k.format[out.format]
	}
	return k.source
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Key is the cache key. Its layout is unchanged since the first release, so
// ETags (and CDN revalidations) survive an upgrade: a quality is appended
// ("|q75") only when one was asked for, so keys without one keep their bytes.
func (v Variant) Key() string {
	// One allocation: the builder's buffer becomes the string.
	var b strings.Builder
	var num [20]byte
	out := v.outputKey()
	algo := v.Algorithm.String()
	box := strconv.AppendInt(num[:0], int64(v.Box), 10)
	b.Grow(3 + len(v.Source) + 1 + len(box) + 1 + len(out) + 1 + len(algo) + 1 + len(v.Encoder) + 4)
	b.WriteString("v1|")
	b.WriteString(v.Source)
	b.WriteByte('|')
	b.Write(box)
	b.WriteByte('|')
	b.WriteString(out)
	b.WriteByte('|')
	b.WriteString(algo)
	b.WriteByte('|')
	b.WriteString(v.Encoder)
	if v.Quality != 0 {
		b.WriteString("|q")
		b.Write(strconv.AppendInt(num[:0], int64(v.Quality), 10))
	}
	return b.String()
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
