package proxy

import (
	"bytes"
	"image"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	_ "golang.org/x/image/webp"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/origin"
	"image-proxy/transform"
)

// newTracedServer is newTestServer with the SDK's provider exporting into
// memory as each span ends, so every span of a request is there once its
// response is.
func newTracedServer(t testing.TB, fallbackURL string) (*testServer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	return newServerTracingTo(t, fallbackURL, tp), exp
}

// newServerTracingTo is main's composition with tp as the provider.
func newServerTracingTo(t testing.TB, fallbackURL string, tp trace.TracerProvider) *testServer {
	t.Helper()
	root := t.TempDir()
	copyTree(t, "../data/images", root)
	cfg := defaultTestConfig(root)
	var opts []chainOption
	if fallbackURL != "" {
		opts = append(opts, withFallback(fallbackURL, func(f *origin.FallbackConfig) { f.Timeout = 5 * time.Second }), withFetchTracing(tp))
	}
	m := metrics.New(prometheus.NewRegistry(), transform.MemStats)
	log := slog.New(slog.DiscardHandler)
	tiers, err := cache.LocalTiers(cache.Config{Enabled: true, MemorySize: 64 << 20, MaxItemSize: 1 << 20}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(cache.Traced(tiers, tp), m)
	t.Cleanup(func() { c.Close() })
	sources, _ := testSources(t, root, c, m, opts...)
	s, err := New(cfg, Deps{Sources: sources, Engine: transform.New(transform.DefaultConfig()), Cache: c, Metrics: m, Log: log, Tracing: tp})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, root: root, m: m}
}

// traceOf is the spans of one request: its server span and the rest.
type traceOf struct {
	server tracetest.SpanStub
	all    tracetest.SpanStubs
}

// oneTrace takes what the exporter holds (exactly one server span, and
// spans of no other trace) and empties it.
func oneTrace(t *testing.T, exp *tracetest.InMemoryExporter) traceOf {
	t.Helper()
	all := exp.GetSpans()
	exp.Reset()
	var tr traceOf
	servers := 0
	for _, s := range all {
		if s.SpanKind == trace.SpanKindServer {
			tr.server = s
			servers++
		}
	}
	if servers != 1 {
		t.Fatalf("%d server spans, want 1: %v", servers, names(all))
	}
	tr.all = all
	ids := map[trace.SpanID]bool{}
	for _, s := range all {
		ids[s.SpanContext.SpanID()] = true
	}
	for _, s := range all {
		if s.SpanContext.TraceID() != tr.server.SpanContext.TraceID() {
			t.Errorf("span %s is in trace %s, the request's is %s", s.Name, s.SpanContext.TraceID(), tr.server.SpanContext.TraceID())
		}
		if s.SpanKind != trace.SpanKindServer && !ids[s.Parent.SpanID()] {
			t.Errorf("span %s has a parent outside the request's tree", s.Name)
		}
	}
	return tr
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

// named returns the spans called name.
func (tr traceOf) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range tr.all {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// parentName is the name of s's parent among the trace's spans.
func (tr traceOf) parentName(s tracetest.SpanStub) string {
	for _, p := range tr.all {
		if p.SpanContext.SpanID() == s.Parent.SpanID() {
			return p.Name
		}
	}
	return ""
}

func TestTraceSpans(t *testing.T) {
	ts, exp := newTracedServer(t, "")
	cases := []struct {
		name, target string
		status       int
		want         []string // span names that must be there
		absent       []string // and that must not
		check        func(t *testing.T, tr traceOf)
	}{
		{"miss", "/rocket.jpg?size=100&format=webp", 200,
			[]string{"source.stat", "cache.get", "queue.wait", "source.read", "source.open", "transform.decode", "transform.resize", "transform.encode", "cache.set"},
			nil, checkMiss},
		{"hit", "/rocket.jpg?size=100&format=webp", 200,
			[]string{"source.stat", "cache.get"},
			[]string{"queue.wait", "source.read", "transform.decode", "transform.encode", "cache.set"}, checkHit},
		{"passthrough", "/rocket.jpg", 200,
			[]string{"source.open"},
			[]string{"source.stat", "cache.get", "transform.decode", "cache.set"}, nil},
		{"not found", "/missing.jpg?size=100", 404,
			[]string{"source.stat"},
			[]string{"cache.get", "transform.decode"}, checkNotFound},
		{"unusable image", "/bad.jpg?size=100", 422,
			[]string{"source.stat", "cache.get", "queue.wait", "source.read", "transform.decode"},
			[]string{"cache.set", "transform.encode"}, checkUnusable},
	}
	if err := os.WriteFile(ts.root+"/bad.jpg", []byte("\xff\xd8\xff\xe0 not really a JPEG"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.get(t, c.target)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.status == 200 {
				if _, _, err := image.DecodeConfig(bytes.NewReader(body)); err != nil {
					t.Fatalf("body does not decode: %v", err)
				}
			}
			tr := oneTrace(t, exp)
			checkServerSpan(t, tr.server, c.target, c.status)
			got := names(tr.all)
			for _, n := range c.want {
				if !slices.Contains(got, n) {
					t.Errorf("no %s span; spans: %v", n, got)
				}
			}
			for _, n := range c.absent {
				if slices.Contains(got, n) {
					t.Errorf("unexpected %s span; spans: %v", n, got)
				}
			}
			if c.check != nil {
				c.check(t, tr)
			}
		})
	}
}

// checkServerSpan: named by the route template, never the raw path; the
// status code; Error only for a 5xx.
func checkServerSpan(t *testing.T, s tracetest.SpanStub, target string, status int) {
	t.Helper()
	path, _, _ := strings.Cut(target, "?")
	if s.Name != "GET /*" {
		t.Errorf("server span named %q, want %q", s.Name, "GET /*")
	}
	for key, want := range map[string]attribute.Value{
		"http.request.method":       attribute.StringValue("GET"),
		"http.route":                attribute.StringValue("/*"),
		"url.path":                  attribute.StringValue(path),
		"http.response.status_code": attribute.IntValue(status),
	} {
		if got := attr(s, key); got != want {
			t.Errorf("server span %s = %v, want %v", key, got.Emit(), want.Emit())
		}
	}
	if wantErr := status >= 500; (s.Status.Code == codes.Error) != wantErr {
		t.Errorf("server span status %v for HTTP %d", s.Status.Code, status)
	}
}

func checkMiss(t *testing.T, tr traceOf) {
	for _, g := range tr.named("cache.get") {
		if attr(g, "cache.tier").AsString() != "memory" || attr(g, "cache.hit").AsBool() {
			t.Errorf("cache.get %v on a miss", g.Attributes)
		}
	}
	if s := tr.named("source.stat")[0]; attr(s, "source.kind").AsString() != "local" || !attr(s, "source.found").AsBool() {
		t.Errorf("source.stat %v", s.Attributes)
	}
	if p := tr.parentName(tr.named("source.open")[0]); p != "source.read" {
		t.Errorf("source.open under %q, want source.read", p)
	}
	for _, n := range []string{"queue.wait", "source.read", "transform.decode", "transform.resize", "transform.encode", "source.stat"} {
		if p := tr.parentName(tr.named(n)[0]); p != "GET /*" {
			t.Errorf("%s under %q, want the server span", n, p)
		}
	}
	if f := attr(tr.named("transform.encode")[0], "image.format").AsString(); f != "webp" {
		t.Errorf("transform.encode image.format %q", f)
	}
	if w := attr(tr.named("transform.resize")[0], "image.width").AsInt64(); w != 100 {
		t.Errorf("transform.resize image.width %d, want 100", w)
	}
	if s := tr.named("cache.set")[0]; attr(s, "cache.tier").AsString() != "memory" || attr(s, "cache.value_bytes").AsInt64() <= 1 {
		t.Errorf("cache.set %v", s.Attributes)
	}
}

func checkHit(t *testing.T, tr traceOf) {
	gets := tr.named("cache.get")
	if len(gets) != 1 || attr(gets[0], "cache.tier").AsString() != "memory" || !attr(gets[0], "cache.hit").AsBool() {
		t.Errorf("cache.get on a hit: %v", gets)
	}
}

func checkNotFound(t *testing.T, tr traceOf) {
	if s := tr.named("source.stat")[0]; attr(s, "source.found").AsBool() || s.Status.Code == codes.Error {
		t.Errorf("source.stat of a missing file: found %v, status %v", attr(s, "source.found").AsBool(), s.Status.Code)
	}
}

func checkUnusable(t *testing.T, tr traceOf) {
	if s := tr.named("transform.decode")[0]; s.Status.Code != codes.Error || len(s.Events) == 0 {
		t.Errorf("transform.decode of a broken file: status %v, events %v", s.Status.Code, s.Events)
	}
}

func TestTraceparentHonoured(t *testing.T) {
	rocket, err := os.ReadFile("../data/images/rocket.jpg")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("traceparent"))
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/broken.jpg") {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(rocket)
	})
	ts, exp := newTracedServer(t, up.URL)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		target string
		status int
	}{
		{"/remote/rocket.jpg?size=100&format=webp", 200},
		{"/remote/broken.jpg?size=100", 502},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			resp, body := ts.get(t, c.target, "traceparent", "00-"+traceID+"-"+parentID+"-01")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			tr := oneTrace(t, exp)
			checkServerSpan(t, tr.server, c.target, c.status)
			if got := tr.server.SpanContext.TraceID().String(); got != traceID {
				t.Errorf("server span in trace %s, want the incoming %s", got, traceID)
			}
			if got := tr.server.Parent.SpanID().String(); got != parentID || !tr.server.Parent.IsRemote() {
				t.Errorf("server span's parent %s (remote %v), want the incoming %s", got, tr.server.Parent.IsRemote(), parentID)
			}
			checkUpstreamSaw(t, tr, &mu, &seen, traceID)
		})
	}
}

// checkUpstreamSaw: the fallback's request carried the trace, its parent
// being the client span of the fetch.
func checkUpstreamSaw(t *testing.T, tr traceOf, mu *sync.Mutex, seen *[]string, traceID string) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if len(*seen) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(*seen))
	}
	parts := strings.Split((*seen)[0], "-")
	if len(parts) != 4 || parts[1] != traceID {
		t.Fatalf("upstream got traceparent %q, want one in trace %s", (*seen)[0], traceID)
	}
	var client *tracetest.SpanStub
	for i, s := range tr.all {
		if s.SpanKind == trace.SpanKindClient {
			client = &tr.all[i]
		}
	}
	if client == nil || client.SpanContext.SpanID().String() != parts[2] {
		t.Errorf("upstream's parent span %s is not the fetch's client span (%v)", parts[2], names(tr.all))
	}
	stat := tr.named("source.stat")
	if len(stat) != 2 || attr(stat[1], "source.kind").AsString() != "fallback" && attr(stat[0], "source.kind").AsString() != "fallback" {
		t.Errorf("want source.stat for local and fallback, got %v", stat)
	}
}
