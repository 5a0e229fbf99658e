package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"image-proxy/metrics/spans"
	"image-proxy/origin"
)

// Tracing: with Deps.Tracing set (and not the no-op provider) every image
// request is a server span, continuing the trace of an incoming W3C
// traceparent, with spans for the queue wait, each source call and the
// original's read under it; the cache tiers (cache.Traced) and the
// transform stages (under the render's context) add theirs. Off, nothing
// here runs on a request.

// traceContext is the one propagation format, W3C Trace Context, both ways.
var traceContext propagation.TraceContext

// useTracing turns tracing on for s when tp makes spans: a middleware for
// the server span ahead of every route and spans around each source. (The
// fallback's client spans are its own: origin.NewFallback.)
func (s *Server) useTracing(tp trace.TracerProvider) {
	s.tracing = spans.New(tp)
	if !s.tracing.On() {
		return
	}
	traced := make(origin.Chain, len(s.sources))
	for i, src := range s.sources {
		traced[i] = tracedSource{src, s.tracing}
	}
	s.sources = traced
	s.app.Use(s.traceRequest)
}

// traceRequest is the server span of one request, named by its route
// template ("GET /*"), never by the raw path.
func (s *Server) traceRequest(c *fiber.Ctx) error {
	path := c.Path()
	if path == "/health" || path == "/metrics" {
		return c.Next() // probes and scrapes: noise, not requests
	}
	method := spanMethod(c.Method())
	ctx := traceContext.Extract(c.UserContext(), headerCarrier{&c.Request().Header})
	ctx, sp := s.tracing.StartKind(ctx, method, trace.SpanKindServer)
	sp.Str("http.request.method", method)
	sp.Str("url.path", path)
	c.SetUserContext(ctx)
	err := c.Next()
	if err != nil {
		// Answer now, as Fiber would after the chain, so the span sees
		// the status; the error is handled.
		err = s.errorHandler(c, err)
	}
	route := c.Route().Path
	code := c.Response().StatusCode()
	sp.Name(method + " " + route)
	sp.Str("http.route", route)
	sp.Int("http.response.status_code", code)
	if code >= 500 {
		sp.Fail(fmt.Errorf("status %d", code))
	}
	sp.End(nil)
	return err
}

// spanMethod keeps span names bounded: methods outside HTTP's own are
// "_OTHER", as the semantic conventions say.
func spanMethod(m string) string {
	switch m {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete,
		fiber.MethodPatch, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace:
		return m
	}
	return "_OTHER"
}

// headerCarrier reads and writes propagation headers of a fasthttp request.
type headerCarrier struct{ h *fasthttp.RequestHeader }

func (c headerCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (c headerCarrier) Set(key, v string)     { c.h.Set(key, v) }
func (c headerCarrier) Keys() []string {
	var keys []string
	c.h.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}

// tracedSource is a Source whose calls are spans: source.stat (for the
// fallback that is the fetch) and source.open.
type tracedSource struct {
	origin.Source
	tracing spans.Tracer
}

func (t tracedSource) Stat(ctx context.Context, rel string) (origin.Original, error) {
	ctx, sp := t.tracing.Start(ctx, "source.stat")
	sp.Str("source.kind", t.Kind())
	o, err := t.Source.Stat(ctx, rel)
	sp.Bool("source.found", !errors.Is(err, origin.ErrMissing))
	sp.End(spanError(err))
	return o, err
}

func (t tracedSource) Open(ctx context.Context, rel string) (origin.Original, origin.Body, error) {
	ctx, sp := t.tracing.Start(ctx, "source.open")
	sp.Str("source.kind", t.Kind())
	o, b, err := t.Source.Open(ctx, rel)
	sp.Bool("source.found", !errors.Is(err, origin.ErrMissing))
	sp.End(spanError(err))
	return o, b, err
}

// Forget passes an event's or a purge's forget on to the source, which the
// wrapper would otherwise hide from origin.Chain.Forget.
func (t tracedSource) Forget(rel string) {
	if f, ok := t.Source.(origin.Forgetter); ok {
		f.Forget(rel)
	}
}

// spanError is err unless it only means "ask the next source".
func spanError(err error) error {
	if errors.Is(err, origin.ErrMissing) {
		return nil
	}
	return err
}
