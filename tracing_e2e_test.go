package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "golang.org/x/image/webp"
)

// spanDeadline bounds the wait for exported spans to show in the
// collector's output (the batch processor's delay is shortened below).
const spanDeadline = 60 * time.Second

// collectorBinary finds the collector `make otelcol` builds:
// $OTELCOL_BIN, else $(go env GOPATH)/bin/otelcol-image-proxy. Missing is a
// failure: a skipped e2e would pass while testing nothing.
func collectorBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OTELCOL_BIN"); p != "" {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(strings.Split(strings.TrimSpace(string(gopath)), string(os.PathListSeparator))[0], "bin", "otelcol-image-proxy")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no collector at %s: run make otelcol (or set OTELCOL_BIN)", p)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// collector is a running OpenTelemetry Collector: OTLP in on two loopback
// ports, every span out in its debug exporter's detailed text.
type collector struct {
	grpc, http string
	out        *logSink
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{grpc: freeAddr(t), http: freeAddr(t), out: &logSink{}}
	cfg := filepath.Join(t.TempDir(), "otelcol.yaml")
	err := os.WriteFile(cfg, fmt.Appendf(nil, `receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
      http: {endpoint: %q}
exporters:
  debug: {verbosity: detailed}
service:
  telemetry:
    metrics: {level: none}
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
`, c.grpc, c.http), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(collectorBinary(t), "--config", "file:"+cfg)
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(hangGuard):
			t.Errorf("the collector survived SIGKILL for %v", hangGuard)
		}
	})
	deadline := time.Now().Add(spanDeadline)
	for _, addr := range []string{c.grpc, c.http} {
		for {
			if conn, err := net.Dial("tcp", addr); err == nil {
				conn.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("collector exited: %s", c.out)
			case <-time.After(20 * time.Millisecond): // the next dial attempt
			}
			if time.Now().After(deadline) {
				t.Fatalf("collector not listening on %s within %v: %s", addr, spanDeadline, c.out)
			}
		}
	}
	return c
}

// exportedSpan is one span as the debug exporter printed it.
type exportedSpan struct{ traceID, parentID, name, kind, service string }

var (
	spanField    = regexp.MustCompile(`(?m)^\s+(Trace ID|Parent ID|Name|Kind)\s+: (.*)$`)
	serviceField = regexp.MustCompile(`service\.name: Str\(([^)]*)\)`)
)

// spans parses every span printed so far.
func (c *collector) spans() []exportedSpan {
	var out []exportedSpan
	for _, rs := range strings.Split(c.out.String(), "ResourceSpans #")[1:] {
		service := ""
		if m := serviceField.FindStringSubmatch(rs); m != nil {
			service = m[1]
		}
		for _, block := range strings.Split(rs, "Span #")[1:] {
			s := exportedSpan{service: service}
			for _, m := range spanField.FindAllStringSubmatch(block, -1) {
				v := strings.TrimSpace(m[2])
				switch m[1] {
				case "Trace ID":
					s.traceID = v
				case "Parent ID":
					s.parentID = v
				case "Name":
					s.name = v
				case "Kind":
					s.kind = v
				}
			}
			out = append(out, s)
		}
	}
	return out
}

func TestTracesReachCollector(t *testing.T) {
	col := startCollector(t)
	for _, c := range []struct{ protocol, endpoint string }{
		{"grpc", "http://" + col.grpc},
		{"http/protobuf", "http://" + col.http},
	} {
		t.Run(c.protocol, func(t *testing.T) {
			service := "e2e-" + strings.ReplaceAll(c.protocol, "/", "-")
			p := startBinary(t, t.TempDir(), "OTEL_EXPORTER_OTLP_ENDPOINT="+c.endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL="+c.protocol, "OTEL_SERVICE_NAME="+service,
				"OTEL_BSP_SCHEDULE_DELAY=100", "IMAGE_PROXY_LOG_FORMAT=json", "IMAGE_PROXY_LOG_LEVEL=debug")
			traceID, parentID := randomHex(t, 16), randomHex(t, 8)
			getTraced(t, p.base+"/rocket.jpg?size=50&format=webp", "00-"+traceID+"-"+parentID+"-01")
			want := []string{"GET /*", "source.stat", "cache.get", "queue.wait", "source.read", "transform.decode", "transform.resize", "transform.encode", "cache.set"}
			got := waitForSpans(t, col, traceID, want)
			for _, s := range got {
				if s.service != service {
					t.Errorf("span %s from service %q, want %q", s.name, s.service, service)
				}
				if s.name == "GET /*" && (s.parentID != parentID || s.kind != "Server") {
					t.Errorf("server span: parent %q kind %q, want the incoming %s and Server", s.parentID, s.kind, parentID)
				}
			}
			checkLoggedTraceID(t, p, traceID)
		})
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// getTraced makes one request carrying traceparent and checks the image.
func getTraced(t *testing.T, url, traceparent string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("traceparent", traceparent)
	resp, err := (&http.Client{Timeout: hangGuard}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if cfg, format, err := image.DecodeConfig(bytes.NewReader(body)); err != nil || format != "webp" || max(cfg.Width, cfg.Height) != 50 {
		t.Fatalf("response: %v %s %dx%d", err, format, cfg.Width, cfg.Height)
	}
}

// waitForSpans polls the collector's output until every wanted span of
// the trace is there, or spanDeadline passes.
func waitForSpans(t *testing.T, col *collector, traceID string, want []string) []exportedSpan {
	t.Helper()
	deadline := time.Now().Add(spanDeadline)
	for {
		var got []exportedSpan
		var names []string
		for _, s := range col.spans() {
			if s.traceID == traceID {
				got = append(got, s)
				names = append(names, s.name)
			}
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(n string) bool { return slices.Contains(names, n) })
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the collector has spans %v of trace %s, missing %v:\n%s", spanDeadline, names, traceID, missing, col.out)
		}
		time.Sleep(50 * time.Millisecond) // the next look at the output
	}
}

// checkLoggedTraceID stops the server and finds the request's log line
// carrying the trace id.
func checkLoggedTraceID(t *testing.T, p *binaryProcess, traceID string) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logs.String())
	}
	for _, m := range jsonLogLines(t, p.logs.String()) {
		if m["msg"] == "request" {
			if m["trace_id"] != traceID || m["span_id"] == nil {
				t.Errorf("request log line without the trace: %v", m)
			}
			return
		}
	}
	t.Errorf("no request log line:\n%s", p.logs.String())
}
