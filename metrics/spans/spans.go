// Package spans is the one small way image-proxy's packages start trace
// spans. A Tracer built from no provider (or the no-op one) is off: Start
// then returns the context it was given and a Span that does nothing, and
// nothing is allocated, so the hit path pays nothing for tracing it does
// not do. Attributes are set through Span's methods, which build them only
// when the span records.
package spans

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Scope is the instrumentation scope every span of image-proxy is under.
const Scope = "image-proxy"

// Tracer starts spans, or nothing when tracing is off (the zero value).
type Tracer struct{ t trace.Tracer }

// New is a Tracer from tp; nil and the no-op provider give one that is off.
func New(tp trace.TracerProvider) Tracer {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return Tracer{}
	}
	return Tracer{tp.Tracer(Scope)}
}

// On reports whether spans are made at all.
func (t Tracer) On() bool { return t.t != nil }

// Start begins an internal span named name under ctx's span.
func (t Tracer) Start(ctx context.Context, name string) (context.Context, Span) {
	if t.t == nil {
		return ctx, Span{}
	}
	ctx, s := t.t.Start(ctx, name)
	return ctx, Span{s}
}

// StartKind begins a span of the given kind (server, client).
func (t Tracer) StartKind(ctx context.Context, name string, kind trace.SpanKind) (context.Context, Span) {
	if t.t == nil {
		return ctx, Span{}
	}
	ctx, s := t.t.Start(ctx, name, trace.WithSpanKind(kind))
	return ctx, Span{s}
}

// Child begins a span under ctx's span with that span's own provider, when
// ctx carries one that records: code that is handed a context, not a
// Tracer (transform), traces exactly the requests its caller traces.
func Child(ctx context.Context, name string) (context.Context, Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, Span{}
	}
	ctx, s := parent.TracerProvider().Tracer(Scope).Start(ctx, name)
	return ctx, Span{s}
}

// Span is a started span, or nothing.
type Span struct{ s trace.Span }

// Recording reports whether attributes set on the span are kept.
func (s Span) Recording() bool { return s.s != nil && s.s.IsRecording() }

// Str sets a string attribute.
func (s Span) Str(key, v string) {
	if s.Recording() {
		s.s.SetAttributes(attribute.String(key, v))
	}
}

// Int sets an integer attribute.
func (s Span) Int(key string, v int) {
	if s.Recording() {
		s.s.SetAttributes(attribute.Int(key, v))
	}
}

// Bool sets a boolean attribute.
func (s Span) Bool(key string, v bool) {
	if s.Recording() {
		s.s.SetAttributes(attribute.Bool(key, v))
	}
}

// Name renames the span (a server span learns its route only after routing).
func (s Span) Name(name string) {
	if s.Recording() {
		s.s.SetName(name)
	}
}

// Fail marks the span as failed with err, which goes into its events.
func (s Span) Fail(err error) {
	if err != nil && s.Recording() {
		s.s.RecordError(err)
		s.s.SetStatus(codes.Error, err.Error())
	}
}

// End ends the span, failed when err is not nil. Ending twice is harmless.
func (s Span) End(err error) {
	if s.s == nil {
		return
	}
	s.Fail(err)
	s.s.End()
}
