package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is configured by the standard OTEL_* variables, read by the
// OpenTelemetry SDK itself: the exporter (autoexport: OTEL_TRACES_EXPORTER,
// OTEL_EXPORTER_OTLP_PROTOCOL, endpoints, headers, timeouts), the sampler
// (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG), the batch processor
// (OTEL_BSP_*) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES). The service name defaults to image-proxy.
//
// Tracing is off unless an OTLP endpoint is set, and OTEL_SDK_DISABLED=true
// turns it off whatever else is set: the provider is then the no-op one,
// which the packages recognise and skip entirely.

// tracingOn reports whether the environment asks for traces.
func tracingOn(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// newTracerProvider builds the SDK's provider from the environment, or the
// no-op one when tracing is off. shutdown flushes what is still buffered.
func newTracerProvider(ctx context.Context) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	if !tracingOn(os.Getenv) {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("image-proxy"), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithProcessPID())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, nil, errors.Join(err, exp.Shutdown(ctx))
	}
	// No sampler option: the SDK reads OTEL_TRACES_SAMPLER(_ARG) itself
	// (default parentbased_always_on).
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	// For libraries that look up the globals; our packages get sdk passed in.
	otel.SetTracerProvider(sdk)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return sdk, sdk.Shutdown, nil
}

// exportDotenvTracing makes the OTEL_* variables of the .env file visible
// to the SDK, which reads only the process environment; a variable set in
// the environment wins, as it does for every other setting.
func exportDotenvTracing(dotenv string) error {
	vars, err := godotenv.Read(dotenv)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for k, v := range vars {
		if _, set := os.LookupEnv(k); !set && strings.HasPrefix(k, "OTEL_") {
			if err := os.Setenv(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// traceHandler adds trace_id and span_id to every record logged with a
// context that carries a span, so a log line leads to its trace.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// startTracing reads the OTEL_* variables (the environment, then .env)
// and builds the provider; stop flushes buffered spans, within a bound.
func startTracing(dotenv string) (trace.TracerProvider, func(*slog.Logger), error) {
	if err := exportDotenvTracing(dotenv); err != nil {
		return nil, nil, err
	}
	tp, shutdown, err := newTracerProvider(context.Background())
	if err != nil {
		return nil, nil, err
	}
	return tp, func(log *slog.Logger) {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("traces not all exported at shutdown", "err", err)
		}
	}, nil
}

// flushTimeout bounds the export of the last spans at shutdown: an
// unreachable collector must not hold the exit up.
const flushTimeout = 5 * time.Second
