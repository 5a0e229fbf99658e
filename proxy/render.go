package proxy

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"image-proxy/cache"
	"image-proxy/fault"
	"image-proxy/imageformat"
	"image-proxy/metrics"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

// errSourceTooBig refuses to render an original over MaxSourceBytes (it
// may still be passed through).
var errSourceTooBig = fault.New(fault.SourceTooBig, "", nil)

// transform answers a request with size or format: from the cache when it
// can, else by rendering once for all identical concurrent requests.
func (s *Server) transform(c *fiber.Ctx, p *parsed) (cache.Status, error) {
	ctx, req := c.UserContext(), p.req
	o, src, err := s.sources.Stat(ctx, p.rel)
	if err != nil {
		return cache.StatusBypass, err
	}
	accept := ""
	if req.Output.Auto {
		accept = c.Get(fiber.HeaderAccept)
	}
	k := s.variantKeys(p, o, accept) // once: the ETag and the cache look-up both need it
	key, v := k.key, k.v
	hdr := imageHeaders{etag: k.etag, tag: k.group, lastModified: o.ModTime, modified: k.modified,
		vary: p.vary, varyAccept: req.Output.Auto}

	// The ETag is derived from the key, so a revalidation needs no render.
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), hdr.etag) {
		hdr.format = req.Output.Format
		return s.revalidated(c, hdr), nil
	}
	if o.Size > s.cfg.MaxSourceBytes {
		return cache.StatusBypass, errSourceTooBig
	}

	// A hit is answered before the hang-up watch (a timer and a context)
	// that only a wait or a render needs.
	// A disk hit may come as the tag and a file of the image (cache.File).
	hit, status, ok := s.cache.Open(ctx, key, imageformat.TagBytes)
	if !ok {
		if hit.Value, status, err = s.fetchRender(ctx, c, key, src, o, v); err != nil {
			return status, err
		}
	}
	var body []byte
	hdr.format, body = imageformat.Untag(hit.Value)
	hdr.cacheStatus = status
	s.setImageHeaders(c, hdr)
	if hit.File != nil {
		sendFile(c, hit.File)
	} else {
		writeBody(c, body)
	}
	return status, nil
}

// revalidated answers a revalidation of a variant: its headers, a 304,
// no body and no Content-Type.
func (s *Server) revalidated(c *fiber.Ctx, hdr imageHeaders) cache.Status {
	hdr.cacheStatus = cache.StatusBypass
	s.setImageHeaders(c, hdr)
	c.Response().Header.Del(fiber.HeaderContentType)
	c.Status(fiber.StatusNotModified)
	return hdr.cacheStatus
}

// writeBody sends body, or for HEAD only its length.
func writeBody(c *fiber.Ctx, body []byte) {
	if c.Method() == fiber.MethodHead {
		c.Response().Header.SetContentLength(len(body))
		c.Response().SkipBody = true
		return
	}
	c.Response().SetBodyRaw(body)
}

// sendFile sends the rest of a value from its file, which fasthttp
// closes once written (sendfile on a plain TCP connection: fasthttp's
// writer hands the cache.File's reader to the connection's ReadFrom), or
// for HEAD only its length.
func sendFile(c *fiber.Ctx, f *cache.File) {
	n := int(f.Len())
	if c.Method() == fiber.MethodHead {
		f.Close()
		c.Response().Header.SetContentLength(n)
		c.Response().SkipBody = true
		return
	}
	c.Response().SetBodyStream(f, n)
}

// storeKey is v's key in the tiers (cache.SourceKey: filed under rel's
// group, so a purge of rel is a prefix operation), built in one
// allocation; the variant's own key (the ETag's) and the group (the
// purge tag) are slices of it.
func storeKey(rel string, v request.Variant) (key, vkey, group string) {
	var prefix [cache.GroupPrefixLen]byte
	key = v.KeyAfter(cache.AppendGroupPrefix(prefix[:0], rel))
	return key, key[cache.GroupPrefixLen:], key[:cache.GroupPrefixLen-1]
}

// fetch is the cache's slow path: other tiers, a wait for the same key, or
// make (a render, a description), cancelled when the client hangs up.
func (s *Server) fetch(ctx context.Context, c *fiber.Ctx, key string, make cache.RenderFunc) ([]byte, cache.Status, error) {
	ctx, stop := peerContext(ctx, c.Context().Conn())
	defer stop()
	return s.cache.Fetch(ctx, key, make)
}

// fetchRender is fetch with a render of v. Its own function, so the
// closure and what it captures are only made on a miss: a memory hit
// allocates nothing for them.
func (s *Server) fetchRender(ctx context.Context, c *fiber.Ctx, key string, src origin.Source, o origin.Original, v request.Variant) ([]byte, cache.Status, error) {
	return s.fetch(ctx, c, key, func(ctx context.Context) ([]byte, error) {
		return s.renderSource(ctx, src, o, v)
	})
}

// renderSource waits for a transform slot, reads the original and renders
// it. The value it returns is imageformat.Tag's: a cache hit knows its
// Content-Type without sniffing.
func (s *Server) renderSource(ctx context.Context, src origin.Source, o origin.Original, v request.Variant) ([]byte, error) {
	sl, data, opts, err := s.readInSlot(ctx, src, o, v)
	if err != nil {
		return nil, err
	}
	defer sl.Leave()
	opts.Decodes = s.decodeStore(o)
	res, err := s.render(ctx, data, opts)
	if err != nil {
		return nil, err
	}
	return imageformat.Tag(res.Format, res.Data), nil
}

// readInSlot waits for a transform slot, reads the original whole and
// returns the engine's options of v for it; unless it fails, the caller
// leaves the slot. Renders of one source share its decode, and one
// waiting for another's decode gives its slot back meanwhile (the options'
// Source and Gate).
func (s *Server) readInSlot(ctx context.Context, src origin.Source, o origin.Original, v request.Variant) (*slot, []byte, transform.Options, error) {
	sl, err := s.enterSlot(ctx)
	if err != nil {
		return nil, nil, transform.Options{}, err
	}
	rctx, read := s.tracing.Start(ctx, "source.read")
	data, err := origin.ReadAll(rctx, src, o, s.cfg.MaxSourceBytes)
	read.End(err)
	if err != nil {
		sl.Leave()
		return nil, nil, transform.Options{}, err
	}
	opts := options(v, transform.Sniff(data[:min(len(data), sniffBytes)]))
	opts.Source, opts.Gate = v.Source, sl
	return sl, data, opts, nil
}

// enterSlot waits for a transform slot; the caller must Leave it.
func (s *Server) enterSlot(ctx context.Context) (*slot, error) {
	sl := &slot{s: s}
	_, wait := s.tracing.Start(ctx, "queue.wait")
	err := sl.Enter(ctx)
	wait.End(err)
	return sl, err
}

// render runs the engine in a slot the caller holds, and counts it as live
// work: a request waits for it.
func (s *Server) render(ctx context.Context, data []byte, opts transform.Options) (transform.Result, error) {
	s.m.TransformsInFlight.Inc()
	start := time.Now()
	res, err := s.engine.Render(ctx, data, opts)
	s.m.TransformsInFlight.Dec()
	s.countRender(metrics.WorkLive, opts, res, err, time.Since(start))
	return res, err
}

// WarmRenderer renders for warm (warm.Renderer, given by main): the
// variants of one source from one decode, each with the options the live
// path renders it with (options), and counts them as warm work through
// countRender, the one place live renders are counted too.
type WarmRenderer struct{ s *Server }

// WarmRenderer is the server's renderer for warm.
func (s *Server) WarmRenderer() WarmRenderer { return WarmRenderer{s} }

// RenderMany renders every distinct output of vs once (two variants can
// share one: 720@2x and 1440@1x) and returns one result and one error per
// variant, in order. o is the source data was read from: a variant whose
// key names the stored intermediate is rendered through o's, as live.
func (r WarmRenderer) RenderMany(ctx context.Context, o origin.Original, data []byte, vs []request.Variant) ([]transform.Result, []error) {
	in := transform.Sniff(data[:min(len(data), sniffBytes)])
	var opts []transform.Options
	index := make([]int, len(vs))
	for i, v := range vs {
		opt := options(v, in)
		opt.Decodes = r.s.decodeStore(o)
		j := slices.Index(opts, opt)
		if j < 0 {
			j = len(opts)
			opts = append(opts, opt)
		}
		index[i] = j
	}
	results, errs := r.s.renderMany(ctx, data, opts)
	out, outErrs := make([]transform.Result, len(vs)), make([]error, len(vs))
	for i, j := range index {
		out[i], outErrs[i] = results[j], errs[j]
	}
	return out, outErrs
}

// manyRenderer renders several variants of one source from one decode
// (transform.Engine does).
type manyRenderer interface {
	RenderMany(ctx context.Context, src []byte, opts []transform.Options) ([]transform.Result, []error)
}

// renderMany renders every option of one source for a warm, from one
// decode when the engine can, and counts each variant as warm work. The
// batch runs its variants one after another: one transform in flight.
// Each variant's duration is its own share (transform.Result.Elapsed), so
// the histogram keeps meaning "time for one variant" and its sum the time
// spent.
func (s *Server) renderMany(ctx context.Context, data []byte, opts []transform.Options) ([]transform.Result, []error) {
	s.m.TransformsInFlight.Inc()
	var results []transform.Result
	var errs []error
	if m, ok := s.engine.(manyRenderer); ok {
		results, errs = m.RenderMany(ctx, data, opts)
	} else {
		results, errs = make([]transform.Result, len(opts)), make([]error, len(opts))
		for i, o := range opts {
			start := time.Now()
			if results[i], errs[i] = s.engine.Render(ctx, data, o); errs[i] == nil {
				results[i].Elapsed = time.Since(start)
			}
		}
	}
	s.m.TransformsInFlight.Dec()
	for i, o := range opts {
		s.countRender(metrics.WorkWarm, o, results[i], errs[i], results[i].Elapsed)
	}
	return results, errs
}

// countRender records one render of opts: its result under the output
// format and, when it succeeded, how long it took. A failure before the
// output format was known (opts without one) is labelled "source".
func (s *Server) countRender(work string, opts transform.Options, res transform.Result, err error, took time.Duration) {
	if err != nil {
		label := opts.Format.String()
		if opts.Format == transform.FormatUnknown {
			label = "source"
		}
		s.m.Transforms.WithLabelValues(label, metrics.TransformError, work).Inc()
		return
	}
	label := res.Format.String()
	s.m.TransformDuration.WithLabelValues(label, work).Observe(took.Seconds())
	s.m.Transforms.WithLabelValues(label, metrics.TransformOK, work).Inc()
}

// slot is one request's transform slot as a transform.Gate: the render
// leaves it while it waits for another render's decode of the same source.
type slot struct {
	s       *Server
	release func() // nil while not held
}

// Enter waits for a slot.
func (sl *slot) Enter(ctx context.Context) error {
	release, err := sl.s.limiter.acquire(ctx)
	if err != nil {
		if errors.Is(err, errOverloaded) {
			sl.s.m.QueueRejections.Inc()
		}
		return err
	}
	sl.release = release
	return nil
}

// Leave gives the slot back, if held.
func (sl *slot) Leave() {
	if sl.release != nil {
		sl.release()
		sl.release = nil
	}
}
