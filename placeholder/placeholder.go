// Package placeholder computes what a page paints while an image loads,
// from a small decode of it (at most 100 × 100 pixels, RGBA, not
// premultiplied): its dominant colour, a BlurHash and a ThumbHash. It is
// pure Go over pixels: transform decodes and hands them over, so nothing
// here knows libvips or HTTP.
package placeholder

import (
	"encoding/base64"
	"errors"
	"fmt"
	"image"

	"github.com/buckket/go-blurhash"
)

// MaxSide is the largest side the hashes take: ThumbHash's limit, and
// more than any placeholder needs (a larger picture only costs time).
const MaxSide = 100

// Pixels is a small upright picture, row by row, 4 bytes a pixel (R, G, B,
// A, not premultiplied).
type Pixels struct {
	W, H int
	RGBA []byte
}

// Check refuses pixels a hash cannot take.
func (p Pixels) Check() error {
	switch {
	case p.W < 1 || p.H < 1 || p.W > MaxSide || p.H > MaxSide:
		return fmt.Errorf("placeholder: %d × %d pixels, each side must be 1 to %d", p.W, p.H, MaxSide)
	case len(p.RGBA) != p.W*p.H*4:
		return errors.New("placeholder: RGBA length is not width × height × 4")
	}
	return nil
}

// Set is every placeholder of one picture, in the JSON form format=json
// answers and warm's manifest.json records.
type Set struct {
	DominantColor string `json:"dominant_color"` // "#rrggbb"
	BlurHash      string `json:"blurhash"`
	ThumbHash     string `json:"thumbhash"` // standard base64, padded
	// LQIP is a data:image/webp;base64,… URI of at most about 1 KB: an
	// encoder's work, so transform fills it in; Of leaves it empty.
	LQIP string `json:"lqip"`
}

// Of computes every placeholder of p.
func Of(p Pixels) (Set, error) {
	if err := p.Check(); err != nil {
		return Set{}, err
	}
	bh, err := BlurHash(p)
	if err != nil {
		return Set{}, err
	}
	return Set{DominantColor: Dominant(p), BlurHash: bh,
		ThumbHash: base64.StdEncoding.EncodeToString(ThumbHash(p))}, nil
}

// Components is the BlurHash grid for a w × h picture: 4 × 3 when it is
// wider than tall, 3 × 4 when taller, 4 × 4 when square. Each component
// is two characters of the hash; more of them along the long side keep
// the picture's layout without a longer hash for a square one.
func Components(w, h int) (x, y int) {
	switch {
	case w > h:
		return 4, 3
	case h > w:
		return 3, 4
	}
	return 4, 4
}

// BlurHash encodes p with the grid Components chooses. BlurHash has no
// alpha: transparent pixels are laid over white, the background a JPEG
// of the image gets.
func BlurHash(p Pixels) (string, error) {
	img := image.NewNRGBA(image.Rect(0, 0, p.W, p.H))
	for i := 0; i < len(p.RGBA); i += 4 {
		a := int(p.RGBA[i+3])
		for c := range 3 {
			img.Pix[i+c] = uint8((int(p.RGBA[i+c])*a + 255*(255-a) + 127) / 255)
		}
		img.Pix[i+3] = 255
	}
	x, y := Components(p.W, p.H)
	return blurhash.Encode(x, y, img)
}

// Dominant is the colour most of the picture has: pixels are counted in
// buckets of 4 bits a channel (weighted by their alpha), and the answer is
// the mean colour of the fullest bucket. Unlike the mean of the whole
// picture, a red car on grey tarmac gives grey, not brown. A picture with
// no opaque pixel at all gives white.
func Dominant(p Pixels) string {
	var weight [4096]float64
	var sum [4096][3]float64
	best := -1
	for i := 0; i < len(p.RGBA); i += 4 {
		a := float64(p.RGBA[i+3]) / 255
		if a == 0 {
			continue
		}
		r, g, b := p.RGBA[i], p.RGBA[i+1], p.RGBA[i+2]
		k := int(r>>4)<<8 | int(g>>4)<<4 | int(b>>4)
		weight[k] += a
		sum[k][0] += a * float64(r)
		sum[k][1] += a * float64(g)
		sum[k][2] += a * float64(b)
		if best < 0 || weight[k] > weight[best] {
			best = k
		}
	}
	if best < 0 {
		return "#ffffff"
	}
	var c [3]uint8
	for i := range c {
		c[i] = uint8(sum[best][i]/weight[best] + 0.5)
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}
