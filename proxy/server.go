// Package proxy is the HTTP side of image-proxy: routes, sources (local
// files and the fallback upstream), the transform queue, header policy and
// the one table from errors to statuses. The URL grammar (parameters, path
// safety, controls, signatures, the variant's key) is package request. It
// never talks to libvips directly.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/trace"

	"image-proxy/cache"
	"image-proxy/fault"
	"image-proxy/metrics"
	"image-proxy/metrics/spans"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

// Engine renders variants (transform.Engine in production).
type Engine interface {
	Render(ctx context.Context, src []byte, opts transform.Options) (transform.Result, error)
}

// Deps are the collaborators built by main.
type Deps struct {
	Sources origin.Chain // asked in order for every original
	Engine  Engine
	Cache   cache.Cache
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Tracing trace.TracerProvider // nil or no-op: tracing off (proxy/tracing.go)
	// Decodes is where persisted decodes are kept (the persistent tiers);
	// nil, or no tier: every render decodes (decodes.go).
	Decodes *cache.Store
}

// Server answers image requests.
type Server struct {
	cfg     Config
	prefix  string
	sources origin.Chain
	limiter *Limiter
	gate    *request.Gate // presets, quality, sizes, signatures
	engine  Engine
	cache   cache.Cache
	decodes *decodeKeeper // nil: no decode is persisted
	m       *metrics.Metrics
	log     *slog.Logger

	reqMetrics requestMetrics   // resolved once: hotpath.go
	variants   request.Variants // encoder fingerprints joined once
	started    time.Time
	app        *fiber.App
	tracing    spans.Tracer
	events     EventReceiver // nil: POST /events/s3 answers 404 (UseEvents)
	vary       [16]string    // Vary values by hint bits and Accept (hints.go)
	memo       *parseMemo    // what repeated targets parse to (memo.go)
	acceptCH   string        // the hints honoured that a browser sends only when asked
}

// New builds the Fiber app.
func New(cfg Config, d Deps) (*Server, error) {
	s := &Server{
		cfg:     cfg,
		prefix:  request.StripPrefix(cfg.StripPath),
		sources: d.Sources,
		limiter: newLimiter(cfg.Slots(), cfg.QueueDepth, cfg.QueueTimeout, d.Metrics.QueueWaiting),
		engine:  d.Engine,
		cache:   d.Cache,
		decodes: newDecodeKeeper(d.Decodes, d.Metrics, d.Log),
		m:       d.Metrics,
		log:     d.Log,

		reqMetrics: newRequestMetrics(d.Metrics),
		variants:   cfg.Variants(),
		started:    time.Now(),
	}
	var err error
	if s.gate, err = request.NewGate(cfg.Controls, cfg.MaxBox, d.Metrics.Refusals); err != nil {
		return nil, err
	}
	s.vary, s.acceptCH = varyValues(), s.gate.AcceptCH()
	s.memo = newParseMemo(s.gate)
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		Network:               "tcp",
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		Concurrency:           cfg.MaxConns,
		ReadBufferSize:        cfg.MaxHeaderBytes,
		BodyLimit:             bodyPrefetch, // streamed past this; see bodyGuard
		ErrorHandler:          s.errorHandler,
		JSONEncoder:           marshalLine,

		// Bodies are read by the handlers that take one (POST /convert,
		// POST /bulk), each under its own cap, as they arrive; bodyGuard
		// refuses them everywhere else. No multipart form is parsed (or
		// spooled to temporary files) before a handler asks.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
	})
	s.useTracing(d.Tracing) // before every route: its middleware must run first
	if err := s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// App is the Fiber application, for Listen and for app.Test in tests.
func (s *Server) App() *fiber.App { return s.app }

// Sources is the chain the server reads originals from, each source traced
// when tracing is on: warm reads through it too.
func (s *Server) Sources() origin.Chain { return s.sources }

// Limiter is the server's transform slots: background work (warm's Gate)
// waits on it for capacity no live request needs.
func (s *Server) Limiter() *Limiter { return s.limiter }

// Drain waits, up to ctx's deadline, until no render is running and every
// decode a render handed to be kept is stored.
func (s *Server) Drain(ctx context.Context) error {
	if err := s.limiter.drain(ctx, s.cfg.Slots()); err != nil {
		return err
	}
	return s.decodes.wait(ctx)
}

func (s *Server) health(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{
		"status":         "ok",
		"version":        s.cfg.Version,
		"libvips":        s.cfg.LibvipsVersion,
		"uptime_seconds": int64(time.Since(s.started).Seconds()),
	})
}

// handleImage handles every image request and records exactly one metric sample
// and one debug log line for it.
func (s *Server) handleImage(c *fiber.Ctx) error {
	// fasthttp read the clock just before calling the handler: a hit
	// needs no second read for its start.
	start := c.Context().Time()
	if start.IsZero() { // a context not served by fasthttp's server (benchmarks)
		start = time.Now()
	}
	kind, status, err := s.image(c)
	errText := ""
	if err != nil {
		s.writeError(c, err)
		kind = metrics.KindError
		errText = err.Error()
	}
	code := c.Response().StatusCode()
	elapsed := time.Since(start)
	s.reqMetrics.observe(code, kind, elapsed)
	if s.log.Enabled(c.UserContext(), slog.LevelDebug) {
		resp := c.Response()
		// A streamed file's length is only in the header (Body() would drain
		// it into memory), as is a HEAD's; a body set as bytes gets its
		// Content-Length only when fasthttp writes it, after this line.
		n := resp.Header.ContentLength()
		if !resp.IsBodyStream() && !resp.SkipBody {
			n = len(resp.Body())
		}
		s.log.DebugContext(c.UserContext(), "request", "method", c.Method(), "path", c.Path(), "status", code,
			"bytes", n, "duration_ms", float64(elapsed.Microseconds())/1000,
			"cache", status.String(), "err", errText)
	}
	return nil
}

func (s *Server) image(c *fiber.Ctx) (string, cache.Status, error) {
	if m := c.Method(); m != fiber.MethodGet && m != fiber.MethodHead {
		return metrics.KindError, cache.StatusBypass, fault.New(fault.Method, "", nil)
	}
	p, err := s.parseTarget(c)
	if err != nil {
		return metrics.KindError, cache.StatusBypass, err
	}
	if !p.req.Transform && !p.req.JSON {
		return metrics.KindPassthrough, cache.StatusBypass, s.passthrough(c, p.rel)
	}
	st, err := s.answer(c, p)
	if errors.Is(err, origin.ErrChanged) {
		// The original was replaced after it was described (an S3 object
		// remembered by the identity cache): its old description is gone,
		// so describing it again gives the new version and a new key. Once
		// only: a source that changes on every read stays an error (503).
		st, err = s.answer(c, p)
	}
	kind := metrics.KindTransform
	if p.req.JSON {
		kind = metrics.KindJSON
	}
	return kind, st, err
}

// answer answers a parsed request for a transform or a description.
func (s *Server) answer(c *fiber.Ctx, p *parsed) (cache.Status, error) {
	if p.req.JSON {
		return s.describe(c, p.rel, p.req, p.vary)
	}
	return s.transform(c, p)
}

// writeError is the only place an error becomes a response.
func (s *Server) writeError(c *fiber.Ctx, err error) {
	status, msg := classify(err)
	resp := c.Response()
	resp.Reset()
	resp.SetStatusCode(status)
	h := &resp.Header
	switch {
	case status >= 500:
		h.Set(fiber.HeaderCacheControl, "no-store")
	case s.cfg.ErrorCacheControl != "":
		h.Set(fiber.HeaderCacheControl, s.cfg.ErrorCacheControl)
	}
	switch status {
	case fiber.StatusMethodNotAllowed:
		h.Set(fiber.HeaderAllow, "GET, HEAD")
	case fiber.StatusServiceUnavailable:
		h.Set(fiber.HeaderRetryAfter, "1")
	case fiber.StatusUnauthorized:
		h.Set(fiber.HeaderWWWAuthenticate, "Bearer")
	case fiber.StatusRequestEntityTooLarge:
		// The rest of the body is unread: the connection cannot carry
		// another request.
		h.SetConnectionClose()
	}
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.SetContentType(fiber.MIMEApplicationJSON)
	body, _ := jsonError(msg)
	resp.SetBodyRaw(body)
	switch {
	case status >= 500:
		s.log.ErrorContext(c.UserContext(), "request failed", "path", c.Path(), "status", status, "err", err)
	case status == 422 || status == 415:
		s.log.WarnContext(c.UserContext(), "unusable image", "path", c.Path(), "status", status, "err", err)
	}
}

// errorHandler catches what Fiber itself refuses (unknown method forms,
// oversized bodies) so those answers have our JSON shape too.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch {
		case fe.Code == fiber.StatusNotFound:
			err = fault.New(fault.NotFound, "", err)
		case fe.Code == fiber.StatusMethodNotAllowed:
			err = fault.New(fault.Method, "", err)
		case fe.Code == fiber.StatusRequestEntityTooLarge:
			err = fault.New(fault.BodyTooLarge, "", err)
		case fe.Code >= 400 && fe.Code < 500:
			err = fault.New(fault.BadRequest, "", err)
		}
	}
	s.writeError(c, err)
	return nil
}
