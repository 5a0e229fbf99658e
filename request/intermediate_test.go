package request

import (
	"strings"
	"testing"

	"image-proxy/imageformat"
)

// TestIntermediateInKey: a variant's key names the intermediate exactly
// when its source is large enough and its bounds may fit in it; every
// other key is the key of before.
func TestIntermediateInKey(t *testing.T) {
	vs := Variants{MaxBox: 4000, Intermediates: Intermediates{Side: 1200, MinBytes: 1 << 20, Tag: "im1200.i1"}}
	off := Variants{MaxBox: 4000}
	cases := []struct {
		name string
		req  Request
		size int64
		want bool
	}{
		{"a box inside", Request{Transform: true, DPR: 1, Size: 400}, 2 << 20, true},
		{"the box of the side", Request{Transform: true, DPR: 1, Size: 1200}, 2 << 20, true},
		{"a box over the side", Request{Transform: true, DPR: 1, Size: 1201}, 2 << 20, false},
		{"dpr over the side", Request{Transform: true, Size: 500, DPR: 3}, 2 << 20, false},
		{"a small source", Request{Transform: true, DPR: 1, Size: 400}, 1<<20 - 1, false},
		{"format only", Request{Transform: true, DPR: 1, Output: Output{Format: imageformat.WebP}}, 2 << 20, false},
		{"a width inside", Request{Transform: true, DPR: 1, Width: 800}, 2 << 20, true},
		{"a cover crop", Request{Transform: true, DPR: 1, Width: 300, Height: 300, Fit: imageformat.FitCover}, 2 << 20, true},
		{"sides over the side", Request{Transform: true, DPR: 1, Width: 1300, Height: 1300}, 2 << 20, false},
	}
	for _, c := range cases {
		v := vs.OfSource("file:a.jpg|1", c.size, c.req, "")
		plain := off.OfSource("file:a.jpg|1", c.size, c.req, "")
		named := strings.HasSuffix(v.Key(), "|im1200.i1")
		if named != c.want || (v.Intermediate != "") != c.want {
			t.Errorf("%s: key %q names the intermediate: %v, want %v", c.name, v.Key(), named, c.want)
		}
		if !c.want && v.Key() != plain.Key() {
			t.Errorf("%s: key %q, want the key of before %q", c.name, v.Key(), plain.Key())
		}
		if plain.Key() != off.Of("file:a.jpg|1", c.req, "").Key() {
			t.Errorf("%s: with the intermediate off OfSource is not Of", c.name)
		}
	}
}
