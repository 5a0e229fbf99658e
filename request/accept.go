package request

import (
	"strconv"
	"strings"

	"image-proxy/imageformat"
)

// accepts reports whether an Accept header lists mime with a non-zero q.
// Wildcards do not count: browsers name the modern formats they decode.
func accepts(header, mime string) bool {
	for part := range strings.SplitSeq(header, ",") {
		fields := strings.Split(part, ";")
		if !strings.EqualFold(strings.TrimSpace(fields[0]), mime) {
			continue
		}
		for _, p := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q <= 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}

// AcceptClass is the part of Accept that format=auto depends on; it goes
// into the cache key instead of the raw header: browsers send many Accept
// strings that resolve to a few outputs.
type AcceptClass struct{ AVIF, WebP bool }

// ClassifyAccept reduces an Accept header to its class.
func ClassifyAccept(accept string) AcceptClass {
	return AcceptClass{AVIF: accepts(accept, imageformat.AVIF.MIME()), WebP: accepts(accept, imageformat.WebP.MIME())}
}

// String is the class as the key writes it: auto, auto+webp, auto+avif+webp.
func (a AcceptClass) String() string {
	s := "auto"
	if a.AVIF {
		s += "+avif"
	}
	if a.WebP {
		s += "+webp"
	}
	return s
}

// Outputs are the formats Resolve can pick for this class, whatever the
// source: what a format=auto variant's key must fingerprint.
func (a AcceptClass) Outputs() []imageformat.Format {
	switch {
	case a.AVIF:
		return []imageformat.Format{imageformat.AVIF}
	case a.WebP:
		return []imageformat.Format{imageformat.WebP}
	}
	return []imageformat.Format{imageformat.JPEG, imageformat.PNG, imageformat.GIF}
}

// Resolve picks the output of format=auto for a given source format.
func (a AcceptClass) Resolve(src imageformat.Format) imageformat.Format {
	switch {
	case a.AVIF:
		return imageformat.AVIF
	case a.WebP:
		return imageformat.WebP
	case src == imageformat.JPEG || src == imageformat.PNG || src == imageformat.GIF:
		return src
	}
	return imageformat.JPEG
}
