package proxy

import (
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Handler benchmarks without sockets: image-proxy's memory hit against a
// bare Fiber handler returning the same bytes (the ceiling).

func benchHandler(b *testing.B, h fasthttp.RequestHandler, uri string) {
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetMethod("GET")
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
}

func BenchmarkMemoryHit(b *testing.B) {
	ts := newTestServer(b, nil)
	uri := "/rocket.jpg?size=100&format=webp"
	resp, body := ts.get(b, uri)
	if resp.StatusCode != 200 {
		b.Fatal(resp.StatusCode)
	}
	b.Run("image-proxy", func(b *testing.B) { benchHandler(b, ts.App().Handler(), uri) })
	app := fiber.New()
	app.Get("/*", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "image/webp")
		return c.Send(body)
	})
	b.Run("ceiling", func(b *testing.B) { benchHandler(b, app.Handler(), uri) })
}
