package request

// Intermediates decides which variants' keys name the stored intermediate
// (transform's, issue 27): the variants of a source of at least MinBytes
// whose bounds may fit in an intermediate of Side pixels. Whether one
// really goes through it depends on the source's dimensions, which the
// key cannot see before reading the source; a key that names it for a
// variant rendered directly costs nothing but the name. A key without it
// is always rendered directly (the proxy gives the engine a store only
// when the key names the intermediate), so a key always names its bytes.
type Intermediates struct {
	Side     int    // IMAGE_PROXY_INTERMEDIATE_SIZE; 0 = off
	MinBytes int64  // IMAGE_PROXY_INTERMEDIATE_MIN_SOURCE_BYTES
	Tag      string // transform.Intermediate.Tag: the side and the rule
}

// of is the Intermediate field of v for a source of size bytes: the tag,
// or "" when v never goes through an intermediate.
func (r Intermediates) of(v Variant, size int64) string {
	if r.Side == 0 || r.Tag == "" || size < r.MinBytes {
		return ""
	}
	fits := func(bound int) bool { return bound > 0 && bound <= r.Side }
	if v.Box > 0 {
		if fits(v.Box) {
			return r.Tag
		}
		return ""
	}
	if fits(v.Width) || fits(v.Height) {
		return r.Tag
	}
	return ""
}

// OfSource is Of for a source of size bytes: the variant's key also names
// the stored intermediate when the variant may be rendered through it.
// Live requests and warm build their variants with it, so both compute
// the same keys.
func (vs Variants) OfSource(source string, size int64, req Request, accept string) Variant {
	v := vs.Of(source, req, accept)
	v.Intermediate = vs.Intermediates.of(v, size)
	return v
}
