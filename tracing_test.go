package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestTracingOnlyWithAnEndpoint(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "false"}, true},
	}
	for _, c := range cases {
		if got := tracingOn(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: on = %v, want %v", c.env, got, c.want)
		}
	}
}

func TestLogsCarryTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(logSettings{Format: "json"}, &buf)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.With("a", 1).WarnContext(ctx, "traced")
	log.WarnContext(context.Background(), "untraced")
	log.Warn("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	for i, want := range []map[string]any{
		{"trace_id": tid.String(), "span_id": sid.String()},
		{"trace_id": nil, "span_id": nil},
		{"trace_id": nil, "span_id": nil},
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, m[k], v)
			}
		}
	}
}

// A bad OTEL_ value stops the start like any other bad setting; an OTEL_
// variable in .env reaches the SDK.
func TestBadTracingSettingExits2(t *testing.T) {
	root, _ := filepath.Abs("data/images")
	for _, c := range []struct{ env, dotenv string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL=carrier-pigeon", ""},
		{"", "OTEL_EXPORTER_OTLP_PROTOCOL=carrier-pigeon\n"},
		{"OTEL_TRACES_EXPORTER=smoke-signals", ""},
	} {
		t.Run(c.env+c.dotenv, func(t *testing.T) {
			dir := t.TempDir()
			if c.dotenv != "" {
				if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(c.dotenv), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := []string{"IMAGE_PROXY_ROOT_PATH=" + root, "IMAGE_PROXY_BIND_ADDRESS=127.0.0.1:0", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1"}
			if c.env != "" {
				env = append(env, c.env)
			}
			// Accepted by mistake, the server would start: the deadline
			// turns that hang into a failure.
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			plain := command(dir, env)
			cmd := exec.CommandContext(ctx, plain.Path, plain.Args[1:]...)
			cmd.Dir, cmd.Env = plain.Dir, plain.Env
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "tracing") {
				t.Fatalf("exit %v, want 2 naming tracing: %q", err, out)
			}
		})
	}
}
