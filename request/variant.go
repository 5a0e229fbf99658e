package request

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"image-proxy/imageformat"
)

// Variant is everything that decides the bytes of one transform result.
// The cache key and the ETag derive from it alone, so a parameter that
// changes the output must be a field here, and a field here must reach the
// key: TestVariantKeyCoversEveryField fails otherwise.
type Variant struct {
	Source    string                // source identity: changes whenever the bytes may have
	Box       int                   // effective box in pixels (size × dpr, capped); 0 = source size
	Output    Output                // as asked: a format, the source's default, or auto
	Accept    AcceptClass           // what auto resolves against; zero unless Output.Auto
	Algorithm imageformat.Algorithm // resampling route
	Encoder   string                // the fingerprint of the formats Output can produce: Encoders
	Quality   int                   // ?quality= or a preset's; 0 = the format's setting

	// The shape (issue 25), each zero when the request gives none, so the
	// keys of requests without one stay as they were.
	Width, Height int                    // effective sides (× dpr, capped by one factor); 0 = not given
	Fit           imageformat.Fit        // FitUnset: contain (contain is written as unset)
	Gravity       imageformat.Gravity    // GravityUnset: the centre (center is written as unset)
	Focus         imageformat.Focus      // a focal point of the upright source
	Background    imageformat.Background // unset: opaque white (white is written as unset)
	Blur          float64                // Gaussian sigma in output pixels; 0 = none

	// JSON: format=json's answer about this output (json.go), keyed
	// apart from its image by a suffix, so image keys stay as they were.
	JSON bool
}

// Variants builds the variant of a request under the server's settings.
// It is built once and never written after.
type Variants struct {
	MaxBox    int                   // IMAGE_PROXY_MAX_SIZE
	Algorithm imageformat.Algorithm // IMAGE_PROXY_RESIZE_ALGORITHM: when the request names none
	Encoders  Encoders              // the encoder settings' fingerprints
}

// Of is the variant req asks for from the source of identity source;
// accept is the raw Accept header, reduced to its class only when
// format=auto.
func (vs Variants) Of(source string, req Request, accept string) Variant {
	v := Variant{
		Source:    source,
		Box:       req.Box(vs.MaxBox),
		Output:    req.Output,
		Algorithm: vs.Algorithm,
		Quality:   req.Quality,
	}
	if req.AlgorithmSet {
		v.Algorithm = req.Algorithm
	}
	v.Width, v.Height = req.Sides(vs.MaxBox)
	v.Fit, v.Gravity, v.Focus, v.Background, v.Blur = req.Fit, req.Gravity, req.Focus, req.Background, req.Blur
	v.JSON = req.JSON
	// The defaults spelled out make the same bytes as the defaults left
	// out: one key for both.
	if v.Fit == imageformat.FitContain {
		v.Fit = imageformat.FitUnset
	}
	if v.Gravity == imageformat.GravityCenter {
		v.Gravity = imageformat.GravityUnset
	}
	if v.Background == imageformat.White {
		v.Background = imageformat.Background{}
	}
	if req.Output.Auto {
		v.Accept = ClassifyAccept(accept)
	}
	v.Encoder = vs.Encoders.Of(v.Output, v.Accept)
	return v
}

// Fingerprints are the encoder settings' fingerprints: for the formats a
// request may produce, a stable string that changes whenever their bytes
// may (transform.Fingerprints). An interface, so the grammar needs no
// libvips.
type Fingerprints interface {
	Of(formats ...imageformat.Format) string
}

// Encoders are the encoder fingerprints a variant's key can hold, one per
// output a request can ask for, joined once at start so that a request
// builds no string. A setting then re-keys exactly the variants whose
// bytes it may change: a named format keys on that format alone; an
// output that follows the source, or format=auto, on every format that
// request could produce.
type Encoders struct {
	format map[imageformat.Format]string
	source string       // no format: the source's own, or PNG or JPEG
	auto   [2][2]string // format=auto, by [avif][webp] of the Accept class
}

// NewEncoders joins f's fingerprints for every output a request can ask
// for.
func NewEncoders(f Fingerprints) Encoders {
	k := Encoders{format: map[imageformat.Format]string{}, source: f.Of(imageformat.Outputs()...)}
	for _, out := range imageformat.Outputs() {
		k.format[out] = f.Of(out)
	}
	for _, avif := range []bool{false, true} {
		for _, webp := range []bool{false, true} {
			k.auto[b2i(avif)][b2i(webp)] = f.Of(AcceptClass{AVIF: avif, WebP: webp}.Outputs()...)
		}
	}
	return k
}

// Of is the fingerprint of the output out, resolved against accept when
// out is auto.
func (k Encoders) Of(out Output, accept AcceptClass) string {
	switch {
	case out.Auto:
		return k.auto[b2i(accept.AVIF)][b2i(accept.WebP)]
	case out.Format != imageformat.Unknown:
		return k.format[out.Format]
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
func (v Variant) Key() string { return v.KeyAfter(nil) }

// KeyAfter is prefix followed by Key, in one allocation: a cache that
// files keys under a prefix of its own (cache.SourceKey's source group)
// gets its key, and Key as a slice of it, without a second string.
func (v Variant) KeyAfter(prefix []byte) string {
	// One allocation: the builder's buffer becomes the string.
	var b strings.Builder
	var num [20]byte
	out := v.outputKey()
	algo := v.Algorithm.String()
	box := strconv.AppendInt(num[:0], int64(v.Box), 10)
	b.Grow(len(prefix) + 3 + len(v.Source) + 1 + len(box) + 1 + len(out) + 1 + len(algo) + 1 + len(v.Encoder) + 4)
	b.Write(prefix)
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
	v.writeShape(&b)
	return b.String()
}

// writeShape appends the shape fields to a key, each only when given
// ("|w1200|h630|fcover|gsmart|p0.5,0.25|bg00000080|blur2.5"), so a key
// without them is the key of before. Each part's letters tell it apart.
func (v Variant) writeShape(b *strings.Builder) {
	var num [24]byte
	if v.Width != 0 {
		b.WriteString("|w")
		b.Write(strconv.AppendInt(num[:0], int64(v.Width), 10))
	}
	if v.Height != 0 {
		b.WriteString("|h")
		b.Write(strconv.AppendInt(num[:0], int64(v.Height), 10))
	}
	if v.Fit != imageformat.FitUnset {
		b.WriteString("|f")
		b.WriteString(v.Fit.String())
	}
	if v.Gravity != imageformat.GravityUnset {
		b.WriteString("|g")
		b.WriteString(v.Gravity.String())
	}
	if v.Focus.Set {
		b.WriteString("|p")
		b.WriteString(v.Focus.String())
	}
	if v.Background.Set {
		b.WriteString("|bg")
		b.WriteString(v.Background.String())
	}
	if v.Blur != 0 {
		b.WriteString("|blur")
		b.Write(strconv.AppendFloat(num[:0], v.Blur, 'f', -1, 64))
	}
	if v.JSON {
		b.WriteString("|" + JSONVersion)
	}
}

// ETag is the strong validator of the variant's bytes.
func (v Variant) ETag() string { return StrongETag(v.Key()) }

// outputKey names the output in the key: the Accept class for auto (many
// Accept strings resolve to a few outputs), else the format or "source".
func (v Variant) outputKey() string {
	switch {
	case v.Output.Auto:
		return v.Accept.String()
	case v.Output.Format != imageformat.Unknown:
		return v.Output.Format.String()
	}
	return "source"
}

// Format is the output format for a source of format in: the one asked
// for, auto resolved against the Accept class, or Unknown when the output
// follows the source.
func (v Variant) Format(in imageformat.Format) imageformat.Format {
	if v.Output.Auto {
		return v.Accept.Resolve(in)
	}
	return v.Output.Format
}

// StrongETag hashes a source identity or cache key into a quoted strong
// ETag: a variant's (Variant.ETag), a passthrough's, a document's.
func StrongETag(key string) string {
	var b [18]byte
	b[0], b[17] = '"', '"'
	sum := xxhash.Sum64String(key)
	for i := 0; i < 8; i++ {
		hex.Encode(b[1+2*i:3+2*i], []byte{byte(sum >> (56 - 8*i))})
	}
	return string(b[:])
}
