package proxy

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"image-proxy/cache"
	"image-proxy/transform"
)

// transform answers a request with size or format: from the cache when it
// can, else by rendering once for all identical concurrent requests.
func (s *Server) transform(c *fiber.Ctx, rel string, req request) (cache.Status, error) {
	src, err := s.files.stat(rel)
	if errors.Is(err, errMissing) {
		src, err = s.fetchFallback(c, rel)
	}
	if err != nil {
		return cache.StatusBypass, err
	}

	box := req.box(s.cfg.MaxSize)
	algo := s.cfg.Algorithm
	if req.algoSet {
		algo = req.algorithm
	}
	var accept acceptClass
	formatKey := "source"
	switch {
	case req.format.auto:
		accept = classifyAccept(c.Get(fiber.HeaderAccept))
		formatKey = accept.String()
	case req.format.format != transform.FormatUnknown:
		formatKey = req.format.format.String()
	}
	key := strings.Join([]string{"v1", src.identity, strconv.Itoa(box), formatKey, algo.String(), s.cfg.EncoderSettings}, "|")
	etag := strongETag(key)
	hdr := imageHeaders{etag: etag, lastModified: src.modTime, varyDPR: req.size > 0 && !req.dprQuery, varyAccept: req.format.auto}

	// The ETag is derived from the key, so a revalidation needs no render.
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		hdr.cacheStatus = cache.StatusBypass
		hdr.format = req.format.format
		s.setImageHeaders(c, hdr)
		c.Response().Header.Del(fiber.HeaderContentType)
		c.Status(fiber.StatusNotModified)
		return hdr.cacheStatus, nil
	}
	if src.data == nil && src.size > s.cfg.MaxSourceBytes {
		return cache.StatusBypass, errSourceTooBig
	}

	opts := transform.Options{Box: box, Format: req.format.format, Algorithm: algo}
	ctx, stop := peerContext(c.UserContext(), c.Context().Conn())
	defer stop()
	val, status, err := s.cache.Fetch(ctx, key, func(ctx context.Context) ([]byte, error) {
		return s.renderSource(ctx, src, opts, req.format.auto, accept)
	})
	if err != nil {
		return status, err
	}
	hdr.format = transform.Format(val[0])
	hdr.cacheStatus = status
	s.setImageHeaders(c, hdr)
	body := val[1:]
	if c.Method() == fiber.MethodHead {
		c.Response().Header.SetContentLength(len(body))
		c.Response().SkipBody = true
		return status, nil
	}
	c.Response().SetBodyRaw(body)
	return status, nil
}

// renderSource waits for a transform slot, reads the source and renders it.
// The value it returns is the output format's byte followed by the image,
// so a cache hit knows its Content-Type without sniffing.
func (s *Server) renderSource(ctx context.Context, src source, opts transform.Options, auto bool, accept acceptClass) ([]byte, error) {
	release, err := s.limiter.acquire(ctx)
	if err != nil {
		if errors.Is(err, errOverloaded) {
			s.m.QueueRejections.Inc()
		}
		return nil, err
	}
	defer release()

	data := src.data
	if data == nil {
		if data, err = s.files.read(src.rel, s.cfg.MaxSourceBytes); err != nil {
			return nil, err
		}
	}
	if auto {
		opts.Format = accept.resolve(transform.Sniff(data[:min(len(data), sniffBytes)]))
	}
	label := opts.Format.String()
	if opts.Format == transform.FormatUnknown {
		label = "source"
	}

	s.m.TransformsInFlight.Inc()
	start := time.Now()
	res, err := s.render.Render(ctx, data, opts)
	s.m.TransformsInFlight.Dec()
	if err != nil {
		s.m.Transforms.WithLabelValues(label, "error").Inc()
		return nil, err
	}
	label = res.Format.String()
	s.m.TransformDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	s.m.Transforms.WithLabelValues(label, "ok").Inc()

	out := make([]byte, 1+len(res.Data))
	out[0] = byte(res.Format)
	copy(out[1:], res.Data)
	return out, nil
}
