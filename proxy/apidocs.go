package proxy

import (
	"github.com/gofiber/fiber/v2"

	"image-proxy/apidocs"
	"image-proxy/request"
)

// servePage answers GET for one page of apidocs: its bytes and headers,
// and a strong ETag of its bytes, hashed once here rather than per request.
func servePage(p apidocs.Page) fiber.Handler {
	etag := request.StrongETag(string(p.Body))
	return func(c *fiber.Ctx) error {
		h := &c.Response().Header
		for _, f := range p.Header {
			h.Set(f.Name, f.Value)
		}
		h.Set(fiber.HeaderETag, etag)
		if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
			c.Status(fiber.StatusNotModified)
			return nil
		}
		c.Response().SetBodyRaw(p.Body)
		return nil
	}
}
