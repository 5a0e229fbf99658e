package imageformat

import (
	"bytes"
	"testing"
)

// TestTagRoundTrip: a tagged value is the format's byte, then the image
// (the layout of every cached result: changing it loses every stored
// entry), and Untag gives both back.
func TestTagRoundTrip(t *testing.T) {
	for _, f := range Outputs() {
		img := []byte("image bytes of " + f.String())
		v := Tag(f, img)
		if v[0] != byte(f) || !bytes.Equal(v[1:], img) {
			t.Errorf("%s: tagged %q", f, v)
		}
		got, body := Untag(v)
		if got != f || !bytes.Equal(body, img) {
			t.Errorf("%s: untagged %s %q", f, got, body)
		}
	}
	if got, body := Untag(Tag(WebP, nil)); got != WebP || len(body) != 0 {
		t.Errorf("empty image: %s %q", got, body)
	}
}
