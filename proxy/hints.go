package proxy

import (
	"strings"

	"image-proxy/request"
)

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
