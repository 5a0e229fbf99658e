package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/request"
	"image-proxy/transform"
)

// rBulkServer is a test server with the /r/ routes on and api-s3's
// products/shoes.jpg (rocket.jpg, 640×427) under its root.
func rBulkServer(t *testing.T, edit func(*request.ControlsConfig)) *testServer {
	t.Helper()
	c := rControls()
	if edit != nil {
		edit(&c)
	}
	ts := withControls(t, c)
	must(t, os.MkdirAll(filepath.Join(ts.root, "products"), 0o755))
	must(t, writeRootFile(ts.root, "products/shoes.jpg", readData(t, "rocket.jpg")))
	return ts
}

// postRBulk posts items to /r/bulk and decodes the parts of a 200.
func postRBulk(t *testing.T, ts *testServer, items ...string) []bulkPart {
	t.Helper()
	resp, body := ts.post(t, "/r/bulk", []byte("["+strings.Join(items, ",")+"]"), "Content-Type", "application/json")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /r/bulk: status %d, headers %v: %.300s", resp.StatusCode, resp.Header, body)
	}
	parts := readBulkParts(t, resp.Header.Get("Content-Type"), strings.NewReader(string(body)))
	if len(parts) != len(items) {
		t.Fatalf("%d parts for %d items", len(parts), len(items))
	}
	return parts
}

// sameAsGet checks that a part is what GET target answers: status, and for
// an image the same bytes, ETag and Content-Type.
func sameAsGet(t *testing.T, ts *testServer, i int, p bulkPart, target string) {
	t.Helper()
	resp, body := ts.get(t, target)
	if p.get("X-Item-Status") != strconv.Itoa(resp.StatusCode) {
		t.Errorf("part %d: status %s, GET %s answers %d", i, p.get("X-Item-Status"), target, resp.StatusCode)
		return
	}
	if resp.StatusCode != 200 {
		return
	}
	if string(p.body) != string(body) || p.get("ETag") != resp.Header.Get("ETag") || p.get("Content-Type") != resp.Header.Get("Content-Type") {
		t.Errorf("part %d: %d bytes, ETag %s, %s; GET %s: %d bytes, ETag %s, %s", i, len(p.body), p.get("ETag"), p.get("Content-Type"),
			target, len(body), resp.Header.Get("ETag"), resp.Header.Get("Content-Type"))
	}
}

// TestRBulk: api-s3's bulk call answers one WebP part per item, in order,
// each the very variant (bytes and ETag) of the GET /r/ URL it stands for.
func TestRBulk(t *testing.T) {
	ts := rBulkServer(t, nil)
	cases := []struct {
		item, get     string
		status, width int
	}{
		{`{"path": "products/shoes.jpg", "width": 400, "target": "phone"}`, "/r/products/400/phone/shoes.jpg", 200, 400},
		{`{"path":"variants/astronaut-alpha.png","width":200,"target":"desktop"}`, "/r/variants/200/desktop/astronaut-alpha.png", 200, 200},
		{`{"target":"phone","width":1,"path":"variants/coffee.jxl","sig":null}`, "/r/variants/1/phone/coffee.jxl", 200, 1},
		{`{"path":"products/missing.jpg","width":100,"target":"phone"}`, "/r/products/100/phone/missing.jpg", 404, 0},
		{`{"path":"variants/coffee%2Ejxl","width":150,"target":"desktop"}`, "/r/variants/150/desktop/coffee.jxl", 200, 150},
		{`{"path":"products/shoes.jpg","width":4000,"target":"phone"}`, "/r/products/4000/phone/shoes.jpg", 200, 640},
		{`{"path":"products/shoes.jpg","width":400,"target":"phone"}`, "/r/products/400/phone/shoes.jpg", 200, 400},
	}
	var items []string
	for _, c := range cases {
		items = append(items, c.item)
	}
	parts := postRBulk(t, ts, items...)
	for i, c := range cases {
		checkBulkPart(t, i, parts[i], c.status, "webp", c.width, 0)
		sameAsGet(t, ts, i, parts[i], c.get)
	}
	// And the main form the GET stands for (phone: quality 75).
	sameAsGet(t, ts, 0, parts[0], "/products/shoes.jpg?size=400&format=webp&quality=75")
	if got := parts[6].get("X-Cache-Status"); got != "HIT-MEMORY" {
		t.Errorf("a repeated item: X-Cache-Status %q, want HIT-MEMORY", got)
	}
}

// TestRBulkLargeBody: the body may hold IMAGE_PROXY_BULK_MAX_ITEMS items,
// past the 4 KB every other route is held to.
func TestRBulkLargeBody(t *testing.T) {
	ts := rBulkServer(t, nil)
	// Pretty-printed, as a client may send it: 50 items come to over 4 KB.
	item := "\n  {\n    \"path\":   \"products/shoes.jpg\",\n    \"width\":  64,\n    \"target\": \"phone\"\n  }"
	items := slices.Repeat([]string{item}, 50)
	if n := len(strings.Join(items, ",")); n <= bodyPrefetch {
		t.Fatalf("the body is %d bytes, not over %d", n, bodyPrefetch)
	}
	for i, p := range postRBulk(t, ts, items...) {
		checkBulkPart(t, i, p, 200, "webp", 64, 0)
	}
}

// TestRBulkContentType: like POST /bulk, the body is read as JSON whatever
// Content-Type says.
func TestRBulkContentType(t *testing.T) {
	ts := rBulkServer(t, nil)
	for _, ct := range []string{"application/json", "text/plain", "application/x-www-form-urlencoded", ""} {
		for _, c := range []struct{ route, body string }{
			{"/r/bulk", `[{"path":"products/shoes.jpg","width":40,"target":"phone"}]`},
			{"/bulk", `[{"path":"products/shoes.jpg","size":40}]`},
		} {
			resp, body := ts.post(t, c.route, []byte(c.body), "Content-Type", ct)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/mixed") {
				t.Errorf("%s with Content-Type %q: %d %s %.100q", c.route, ct, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
	}
}

// TestRBulkRefusals: every bad body or item is a 400 naming the item (or
// the body's shape), and nothing of the request is rendered.
func TestRBulkRefusals(t *testing.T) {
	ts := rBulkServer(t, nil)
	ts3 := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) {
		c.Controls = rControls()
		c.Backend.BulkMaxItems = 3
	})
	const ok = `{"path":"products/shoes.jpg","width":37,"target":"phone"}`
	item := func(fields string) string { return `[` + ok + `,{` + fields + `}]` }
	const pathMsg = "item 1: path must be a plain {category}/{file} of at most 1024 bytes: no empty, hidden (.name) or .. segments, no NUL or backslash."
	const widthMsg = "item 1: width must be a whole number from 1 to 4000, as a JSON number."
	const targetMsg = "item 1: target must be a preset name (such as phone or desktop) of up to 64 letters, digits, - and _."
	cases := []struct {
		name, body, msg string
	}{
		{"not JSON", `hello`, "The body must be a JSON array of items."},
		{"object, not array", ok, "The body must be a JSON array of items."},
		{"empty array", `[]`, "The array must hold at least one item."},
		{"trailing garbage", `[` + ok + `] x`, "The body must be a JSON array of items, and nothing after it."},
		{"truncated", `[` + ok + `,{"path":`, "item 1: not a JSON object."},
		{"item not an object", `[` + ok + `,"products/shoes.jpg"]`, "item 1: not a JSON object."},
		{"unknown field", item(`"path":"products/shoes.jpg","width":10,"target":"phone","size":10`), `item 1: unknown field "size".`},
		{"a GET parameter", item(`"path":"products/shoes.jpg","width":10,"target":"phone","dpr":2`), `item 1: unknown field "dpr".`},
		{"missing path", item(`"width":10,"target":"phone"`), "item 1: path must be a non-empty string: {category}/{file}, such as products/shoes.jpg."},
		{"empty path", item(`"path":"","width":10,"target":"phone"`), "item 1: path must be a non-empty string"},
		{"null path", item(`"path":null,"width":10,"target":"phone"`), "item 1: path must be a non-empty string"},
		{"path a number", item(`"path":5,"width":10,"target":"phone"`), "item 1: path must be a non-empty string"},
		{"no category", item(`"path":"shoes.jpg","width":10,"target":"phone"`), "item 1: path must be {category}/{file}, such as products/shoes.jpg."},
		{"no file", item(`"path":"products/","width":10,"target":"phone"`), pathMsg},
		{"empty category", item(`"path":"products//shoes.jpg","width":10,"target":"phone"`), pathMsg},
		{"absolute", item(`"path":"/products/shoes.jpg","width":10,"target":"phone"`), "item 1: path must not start with /"},
		{"dot-dot", item(`"path":"products/../rocket.jpg","width":10,"target":"phone"`), pathMsg},
		{"dot-dot first", item(`"path":"../products/shoes.jpg","width":10,"target":"phone"`), pathMsg},
		{"encoded dot-dot", item(`"path":"products/%2E%2E/rocket.jpg","width":10,"target":"phone"`), pathMsg},
		{"hidden", item(`"path":"products/.env","width":10,"target":"phone"`), pathMsg},
		{"hidden category", item(`"path":".git/config","width":10,"target":"phone"`), pathMsg},
		{"NUL", item(`"path":"products/shoes.jpg\u0000.png","width":10,"target":"phone"`), pathMsg},
		{"encoded NUL", item(`"path":"products/shoes.jpg%00","width":10,"target":"phone"`), pathMsg},
		{"backslash", item(`"path":"products\\shoes.jpg","width":10,"target":"phone"`), pathMsg},
		{"too long", item(`"path":"products/` + strings.Repeat("a", request.MaxPathBytes) + `","width":10,"target":"phone"`), pathMsg},
		{"bad escape", item(`"path":"products/a%zz.jpg","width":10,"target":"phone"`), "item 1: path has malformed percent-encoding."},
		{"missing width", item(`"path":"products/shoes.jpg","target":"phone"`), widthMsg},
		{"null width", item(`"path":"products/shoes.jpg","width":null,"target":"phone"`), widthMsg},
		{"width 0", item(`"path":"products/shoes.jpg","width":0,"target":"phone"`), widthMsg},
		{"width negative", item(`"path":"products/shoes.jpg","width":-400,"target":"phone"`), widthMsg},
		{"width 4001", item(`"path":"products/shoes.jpg","width":4001,"target":"phone"`), widthMsg},
		{"width huge", item(`"path":"products/shoes.jpg","width":99999999999,"target":"phone"`), widthMsg},
		{"width fraction", item(`"path":"products/shoes.jpg","width":400.5,"target":"phone"`), widthMsg},
		{"width 400.0", item(`"path":"products/shoes.jpg","width":400.0,"target":"phone"`), widthMsg},
		{"width exponent", item(`"path":"products/shoes.jpg","width":4e2,"target":"phone"`), widthMsg},
		{"width a string", item(`"path":"products/shoes.jpg","width":"400","target":"phone"`), widthMsg},
		{"width a bool", item(`"path":"products/shoes.jpg","width":true,"target":"phone"`), widthMsg},
		{"missing target", item(`"path":"products/shoes.jpg","width":10`), targetMsg},
		{"empty target", item(`"path":"products/shoes.jpg","width":10,"target":""`), targetMsg},
		{"target a number", item(`"path":"products/shoes.jpg","width":10,"target":1`), targetMsg},
		{"target with a slash", item(`"path":"products/shoes.jpg","width":10,"target":"pho/ne"`), targetMsg},
		{"unknown target", item(`"path":"products/shoes.jpg","width":10,"target":"tablet"`), "item 1: preset must be one of desktop, phone."},
		{"sig a number", item(`"path":"products/shoes.jpg","width":10,"target":"phone","sig":5`), "item 1: sig must be a string."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectBulkRefusal(t, ts, c.body, c.msg)
		})
	}
	t.Run("too many items", func(t *testing.T) {
		expectBulkRefusal(t, ts3, `[`+strings.Repeat(ok+",", 3)+ok+`]`, "item 3: a bulk request takes at most 3 items.")
	})
	t.Run("over the body cap", func(t *testing.T) {
		long := `[{"path":"products/` + strings.Repeat("a", 3*bulkItemBytes) + `","width":1,"target":"phone"}]`
		resp, body := ts3.post(t, "/r/bulk", []byte(long), "Content-Type", "application/json")
		if resp.StatusCode != 413 || !strings.Contains(errorMessage(t, body), "larger than") {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})
	if got := refusals(ts, metrics.RefusalUnknownPreset); got != 1 {
		t.Errorf("refusals{reason=unknown_preset} = %v, want 1 (the unknown target)", got)
	}
	// Item 0 of every refused request was good, and none of them rendered it.
	if resp, _ := ts.get(t, "/r/products/37/phone/shoes.jpg"); resp.Header.Get("X-Cache-Status") != "MISS" {
		t.Errorf("after the refusals: X-Cache-Status %q, want MISS", resp.Header.Get("X-Cache-Status"))
	}
}

// expectBulkRefusal posts body to /r/bulk and checks the 400 and its message.
func expectBulkRefusal(t *testing.T, ts *testServer, body, msg string) {
	t.Helper()
	resp, got := ts.post(t, "/r/bulk", []byte(body), "Content-Type", "application/json")
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s, want 400: %s", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	if m := errorMessage(t, got); !strings.HasPrefix(m, msg) {
		t.Errorf("message %q, want %q", m, msg)
	}
}

// TestRBulkSigned: an item's sig signs the main-form URL, as the /r/ GET's
// does; an unsigned or wrongly signed item is its own 403 part.
func TestRBulkSigned(t *testing.T) {
	ts := rBulkServer(t, func(c *request.ControlsConfig) { c.SigningKey, c.SigningKeyPrevious = keyNow, keyPrev })
	main := "/products/shoes.jpg?format=webp&preset=phone&size=100"
	sig := sigOf(keyNow, main)
	items := []string{
		fmt.Sprintf(`{"path":"products/shoes.jpg","width":100,"target":"phone","sig":%q}`, sig),
		fmt.Sprintf(`{"path":"products/shoes.jpg","width":100,"target":"phone","sig":%q}`, sigOf(keyPrev, main)),
		`{"path":"products/shoes.jpg","width":100,"target":"phone"}`,
		fmt.Sprintf(`{"path":"products/shoes.jpg","width":101,"target":"phone","sig":%q}`, sig),
		fmt.Sprintf(`{"path":"products/shoes.jpg","width":100,"target":"desktop","sig":%q}`, sig),
		`{"path":"products/shoes.jpg","width":100,"target":"phone","sig":""}`,
	}
	parts := postRBulk(t, ts, items...)
	for i, want := range []int{200, 200, 403, 403, 403, 403} {
		checkBulkPart(t, i, parts[i], want, "webp", 100, 0)
	}
	sameAsGet(t, ts, 0, parts[0], "/r/products/100/phone/shoes.jpg?sig="+sig)
	signed, err := request.SignURL(request.ControlsConfig{SigningKey: keyNow, EnableRRoutes: true}, "", 4000, "/r/products/100/phone/shoes.jpg")
	if err != nil || !strings.HasSuffix(signed, "?sig="+sig) {
		t.Errorf("image-proxy sign of the /r/ URL: %q %v, want its sig %s", signed, err, sig)
	}
	if got := refusals(ts, metrics.RefusalSignatureMissing) + refusals(ts, metrics.RefusalSignatureInvalid); got != 4 {
		t.Errorf("signature refusals %v, want 4", got)
	}
}

// TestRBulkOff: without IMAGE_PROXY_ENABLE_R_ROUTES, POST /r/bulk is what it
// was before the route existed: an image path, so 405 (Allow: GET, HEAD),
// and a body over 4 KB is refused unread (413).
func TestRBulkOff(t *testing.T) {
	ts := newTestServer(t, nil)
	resp, body := ts.post(t, "/r/bulk", []byte(`[{"path":"variants/coffee.jxl","width":100,"target":"phone"}]`), "Content-Type", "application/json")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || errorMessage(t, body) == "" {
		t.Errorf("status %d, Allow %q: %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	big := `[` + strings.Repeat(`{"path":"variants/coffee.jxl","width":100,"target":"phone"},`, 100) + `{}]`
	if resp, body := ts.post(t, "/r/bulk", []byte(big), "Content-Type", "application/json"); resp.StatusCode != 413 {
		t.Errorf("a body of %d bytes: status %d: %s", len(big), resp.StatusCode, body)
	}
	// With the routes on, other methods on /r/bulk are still image paths.
	on := rBulkServer(t, nil)
	if resp, _ := on.get(t, "/r/bulk"); resp.StatusCode != 404 {
		t.Errorf("GET /r/bulk with the routes on: %d, want 404", resp.StatusCode)
	}
}

// FuzzParseRBulk: any body either parses into at most maxItems items, each
// exactly the path and values request.RouteR makes of the /r/ URL the item stands
// for, or is refused with a 400 whose message names the item index or the
// body's shape.
func FuzzParseRBulk(f *testing.F) {
	for _, s := range []string{
		`[{"path":"products/shoes.jpg","width":400,"target":"phone"}]`,
		`[{"path":"a/b/c.jpg","width":1,"target":"desktop","sig":"abc"},{"path":"x/y%20z.png","width":4000,"target":"My-t_1","sig":null}]`,
		`[]`, `[1]`, `{}`, `[{"path":""}]`, `[{"path":"a/b","width":"4","target":"p"}]`, `[{"path":"a/b","width":4.0,"target":"p"}]`,
		`[{"path":"/a/b","width":4,"target":"p"}]`, `[{"path":"a/../b","width":4,"target":"p"}]`, `[{"path":"a/b%zz","width":4,"target":"p"}]`,
		`[{"path":"a/b","width":-1,"target":"p"}]`, `[{"path":"a/b","width":4,"target":"p","size":1}]`, `[{"path":"a/b","width":4,"target":"p"}] x`,
	} {
		f.Add([]byte(s))
	}
	const maxItems = 5
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := parseRBulk(body, maxItems)
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) || !itemMessage.MatchString(pe.msg) {
				t.Fatalf("refusal %v is not a 400 naming the item or the body", err)
			}
			if status, _ := classify(err); status != 400 {
				t.Fatalf("refusal %v answers %d", err, status)
			}
			return
		}
		var generic []map[string]any
		if json.Unmarshal(body, &generic) != nil || len(items) == 0 || len(items) > maxItems || len(items) != len(generic) {
			t.Fatalf("%d items from %q", len(items), body)
		}
		for i, it := range items {
			checkFuzzedRItem(t, i, it, generic[i])
		}
	})
}

// checkFuzzedRItem: the item is what GET /r/{category}/{width}/{target}/{file}
// is served as.
func checkFuzzedRItem(t *testing.T, i int, it bulkItem, fields map[string]any) {
	rel, err := request.ResolvePath("/"+it.path, "")
	category, file, _ := strings.Cut(rel, "/")
	width, _ := fields["width"].(float64)
	target, _ := fields["target"].(string)
	if err != nil || it.path != fields["path"] || category == "" || file == "" || width < 1 || width > request.MaxRWidth || target == "" {
		t.Fatalf("item %d: accepted %v (path %q: %v)", i, fields, it.path, err)
	}
	q := request.RawQuery("")
	if sig, ok := fields["sig"].(string); ok {
		q = request.RawQuery("sig=" + url.QueryEscape(sig))
	}
	mainRel, mq, err := request.RouteR("r/"+category+"/"+strconv.Itoa(int(width))+"/"+target+"/"+file, q)
	if err != nil || mainRel != rel {
		t.Fatalf("item %d: RouteR gives %q %v, the item %q", i, mainRel, err, rel)
	}
	iq := it.values()
	for _, k := range request.QueryKeys() {
		if a, b := iq.Values(k), mq.Values(k); !slices.Equal(a, b) {
			t.Fatalf("item %d: %s = %q, the GET's %q", i, k, a, b)
		}
	}
}
