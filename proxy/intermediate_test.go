package proxy

import (
	"testing"

	"image-proxy/request"
	"image-proxy/transform"
)

// TestIntermediateTagFollowsSettings: a variant the intermediate may
// render is keyed by its settings (a new side re-keys it), and with the
// intermediate off no key names one.
func TestIntermediateTagFollowsSettings(t *testing.T) {
	req := request.Request{Transform: true, Size: 400, DPR: 1}
	keyOf := func(side int) string {
		cfg := transform.DefaultConfig()
		cfg.IntermediateSize = side
		c := Config{MaxBox: 4000, Encoders: cfg.Fingerprints(), Intermediate: cfg.Intermediate()}
		return c.Variants().OfSource("file:a.jpg|1", 4<<20, req, "").Key()
	}
	plain := Config{MaxBox: 4000, Encoders: transform.DefaultConfig().Fingerprints()}.Variants().Of("file:a.jpg|1", req, "").Key()
	if a, b := keyOf(1200), keyOf(800); a == b || a == plain || b == plain {
		t.Errorf("keys %q and %q for two sides, %q without", a, b, plain)
	}
	if k := keyOf(0); k != plain {
		t.Errorf("off: key %q, want %q", k, plain)
	}
}
