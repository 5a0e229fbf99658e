package proxy

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"image-proxy/apidocs"
)

// routes registers every route of the app, in the order Fiber matches
// them: a new endpoint is one line here (and its handler, in a file of its
// own). Operational endpoints answer at the root, before the strip prefix;
// everything no other route takes is an image path.
func (s *Server) routes() error {
	s.app.Use(s.bodyGuard) // bodies only where takesBody says
	s.app.Get("/health", s.health)
	s.app.Get("/metrics", adaptor.HTTPHandler(s.m.Handler()))
	s.app.Post("/convert", s.handleConvert)
	s.app.Post("/bulk", s.handleBulk)
	s.app.Post("/events/s3", s.handleEvents)
	s.app.Post("/purge", s.handlePurge)
	if s.cfg.Controls.EnableRRoutes {
		// api-s3's bulk call. Without the /r/ routes, /r/bulk stays an
		// image path like any other (POST: 405).
		s.app.Post("/r/bulk", s.handleRBulk)
	}
	pages, err := apidocs.Pages(convertFormats) // /openapi.json, /docs and its script
	if err != nil {
		return err
	}
	for _, p := range pages {
		s.app.Get(p.Path, servePage(p))
	}
	s.app.All("/*", s.handleImage)
	return nil
}

// takesBody reports whether the route reads a request body itself: the
// POST routes above.
func (s *Server) takesBody(c *fiber.Ctx) bool {
	if c.Method() != fiber.MethodPost {
		return false
	}
	p := c.Path()
	return p == "/convert" || p == "/bulk" || p == "/events/s3" || p == "/purge" || p == "/r/bulk" && s.cfg.Controls.EnableRRoutes
}
