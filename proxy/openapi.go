package proxy

import (
	"embed"

	"github.com/gofiber/fiber/v2"

	"image-proxy/request"
)

// The OpenAPI description and the page that renders it. docs/ holds the
// viewer, vendored by `make docs-viewer` from a pinned npm release.
//
//go:embed openapi.json docs/index.html docs/redoc.standalone.js
var docsFS embed.FS

const docsScriptPath = "/docs/redoc.standalone.js"

// docsCSP lets the page load nothing from anywhere but this server.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) serveEmbedded(c *fiber.Ctx, name, contentType string) error {
	b, err := docsFS.ReadFile(name)
	if err != nil {
		return err
	}
	h := &c.Response().Header
	h.SetContentType(contentType)
	h.Set(fiber.HeaderCacheControl, "public, max-age=300")
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderETag, request.StrongETag(string(b)))
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), string(h.Peek(fiber.HeaderETag))) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	c.Response().SetBodyRaw(b)
	return nil
}

// openAPI answers GET /openapi.json.
func (s *Server) openAPI(c *fiber.Ctx) error {
	return s.serveEmbedded(c, "openapi.json", fiber.MIMEApplicationJSONCharsetUTF8)
}

// docsPage answers GET /docs: the description rendered by the viewer.
func (s *Server) docsPage(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, docsCSP)
	return s.serveEmbedded(c, "docs/index.html", fiber.MIMETextHTMLCharsetUTF8)
}

// docsScript answers GET /docs/redoc.standalone.js, the viewer.
func (s *Server) docsScript(c *fiber.Ctx) error {
	return s.serveEmbedded(c, "docs/redoc.standalone.js", fiber.MIMETextJavaScriptCharsetUTF8)
}
