package proxy

import (
	"fmt"
	"strings"
	"testing"

	"image-proxy/cache"
	"image-proxy/transform"
)

// TestBulkFollowsControls: bulk items pass the same signature, preset,
// quality and allowed-size checks as GET; a refused item is its own part
// (403) or, when it is a bad parameter, the whole request's 400 naming it.
func TestBulkFollowsControls(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) {
		c.Controls = signingControls()
		c.Controls.AllowedSizes = "50,100"
	})
	signed := func(query string) string { return sigOf(keyNow, "/rocket.jpg?"+query) }
	items := []string{
		fmt.Sprintf(`{"path":"rocket.jpg","size":100,"sig":%q}`, signed("size=100")),
		fmt.Sprintf(`{"path":"rocket.jpg","size":50,"format":"webp","sig":%q}`, signed("format=webp&size=50")),
		`{"path":"rocket.jpg","size":100}`,                                          // unsigned
		fmt.Sprintf(`{"path":"rocket.jpg","size":50,"sig":%q}`, signed("size=100")), // signed for another size
		fmt.Sprintf(`{"path":"rocket.jpg","preset":"phone","size":50,"sig":%q}`, signed("preset=phone&size=50")),
		fmt.Sprintf(`{"path":"rocket.jpg","size":100,"sig":%q}`, sigOf(keyPrev, "/rocket.jpg?size=100")), // previous key
	}
	resp, body := ts.post(t, "/bulk", []byte("["+strings.Join(items, ",")+"]"), "Content-Type", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %.300s", resp.StatusCode, body)
	}
	parts := readBulkParts(t, resp.Header.Get("Content-Type"), strings.NewReader(string(body)))
	if len(parts) != len(items) {
		t.Fatalf("%d parts for %d items", len(parts), len(items))
	}
	checkBulkPart(t, 0, parts[0], 200, "jpeg", 100, 67)
	checkBulkPart(t, 1, parts[1], 200, "webp", 50, 33)
	checkBulkPart(t, 2, parts[2], 403, "", 0, 0)
	checkBulkPart(t, 3, parts[3], 403, "", 0, 0)
	// The phone preset (size 100, quality 60) wins over the item's size 50.
	checkBulkPart(t, 4, parts[4], 200, "jpeg", 100, 67)
	checkBulkPart(t, 5, parts[5], 200, "jpeg", 100, 67)

	// A size the operator does not allow is a bad item: the request's 400.
	bad := fmt.Sprintf(`[{"path":"rocket.jpg","size":70,"sig":%q}]`, signed("size=70"))
	resp, body = ts.post(t, "/bulk", []byte(bad), "Content-Type", "application/json")
	if resp.StatusCode != 400 || !strings.Contains(errorMessage(t, body), "item 0:") {
		t.Errorf("size not allowed: status %d, body %s", resp.StatusCode, body)
	}
}
