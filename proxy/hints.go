package proxy

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"image-proxy/request"
)

// clientHints are the request's client hint headers, raw: the gate decides
// which the server honours (IMAGE_PROXY_CLIENT_HINTS) and what they mean.
// Sec-CH-Width is the current name, Width the one browsers sent before.
func clientHints(c *fiber.Ctx) request.Hints {
	h := request.Hints{DPR: c.Get("Sec-CH-DPR"), Width: c.Get("Sec-CH-Width"), SaveData: c.Get("Save-Data")}
	if h.Width == "" {
		h.Width = c.Get("Width")
	}
	return h
}

// varyAccept is the bit of a Vary index for format=auto's Accept, above
// request.Vary's hint bits.
const varyAccept = 8

// varyValues is every Vary header value, by the hint bits (request.Vary)
// and varyAccept: built once, so an answer sets a fixed string.
func varyValues() [16]string {
	var out [16]string
	for i := range out {
		names := request.Vary(i &^ varyAccept).String()
		if i&varyAccept != 0 {
			names = strings.TrimPrefix(names+", Accept", ", ")
		}
		out[i] = names
	}
	return out
}
