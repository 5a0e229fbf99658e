package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestPackageBoundaries keeps the rules docs/architecture.md states about
// who may import whom, over the full dependency graph (an import through a
// third package counts).
func TestPackageBoundaries(t *testing.T) {
	const fiber, fasthttp, vips = "github.com/gofiber/fiber/v2", "github.com/valyala/fasthttp", "image-proxy/transform/internal/vips"
	cases := []struct {
		pkg    string
		banned []string
	}{
		{"image-proxy/request", []string{fiber, fasthttp, vips, "image-proxy/transform", "image-proxy/cache"}},
		{"image-proxy/origin", []string{fiber, fasthttp}},
		{"image-proxy/warm", []string{"image-proxy/proxy"}},
		{"image-proxy/transform", []string{"image-proxy/cache", fiber, fasthttp}},
		{"image-proxy/cache", []string{"image-proxy/transform", vips}},
		{"image-proxy/metrics", []string{"image-proxy/transform", vips}},
		{"image-proxy/imageformat", []string{vips, fiber}},
		{"image-proxy/fault", []string{vips, fiber}},
		{"image-proxy/apidocs", []string{vips, fiber, fasthttp}},
		// Placeholders are pure Go over pixels transform hands over.
		{"image-proxy/placeholder", []string{vips, fiber, fasthttp, "image-proxy/transform"}},
		// Events parse, filter and queue; the work is given to them.
		{"image-proxy/events", []string{fiber, fasthttp, vips, "image-proxy/transform", "image-proxy/cache", "image-proxy/warm", "image-proxy/origin"}},
	}
	for _, c := range cases {
		out, err := exec.Command("go", "list", "-deps", c.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", c.pkg, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, c.pkg) {
			t.Fatalf("go list -deps %s did not list the package itself: %q", c.pkg, out)
		}
		for _, b := range c.banned {
			if slices.Contains(deps, b) {
				t.Errorf("%s depends on %s", c.pkg, b)
			}
		}
	}
}
