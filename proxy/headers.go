package proxy

import (
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"image-proxy/cache"
	"image-proxy/request"
	"image-proxy/transform"
)

// svgCSP keeps a passed-through SVG from running script or loading anything
// when opened directly.
const svgCSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

// imageHeaders is everything the header policy needs to know about one
// successful (200, 206 or 304) image response.
type imageHeaders struct {
	format       transform.Format
	etag         string
	lastModified time.Time
	modified     string       // lastModified as the header writes it, when made before; "" = format it
	vary         request.Vary // the client hints that could have changed the answer (the gate's)
	varyAccept   bool         // format=auto
	cacheStatus  cache.Status
	passthrough  bool
	tag          string // the source's purge tag (cache.SourceGroup), for Surrogate-Key and Cache-Tag
}

// setImageHeaders is the header table of the contract, in one place. Names
// are canonical and values fixed strings, so nothing is normalised or
// allocated (hotpath.go).
func (s *Server) setImageHeaders(c *fiber.Ctx, h imageHeaders) {
	rh := &c.Response().Header
	rh.SetContentType(h.format.MIME())
	if s.cfg.CacheControl != "" {
		setCanonical(rh, fiber.HeaderCacheControl, s.cfg.CacheControl)
	}
	setCanonical(rh, fiber.HeaderETag, h.etag)
	if h.modified != "" {
		setCanonical(rh, fiber.HeaderLastModified, h.modified)
	} else if !h.lastModified.IsZero() {
		var buf [32]byte
		rh.SetCanonical(utils.UnsafeBytes(fiber.HeaderLastModified), appendHTTPDate(buf[:0], h.lastModified))
	}
	vary := int(h.vary)
	if h.varyAccept {
		vary |= varyAccept
	}
	if v := s.vary[vary]; v != "" {
		setCanonical(rh, fiber.HeaderVary, v)
	}
	if s.acceptCH != "" {
		setCanonical(rh, fiber.HeaderAcceptCH, s.acceptCH)
	}
	setCanonical(rh, "X-Cache-Status", h.cacheStatus.String())
	setCanonical(rh, fiber.HeaderXContentTypeOptions, "nosniff")
	if s.cfg.CacheTags && h.tag != "" {
		// One tag per source: Fastly and Varnish (xkey) read
		// Surrogate-Key, Cloudflare Cache-Tag; each purges every variant
		// of a photo by it. Both CDNs drop the header before the visitor.
		setCanonical(rh, "Surrogate-Key", h.tag)
		setCanonical(rh, "Cache-Tag", h.tag)
	}
	if h.passthrough {
		setCanonical(rh, fiber.HeaderAcceptRanges, "bytes")
		if h.format == transform.FormatSVG {
			setCanonical(rh, fiber.HeaderContentSecurityPolicy, svgCSP)
		}
	}
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for part := range strings.SplitSeq(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(part), "W/") == etag {
			return true
		}
	}
	return false
}

// notModifiedSince implements If-Modified-Since at one-second precision.
func notModifiedSince(header string, modTime time.Time) bool {
	if header == "" || modTime.IsZero() {
		return false
	}
	t, err := http.ParseTime(header)
	if err != nil {
		return false
	}
	return !modTime.Truncate(time.Second).After(t)
}
