package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkMemoryHitTracing is the memory hit with tracing off (main's
// no-op provider) and on (the SDK, every request sampled, spans batched to
// an exporter that drops them): what tracing costs on the hottest path.
// Off must allocate exactly what BenchmarkMemoryHit does.
func BenchmarkMemoryHitTracing(b *testing.B) {
	const uri = "/rocket.jpg?size=100&format=webp"
	for _, c := range []struct {
		name string
		tp   func(b *testing.B) trace.TracerProvider
	}{
		{"off", func(*testing.B) trace.TracerProvider { return noop.NewTracerProvider() }},
		{"on", func(b *testing.B) trace.TracerProvider {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
				sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(b.Context()) })
			return tp
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ts := newServerTracingTo(b, "", c.tp(b))
			if resp, _ := ts.get(b, uri); resp.StatusCode != 200 {
				b.Fatal(resp.StatusCode)
			}
			h := ts.App().Handler()
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.ResetUserValues() // as fasthttp does between requests
				ctx.Request.SetRequestURI(uri)
				ctx.Request.Header.SetMethod("GET")
				h(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d", ctx.Response.StatusCode())
				}
			}
		})
	}
}
