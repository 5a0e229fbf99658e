package proxy

import (
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"image-proxy/cache"
	"image-proxy/fault"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

// sniffBytes is how much of a file the type check reads; SVG, being text
// with an optional prolog, needs the most.
const sniffBytes = 4096

// passthrough sends an original's bytes untouched: no decode, type from
// the bytes, conditional requests and single ranges honoured.
func (s *Server) passthrough(c *fiber.Ctx, rel string) error {
	o, body, err := s.sources.Open(c.UserContext(), rel)
	if err != nil {
		return err
	}
	streaming := false
	defer func() {
		if !streaming {
			body.Close()
		}
	}()
	head := make([]byte, min(sniffBytes, o.Size))
	if _, err := body.ReadAt(head, 0); err != nil && err != io.EOF {
		return fault.New(fault.NotFound, "", err)
	}
	format := transform.Sniff(head)
	if format == transform.FormatUnknown {
		return fault.New(fault.Unsupported, "", nil)
	}
	etag := request.StrongETag("pass|" + o.Identity)
	hdr := imageHeaders{format: format, etag: etag, lastModified: o.ModTime, cacheStatus: cache.StatusBypass, passthrough: true}
	if s.cfg.CacheTags { // a hash and a string only when the header is sent
		hdr.tag = cache.SourceGroup(rel)
	}
	s.setImageHeaders(c, hdr)
	if s.notModified(c, etag, o.ModTime) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	start, length, ok := s.byteRange(c, etag, o)
	if !ok {
		return nil // 416, answered
	}
	if c.Method() == fiber.MethodHead {
		c.Response().Header.SetContentLength(int(length))
		c.Response().SkipBody = true
		return nil
	}
	streaming, err = sendBody(c, body, start, length, o.Size)
	return err
}

// notModified answers If-None-Match, or If-Modified-Since when there is no
// If-None-Match (RFC 9110 13.2.2).
func (s *Server) notModified(c *fiber.Ctx, etag string, modTime time.Time) bool {
	inm := c.Get(fiber.HeaderIfNoneMatch)
	return etagMatches(inm, etag) || (inm == "" && notModifiedSince(c.Get(fiber.HeaderIfModifiedSince), modTime))
}

// byteRange is the part of o to send: the whole, or one satisfiable range
// (206 set here). ok=false means the answer (416) is complete.
func (s *Server) byteRange(c *fiber.Ctx, etag string, o origin.Original) (start, length int64, ok bool) {
	rng := c.Get(fiber.HeaderRange)
	if rng == "" || c.Method() != fiber.MethodGet || !s.ifRange(c, etag, o.ModTime) {
		return 0, o.Size, true
	}
	first, last, parsed := parseRange(rng, o.Size)
	switch {
	case !parsed:
		// Unparsable or multi-range: RFC 9110 lets us send the whole.
		return 0, o.Size, true
	case first < 0:
		c.Status(fiber.StatusRequestedRangeNotSatisfiable)
		c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(o.Size, 10))
		return 0, 0, false
	}
	c.Status(fiber.StatusPartialContent)
	c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(first, 10)+"-"+
		strconv.FormatInt(last, 10)+"/"+strconv.FormatInt(o.Size, 10))
	return first, last - first + 1, true
}

// sendBody sets the response body to length bytes of body from start.
// streaming reports that fasthttp took the body and will close it.
func sendBody(c *fiber.Ctx, body origin.Body, start, length, size int64) (streaming bool, err error) {
	switch b := body.(type) {
	case origin.MemoryBody:
		c.Response().SetBodyRaw(b.Bytes()[start : start+length])
		return false, nil
	case *os.File:
		if start == 0 && length == size {
			// fasthttp streams the file (sendfile on Linux) and closes it.
			c.Response().SetBodyStream(b, int(length))
			return true, nil
		}
	}
	buf := make([]byte, length)
	if _, err := body.ReadAt(buf, start); err != nil && err != io.EOF {
		return false, fault.New(fault.Internal, "", err)
	}
	c.Response().SetBodyRaw(buf)
	return false, nil
}

// ifRange reports whether a Range header applies given If-Range.
func (s *Server) ifRange(c *fiber.Ctx, etag string, modTime time.Time) bool {
	v := c.Get(fiber.HeaderIfRange)
	if v == "" {
		return true
	}
	if strings.HasPrefix(v, `"`) {
		return v == etag
	}
	return notModifiedSince(v, modTime)
}

// parseRange understands one "bytes=" range. ok=false means "ignore the
// header"; first<0 means "not satisfiable".
func parseRange(h string, size int64) (first, last int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		if n == 0 || size == 0 {
			return -1, -1, true
		}
		return max(size-n, 0), size - 1, true
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 {
			return 0, 0, false
		}
		e := size - 1
		if b != "" {
			if e2, err := strconv.ParseInt(b, 10, 64); err != nil || e2 < s {
				return 0, 0, false
			} else if e2 < e {
				e = e2
			}
		}
		if s >= size {
			return -1, -1, true
		}
		return s, e, true
	}
}
