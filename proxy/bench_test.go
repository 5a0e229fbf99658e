package proxy

import (
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/valyala/fasthttp"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/transform"
)

// Handler benchmarks without the network stack's cost: image-proxy's
// memory and disk hits against a bare Fiber handler returning the same
// bytes (the ceiling). The request context sits on a real loopback TCP
// connection, as in the server, so per-connection work (the hang-up
// watch) is measured too.

// loopbackConn is the server side of a connected loopback TCP pair.
func loopbackConn(t testing.TB) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server
}

// hitRequest prepares one request context on a real connection; serve
// runs the handler once and reports the status.
func hitRequest(t testing.TB, h fasthttp.RequestHandler, uri string) (serve func() int) {
	var ctx fasthttp.RequestCtx
	ctx.Init2(loopbackConn(t), nil, false)
	return func() int {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetMethod("GET")
		h(&ctx)
		return ctx.Response.StatusCode()
	}
}

func benchHandler(b *testing.B, h fasthttp.RequestHandler, uri string) {
	serve := hitRequest(b, h, uri)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if code := serve(); code != 200 {
			b.Fatalf("status %d", code)
		}
	}
}

// hitServer is a test server whose cache answers uri from the tier named
// by status, and the body it answers with.
func hitServer(t testing.TB, uri string, status cache.Status, edit func(*Config, *cache.Config, *transform.Config)) (*testServer, []byte) {
	t.Helper()
	ts := newTestServer(t, edit)
	ts.get(t, uri) // render
	resp, body := ts.get(t, uri)
	if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != string(status) {
		t.Fatalf("%s: status %d, X-Cache-Status %q, want %s", uri, resp.StatusCode, resp.Header.Get("X-Cache-Status"), status)
	}
	return ts, body
}

// diskOnly keeps values out of the memory tier, so every hit is a disk hit.
func diskOnly(t testing.TB) func(*Config, *cache.Config, *transform.Config) {
	dir := t.TempDir()
	return func(_ *Config, cc *cache.Config, _ *transform.Config) {
		cc.DiskEnabled, cc.DiskPath, cc.DiskSize, cc.MaxItemSize = true, dir, 64<<20, 1
	}
}

func ceilingApp(body []byte) *fiber.App {
	app := fiber.New()
	app.Get("/*", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "image/webp")
		return c.Send(body)
	})
	return app
}

func BenchmarkMemoryHit(b *testing.B) {
	uri := "/rocket.jpg?size=100&format=webp"
	ts, body := hitServer(b, uri, "HIT-MEMORY", nil)
	b.Run("image-proxy", func(b *testing.B) { benchHandler(b, ts.App().Handler(), uri) })
	b.Run("ceiling", func(b *testing.B) { benchHandler(b, ceilingApp(body).Handler(), uri) })
}

func BenchmarkDiskHit(b *testing.B) {
	uri := "/rocket.jpg?size=100&format=webp"
	ts, body := hitServer(b, uri, "HIT-DISK", diskOnly(b))
	b.Run("image-proxy", func(b *testing.B) { benchHandler(b, ts.App().Handler(), uri) })
	b.Run("ceiling", func(b *testing.B) { benchHandler(b, ceilingApp(body).Handler(), uri) })
}

// TestMemoryHitAllocations pins the memory hit's allocations: none today
// (the target's parse, its key and ETag come from the parse memo, memo.go;
// nothing for the headers, the metrics or the file check). The budget is
// what a hit allocated before the memo.
func TestMemoryHitAllocations(t *testing.T) {
	uri := "/rocket.jpg?size=100&format=webp"
	ts, _ := hitServer(t, uri, "HIT-MEMORY", nil)
	serve := hitRequest(t, ts.App().Handler(), uri)
	statted := ts.m.StatCacheLookups.WithLabelValues(metrics.StatCacheStat)
	before := testutil.ToFloat64(statted)
	allocs := testing.AllocsPerRun(200, func() {
		if code := serve(); code != 200 {
			t.Fatalf("status %d", code)
		}
	})
	if n := testutil.ToFloat64(statted) - before; n != 0 {
		t.Errorf("%v of 201 hits described the original with a stat call", n)
	}
	const budget = 3
	if allocs > budget {
		t.Errorf("%.1f allocations per memory hit, budget %d", allocs, budget)
	}
	t.Logf("%.1f allocations per memory hit", allocs)
}
