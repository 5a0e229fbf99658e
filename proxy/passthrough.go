package proxy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"image-proxy/cache"
	"image-proxy/transform"
)

// sniffBytes is how much of a file the type check reads; SVG, being text
// with an optional prolog, needs the most.
const sniffBytes = 4096

// passthrough sends a source's bytes untouched: no decode, type from the
// bytes, conditional requests and single ranges honoured.
func (s *Server) passthrough(c *fiber.Ctx, rel string) error {
	f, fi, err := s.files.open(rel)
	if errors.Is(err, errMissing) {
		src, ferr := s.fetchFallback(c, rel)
		if ferr != nil {
			return ferr
		}
		return s.sendOriginal(c, src, nil)
	}
	if err != nil {
		return err
	}
	src := source{rel: rel, size: fi.Size(), modTime: fi.ModTime(), identity: identity(rel, fi)}
	return s.sendOriginal(c, src, f)
}

// sendOriginal answers with src's bytes, read from f when it is a local file
// (f is closed here) or from src.data.
func (s *Server) sendOriginal(c *fiber.Ctx, src source, f *os.File) error {
	var r io.ReaderAt
	if f != nil {
		r = f
	} else {
		r = bytes.NewReader(src.data)
	}
	streaming := false
	defer func() {
		if f != nil && !streaming {
			f.Close()
		}
	}()

	head := make([]byte, min(sniffBytes, src.size))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return fail(kindNotFound, "", err)
	}
	format := transform.Sniff(head)
	if format == transform.FormatUnknown {
		return fail(kindUnsupported, "", nil)
	}
	etag := strongETag("pass|" + src.identity)
	s.setImageHeaders(c, imageHeaders{format: format, etag: etag, lastModified: src.modTime,
		cacheStatus: cache.StatusBypass, passthrough: true})

	inm := c.Get(fiber.HeaderIfNoneMatch)
	if etagMatches(inm, etag) || (inm == "" && notModifiedSince(c.Get(fiber.HeaderIfModifiedSince), src.modTime)) {
		c.Status(fiber.StatusNotModified)
		return nil
	}

	start, length := int64(0), src.size
	if rng := c.Get(fiber.HeaderRange); rng != "" && c.Method() == fiber.MethodGet && s.ifRange(c, etag, src) {
		first, last, ok := parseRange(rng, src.size)
		switch {
		case !ok:
			// Unparsable or multi-range: RFC 9110 lets us send the whole.
		case first < 0:
			c.Status(fiber.StatusRequestedRangeNotSatisfiable)
			c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(src.size, 10))
			return nil
		default:
			start, length = first, last-first+1
			c.Status(fiber.StatusPartialContent)
			c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(first, 10)+"-"+
				strconv.FormatInt(last, 10)+"/"+strconv.FormatInt(src.size, 10))
		}
	}

	if c.Method() == fiber.MethodHead {
		c.Response().Header.SetContentLength(int(length))
		c.Response().SkipBody = true
		return nil
	}
	switch {
	case f == nil:
		c.Response().SetBodyRaw(src.data[start : start+length])
	case start == 0 && length == src.size:
		// fasthttp streams the file (sendfile on Linux) and closes it.
		streaming = true
		c.Response().SetBodyStream(f, int(length))
	default:
		buf := make([]byte, length)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return fail(kindInternal, "", err)
		}
		c.Response().SetBodyRaw(buf)
	}
	return nil
}

// ifRange reports whether a Range header applies given If-Range.
func (s *Server) ifRange(c *fiber.Ctx, etag string, src source) bool {
	v := c.Get(fiber.HeaderIfRange)
	if v == "" {
		return true
	}
	if strings.HasPrefix(v, `"`) {
		return v == etag
	}
	return notModifiedSince(v, src.modTime)
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
