package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/cache"
	"image-proxy/transform"
)

func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("error body is not {\"error\": ...}: %q", body)
	}
	return e.Error
}

func TestPassthroughServesUntouchedBytes(t *testing.T) {
	ts := newTestServer(t, nil)
	cases := []struct {
		path, mime string
	}{
		{"/rocket.jpg", "image/jpeg"},
		{"/astronaut.png", "image/png"},
		{"/astronaut-animated.gif", "image/gif"},
		{"/astronaut-animated.webp", "image/webp"},
		{"/coffee.avif", "image/avif"},
		{"/variants/coffee.tif", "image/tiff"},
		{"/variants/coffee.jxl", "image/jxl"},
		{"/variants/coffee.heic", "image/heif"},
		{"/variants/badge.svg", "image/svg+xml"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(ts.root, c.path))
			if err != nil {
				t.Fatal(err)
			}
			resp, body := ts.get(t, c.path)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("body differs from the file (%d vs %d bytes)", len(body), len(want))
			}
			h := resp.Header
			checks := map[string]string{
				"Content-Type":           c.mime,
				"Cache-Control":          "public, max-age=31536000, no-transform",
				"Accept-Ranges":          "bytes",
				"Accept-CH":              "Sec-CH-DPR",
				"X-Cache-Status":         "BYPASS",
				"X-Content-Type-Options": "nosniff",
				"Vary":                   "",
			}
			for k, v := range checks {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if et := h.Get("ETag"); !strings.HasPrefix(et, `"`) || !strings.HasSuffix(et, `"`) || len(et) < 4 {
				t.Errorf("ETag %q is not a strong quoted tag", et)
			}
			if _, err := http.ParseTime(h.Get("Last-Modified")); err != nil {
				t.Errorf("Last-Modified %q: %v", h.Get("Last-Modified"), err)
			}
			csp := h.Get("Content-Security-Policy")
			if (c.mime == "image/svg+xml") != (csp == svgCSP) {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
		})
	}
}

func TestPassthroughHEAD(t *testing.T) {
	ts := newTestServer(t, nil)
	fi, _ := os.Stat(filepath.Join(ts.root, "rocket.jpg"))
	resp, body := ts.do(t, http.MethodHead, "/rocket.jpg")
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("status %d, %d body bytes", resp.StatusCode, len(body))
	}
	if resp.ContentLength != fi.Size() {
		t.Fatalf("Content-Length %d, want %d", resp.ContentLength, fi.Size())
	}
}

func TestPassthroughRanges(t *testing.T) {
	ts := newTestServer(t, nil)
	file, _ := os.ReadFile(filepath.Join(ts.root, "rocket.jpg"))
	n := int64(len(file))
	cases := []struct {
		name, rng    string
		status       int
		from, to     int64 // inclusive, for 206
		contentRange string
	}{
		{"first bytes", "bytes=0-99", 206, 0, 99, "bytes 0-99/"},
		{"open end", "bytes=100-", 206, 100, n - 1, "bytes 100-"},
		{"suffix", "bytes=-10", 206, n - 10, n - 1, ""},
		{"end past size", "bytes=10-99999999", 206, 10, n - 1, ""},
		{"unsatisfiable", "bytes=99999999-", 416, 0, 0, "bytes */"},
		{"multi range sends all", "bytes=0-1,5-6", 200, 0, n - 1, ""},
		{"garbage ignored", "pages=1-2", 200, 0, n - 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.get(t, "/rocket.jpg", "Range", c.rng)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if cr := resp.Header.Get("Content-Range"); !strings.HasPrefix(cr, c.contentRange) {
				t.Errorf("Content-Range %q, want prefix %q", cr, c.contentRange)
			}
			if c.status != 416 && !bytes.Equal(body, file[c.from:c.to+1]) {
				t.Errorf("body is not bytes %d-%d", c.from, c.to)
			}
		})
	}
}

func TestConditionalRequests(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, target := range []string{"/rocket.jpg", "/rocket.jpg?size=50&format=png"} {
		resp, _ := ts.get(t, target)
		etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		cases := []struct {
			name    string
			headers []string
			status  int
		}{
			{"matching etag", []string{"If-None-Match", etag}, 304},
			{"weak form of the etag", []string{"If-None-Match", "W/" + etag}, 304},
			{"etag in a list", []string{"If-None-Match", `"nope", ` + etag}, 304},
			{"other etag", []string{"If-None-Match", `"nope"`}, 200},
		}
		if !strings.Contains(target, "?") {
			cases = append(cases,
				struct {
					name    string
					headers []string
					status  int
				}{"not modified since", []string{"If-Modified-Since", lm}, 304},
				struct {
					name    string
					headers []string
					status  int
				}{"modified since", []string{"If-Modified-Since", time.Unix(0, 0).UTC().Format(http.TimeFormat)}, 200})
		}
		for _, c := range cases {
			t.Run(target+"/"+c.name, func(t *testing.T) {
				resp, body := ts.get(t, target, c.headers...)
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
				}
				if c.status == 304 {
					if len(body) != 0 || resp.Header.Get("ETag") != etag || resp.Header.Get("Cache-Control") == "" {
						t.Errorf("304 must carry ETag and Cache-Control and no body: %v, %d bytes", resp.Header, len(body))
					}
				}
			})
		}
	}
}

func TestTransformOutputs(t *testing.T) {
	ts := newTestServer(t, nil)
	cases := []struct {
		target string
		format string
		w, h   int
		alpha  bool
		frames int
	}{
		{"/rocket.jpg?size=200", "jpeg", 200, 133, false, 1},
		{"/rocket.jpg?size=200&format=webp", "webp", 200, 133, false, 1},
		{"/rocket.jpg?size=200&format=png", "png", 200, 133, false, 1},
		{"/rocket.jpg?size=200&format=gif", "gif", 200, 133, true, 1},
		{"/rocket.jpg?size=200&format=avif", "avif", 200, 133, false, 1},
		{"/rocket.jpg?size=200&format=JPG", "jpeg", 200, 133, false, 1},
		{"/rocket.jpg?format=png", "png", 640, 427, false, 1},
		{"/rocket.jpg?size=9000", "", 0, 0, false, 0}, // over IMAGE_PROXY_MAX_SIZE: 400 below
		{"/rocket.jpg?size=4000", "jpeg", 640, 427, false, 1},
		{"/rocket.jpg?size=100&dpr=2.5", "jpeg", 250, 167, false, 1},
		{"/rocket.jpg?size=100&dpr=1.5", "jpeg", 150, 100, false, 1},
		{"/rocket-exif-orientation-6.jpg?size=200", "jpeg", 133, 200, false, 1},
		{"/rocket-cmyk.jpg?size=200&format=png", "png", 200, 133, false, 1},
		{"/variants/astronaut-16bit.png?size=100", "png", 100, 100, false, 1},
		{"/variants/astronaut-alpha.png?size=100", "png", 100, 100, true, 1},
		{"/variants/astronaut-alpha.png?size=100&format=jpeg", "jpeg", 100, 100, false, 1},
		{"/astronaut-animated.gif?size=100", "gif", 100, 80, true, 0},
		{"/astronaut-animated.gif?size=100&format=webp", "webp", 100, 80, true, 0},
		{"/astronaut-animated.webp?size=100", "webp", 100, 80, true, 0},
		{"/astronaut-animated.gif?size=100&format=png", "png", 100, 80, true, 1},
		{"/coffee.avif?size=300", "avif", 300, 200, false, 1},
		{"/variants/coffee.tif?size=300", "jpeg", 300, 200, false, 1},
		{"/variants/coffee.jxl?size=300", "jpeg", 300, 200, false, 1},
		{"/variants/coffee.heic?size=300", "jpeg", 300, 200, false, 1},
		{"/variants/badge.svg?size=150", "png", 150, 75, true, 1},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			resp, body := ts.get(t, c.target)
			if c.format == "" {
				if resp.StatusCode != 400 {
					t.Fatalf("status %d, want 400", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "image/"+c.format {
				t.Errorf("Content-Type %q", ct)
			}
			got := decodeInfo(t, body)
			if got.format != c.format || got.width != c.w || got.height != c.h {
				t.Errorf("got %s %dx%d, want %s %dx%d", got.format, got.width, got.height, c.format, c.w, c.h)
			}
			if c.format != "jpeg" && c.format != "gif" && c.frames != 0 && got.alpha != c.alpha {
				t.Errorf("alpha = %v, want %v", got.alpha, c.alpha)
			}
			if c.format == "jpeg" && got.alpha {
				t.Error("JPEG output has alpha")
			}
			if c.frames == 0 && got.frames < 2 {
				t.Errorf("animation lost: %d frames", got.frames)
			} else if c.frames == 1 && got.frames != 1 {
				t.Errorf("%d frames, want 1", got.frames)
			}
			if resp.Header.Get("X-Cache-Status") != "MISS" {
				t.Errorf("X-Cache-Status %q on first request", resp.Header.Get("X-Cache-Status"))
			}
		})
	}
}

func TestTransformHeaders(t *testing.T) {
	ts := newTestServer(t, nil)
	cases := []struct {
		target  string
		headers []string
		vary    string
		ctype   string
	}{
		{"/rocket.jpg?size=100", nil, "Sec-CH-DPR", "image/jpeg"},
		{"/rocket.jpg?size=100&dpr=2", nil, "", "image/jpeg"},
		{"/rocket.jpg?format=webp", nil, "", "image/webp"},
		{"/rocket.jpg?format=auto", []string{"Accept", "image/avif,image/webp,*/*"}, "Accept", "image/avif"},
		{"/rocket.jpg?format=auto", []string{"Accept", "image/webp,*/*"}, "Accept", "image/webp"},
		{"/rocket.jpg?format=auto", []string{"Accept", "*/*"}, "Accept", "image/jpeg"},
		{"/astronaut.png?format=auto", []string{"Accept", "text/html"}, "Accept", "image/png"},
		{"/variants/coffee.tif?format=auto", nil, "Accept", "image/jpeg"},
		{"/rocket.jpg?format=auto", []string{"Accept", "image/avif;q=0, image/webp"}, "Accept", "image/webp"},
		{"/rocket.jpg?size=100&format=auto", []string{"Accept", "image/webp"}, "Sec-CH-DPR, Accept", "image/webp"},
		{"/rocket.jpg?size=100&dpr=1&format=auto", []string{"Accept", "image/webp"}, "Accept", "image/webp"},
	}
	for _, c := range cases {
		t.Run(c.target+" "+strings.Join(c.headers, ":"), func(t *testing.T) {
			resp, body := ts.get(t, c.target, c.headers...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			h := resp.Header
			if h.Get("Vary") != c.vary {
				t.Errorf("Vary %q, want %q", h.Get("Vary"), c.vary)
			}
			if h.Get("Content-Type") != c.ctype {
				t.Errorf("Content-Type %q, want %q", h.Get("Content-Type"), c.ctype)
			}
			for k, v := range map[string]string{"Accept-CH": "Sec-CH-DPR", "X-Content-Type-Options": "nosniff",
				"Cache-Control": "public, max-age=31536000, no-transform"} {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			if h.Get("ETag") == "" || h.Get("Last-Modified") == "" {
				t.Error("ETag and Last-Modified are required")
			}
		})
	}
}

func TestDPRFromClientHint(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) { c.MaxBox = 500 })
	cases := []struct {
		name, target, hint string
		status, width      int
	}{
		{"hint doubles", "/rocket.jpg?size=100", "2", 200, 200},
		{"query wins over hint", "/rocket.jpg?size=100&dpr=1", "3", 200, 100},
		{"malformed hint ignored", "/rocket.jpg?size=100", "two", 200, 100},
		{"hint below 1 clamped", "/rocket.jpg?size=100", "0.25", 200, 100},
		{"hint above 10 clamped", "/rocket.jpg?size=40", "50", 200, 400},
		{"box capped at max size", "/rocket.jpg?size=300&dpr=2", "", 200, 500},
		{"hint with spaces", "/rocket.jpg?size=100", " 1.5 ", 200, 150},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hs []string
			if c.hint != "" {
				hs = []string{"Sec-CH-DPR", c.hint}
			}
			resp, body := ts.get(t, c.target, hs...)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := decodeInfo(t, body); got.width != c.width {
				t.Errorf("width %d, want %d", got.width, c.width)
			}
		})
	}
}

func TestBadParameters(t *testing.T) {
	ts := newTestServer(t, nil)
	cases := []struct{ query, param string }{
		{"size=0", "size"},
		{"size=-5", "size"},
		{"size=4001", "size"},
		{"size=abc", "size"},
		{"size=12.5", "size"},
		{"size=", "size"},
		{"size", "size"},
		{"size=100&size=200", "size"},
		{"size=1e3", "size"},
		{"size=%2B100", "size"},
		{"size=99999999999999999999", "size"},
		{"format=bmp", "format"},
		{"format=", "format"},
		{"format=webp&format=png", "format"},
		{"format=tiff", "format"},
		{"dpr=0.5", "dpr"},
		{"dpr=11", "dpr"},
		{"dpr=abc", "dpr"},
		{"dpr=NaN", "dpr"},
		{"dpr=Inf", "dpr"},
		{"dpr=0x2", "dpr"},
		{"dpr=", "dpr"},
		{"dpr=1&dpr=2", "dpr"},
		{"size=100&dpr=-2", "dpr"},
		{"resize_algorithm=bicubic", "resize_algorithm"},
		{"resize_algorithm=", "resize_algorithm"},
		{"size=100&resize_algorithm=auto&resize_algorithm=thumbnail", "resize_algorithm"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			resp, body := ts.get(t, "/rocket.jpg?"+c.query)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, body)
			}
			if msg := errorMessage(t, body); !strings.Contains(msg, c.param) {
				t.Errorf("message %q does not name %s", msg, c.param)
			}
			if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "public, max-age=60" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
}

func TestUnknownAndNonTransformParameters(t *testing.T) {
	ts := newTestServer(t, nil)
	file, _ := os.ReadFile(filepath.Join(ts.root, "rocket.jpg"))
	for _, q := range []string{"v=3", "dpr=2", "resize_algorithm=thumbnail", "SIZE=100", "utm_source=x&v=", "dpr=2&resize_algorithm=lanczos3"} {
		t.Run(q, func(t *testing.T) {
			resp, body := ts.get(t, "/rocket.jpg?"+q)
			if resp.StatusCode != 200 || !bytes.Equal(body, file) || resp.Header.Get("X-Cache-Status") != "BYPASS" {
				t.Fatalf("status %d, want untouched passthrough", resp.StatusCode)
			}
		})
	}
	resp, _ := ts.get(t, "/rocket.jpg?size=50&v=3&cb=1")
	if resp.StatusCode != 200 {
		t.Fatalf("unknown parameters broke a transform: %d", resp.StatusCode)
	}
}

func TestResizeAlgorithms(t *testing.T) {
	ts := newTestServer(t, nil)
	etags := map[string]bool{}
	for _, a := range []string{"auto", "lanczos3", "thumbnail", "THUMBNAIL"} {
		resp, body := ts.get(t, "/hubble_deep_field.jpg?size=123&resize_algorithm="+a)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", a, resp.StatusCode)
		}
		if got := decodeInfo(t, body); got.width != 123 {
			t.Errorf("%s: width %d", a, got.width)
		}
		etags[resp.Header.Get("ETag")] = true
	}
	if len(etags) != 3 {
		t.Errorf("want 3 distinct ETags for 3 algorithms, got %d", len(etags))
	}
}

func TestPathSafety(t *testing.T) {
	ts := newTestServer(t, nil)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.jpg"), []byte("\xff\xd8\xff secret"), 0o644)
	must(t, os.Symlink(filepath.Join(outside, "secret.jpg"), filepath.Join(ts.root, "escape.jpg")))
	must(t, os.Symlink(outside, filepath.Join(ts.root, "escapedir")))
	must(t, os.Symlink("rocket.jpg", filepath.Join(ts.root, "alias.jpg")))
	must(t, os.Symlink("variants", filepath.Join(ts.root, "linked")))
	must(t, os.WriteFile(filepath.Join(ts.root, ".hidden.jpg"), []byte("x"), 0o644))
	// A sibling directory sharing the root's name as a prefix.
	sibling := ts.root + "2"
	must(t, os.MkdirAll(sibling, 0o755))
	must(t, os.WriteFile(filepath.Join(sibling, "x.jpg"), []byte("\xff\xd8\xff"), 0o644))
	t.Cleanup(func() { os.RemoveAll(sibling) })
	sib := filepath.Base(sibling)

	notFound := []string{
		"/nope.jpg", "/variants", "/variants/", "/", "/.hidden.jpg", "/./rocket.jpg",
		"/../rocket.jpg", "/variants/../rocket.jpg", "/%2e%2e/rocket.jpg", "/%2E%2E%2Frocket.jpg",
		"/..%2frocket.jpg", "/..%5crocket.jpg", "/variants%5c..%5crocket.jpg", "/%00rocket.jpg",
		"/rocket.jpg%00.png", "/escape.jpg", "/escapedir/secret.jpg", "/%2fetc%2fpasswd",
		"/..%2f" + sib + "%2fx.jpg", "/../" + sib + "/x.jpg", "/%c0%ae%c0%ae/rocket.jpg",
		"/%252e%252e/rocket.jpg", "/" + strings.Repeat("a/", 600) + "x.jpg", "/.git/config",
		"/rocket.jpg/", "/rocket.jpg/x", "/variants//coffee.tif",
	}
	for _, p := range notFound {
		for _, q := range []string{"", "?size=10"} {
			t.Run(p+q, func(t *testing.T) {
				resp, body := ts.get(t, p+q)
				if resp.StatusCode != 404 {
					t.Fatalf("status %d, want 404", resp.StatusCode)
				}
				if msg := errorMessage(t, body); strings.Contains(msg, ts.root) || strings.Contains(msg, "/") {
					t.Errorf("message leaks a path: %q", msg)
				}
			})
		}
	}
	for _, p := range []string{"/alias.jpg", "/linked/coffee.tif", "/variants/badge.svg", "/alias.jpg?size=20"} {
		t.Run(p, func(t *testing.T) {
			if resp, body := ts.get(t, p); resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	if resp, _ := ts.get(t, "/%zz.jpg"); resp.StatusCode != 400 {
		t.Errorf("malformed escape: status %d, want 400", resp.StatusCode)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMethods(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		resp, body := ts.do(t, m, "/rocket.jpg")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d, Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
		errorMessage(t, body)
	}
}

func TestUnsupportedAndBrokenFiles(t *testing.T) {
	ts := newTestServer(t, nil)
	rocket, _ := os.ReadFile(filepath.Join(ts.root, "rocket.jpg"))
	files := map[string][]byte{
		"doc.jpg":       []byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"),
		"table.png":     []byte("1,2,3\n4,5,6\n"),
		"pixels.jpg":    []byte("P6\n2 2\n255\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		"page.svg":      []byte("<!DOCTYPE html><html><body><svg></svg></body></html>"),
		"empty.jpg":     {},
		"truncated.jpg": rocket[:len(rocket)/3],
		"bomb.png":      pngHeader(60000, 60000),
	}
	for name, b := range files {
		must(t, os.WriteFile(filepath.Join(ts.root, name), b, 0o644))
	}
	cases := []struct {
		target string
		status int
	}{
		{"/doc.jpg", 415}, {"/doc.jpg?size=10", 415},
		{"/table.png", 415}, {"/table.png?format=png", 415},
		{"/pixels.jpg", 415}, {"/pixels.jpg?size=10", 415},
		{"/page.svg", 415}, {"/page.svg?size=10", 415},
		{"/empty.jpg", 415}, {"/empty.jpg?size=10", 415},
		{"/truncated.jpg", 200}, {"/truncated.jpg?size=10", 422},
		{"/bomb.png?size=10", 422},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			before := processCPU()
			resp, body := ts.get(t, c.target)
			used := processCPU() - before
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.status >= 400 {
				msg := errorMessage(t, body)
				if strings.Contains(strings.ToLower(msg), "vips") || strings.Contains(msg, ts.root) {
					t.Errorf("message leaks internals: %q", msg)
				}
			}
			// Refusals come from the first bytes or the header: milliseconds
			// of CPU, where decoding the bomb's 3.6·10^9 pixels would take
			// minutes. CPU time does not grow on a shared machine.
			if used > time.Second {
				t.Errorf("used %v of CPU", used)
			}
		})
	}
}

func TestSourceByteLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) { c.MaxSourceBytes = 1000 })
	if resp, _ := ts.get(t, "/rocket.jpg?size=10"); resp.StatusCode != 422 {
		t.Errorf("transform of an oversized source: %d, want 422", resp.StatusCode)
	}
	if resp, _ := ts.get(t, "/rocket.jpg"); resp.StatusCode != 200 {
		t.Errorf("passthrough of an oversized source: %d, want 200", resp.StatusCode)
	}
}

func TestPixelLimit(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, _ *cache.Config, tc *transform.Config) { tc.MaxSourcePixels = 640 * 427 })
	if resp, _ := ts.get(t, "/rocket.jpg?size=10"); resp.StatusCode != 200 {
		t.Errorf("source at the limit: %d", resp.StatusCode)
	}
	if resp, _ := ts.get(t, "/hubble_deep_field.jpg?size=10"); resp.StatusCode != 422 {
		t.Errorf("source over the limit: %d, want 422", resp.StatusCode)
	}
}

func TestEmptyCacheControlSettings(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) {
		c.CacheControl, c.ErrorCacheControl = "", ""
	})
	for _, p := range []string{"/rocket.jpg", "/rocket.jpg?size=10", "/nope.jpg"} {
		resp, _ := ts.get(t, p)
		if _, ok := resp.Header["Cache-Control"]; ok {
			t.Errorf("%s: Cache-Control %q present, want absent", p, resp.Header.Get("Cache-Control"))
		}
	}
}

func TestETagChanges(t *testing.T) {
	base := newTestServer(t, nil)
	etag := func(ts *testServer, p string) string {
		resp, _ := ts.get(t, p)
		return resp.Header.Get("ETag")
	}
	p := "/rocket.jpg?size=100&format=webp"
	first := etag(base, p)
	if first != etag(base, p) {
		t.Fatal("ETag not stable")
	}
	other := newTestServer(t, func(_ *Config, _ *cache.Config, tc *transform.Config) { tc.WebPQuality = 50 })
	if etag(other, p) == first {
		t.Error("ETag did not change with the WebP quality")
	}
	// Replace the file with different bytes of the same size and mtime.
	path := filepath.Join(base.root, "rocket.jpg")
	fi, _ := os.Stat(path)
	passBefore := etag(base, "/rocket.jpg")
	b, _ := os.ReadFile(filepath.Join(base.root, "coffee-progressive.jpg"))
	tmp := path + ".new"
	must(t, os.WriteFile(tmp, append(b, make([]byte, max(0, int(fi.Size())-len(b)))...)[:fi.Size()], 0o644))
	must(t, os.Chtimes(tmp, fi.ModTime(), fi.ModTime()))
	must(t, os.Rename(tmp, path))
	base.waitUntrusted(t, "rocket.jpg")
	if etag(base, p) == first {
		t.Error("transform ETag did not change when the file was replaced (same size and mtime)")
	}
	if etag(base, "/rocket.jpg") == passBefore {
		t.Error("passthrough ETag did not change when the file was replaced")
	}
}

func TestStripPath(t *testing.T) {
	for _, setting := range []string{"static/image/", "/static/image", "static/image"} {
		ts := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) { c.StripPath = setting })
		for _, c := range []struct {
			path   string
			status int
		}{
			{"/static/image/rocket.jpg", 200},
			{"/static/image/rocket.jpg?size=20", 200},
			{"/rocket.jpg", 200},
			{"/static/image/variants/badge.svg", 200},
			{"/static/imagerocket.jpg", 404},
			{"/static/image/../rocket.jpg", 404},
			{"/health", 200},
			{"/metrics", 200},
		} {
			if resp, _ := ts.get(t, c.path); resp.StatusCode != c.status {
				t.Errorf("strip %q: %s: %d, want %d", setting, c.path, resp.StatusCode, c.status)
			}
		}
	}
}

func TestHealth(t *testing.T) {
	ts := newTestServer(t, nil)
	resp, body := ts.get(t, "/health")
	var h struct {
		Status  string `json:"status"`
		Version string `json:"version"`
		Libvips string `json:"libvips"`
		Uptime  *int64 `json:"uptime_seconds"`
	}
	if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if h.Status != "ok" || h.Version != "test" || !strings.HasPrefix(h.Libvips, "8.") || h.Uptime == nil {
		t.Errorf("health %+v", h)
	}
}

func TestQueueFullGives503(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) {
		c.Concurrency, c.QueueDepth, c.QueueTimeout = 1, 0, 50*time.Millisecond
	})
	release, err := ts.limiter.acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	resp, body := ts.get(t, "/rocket.jpg?size=33")
	release()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	errorMessage(t, body)
	if n := testutil.ToFloat64(ts.m.QueueRejections); n != 1 {
		t.Errorf("rejections = %v, want 1", n)
	}
	if resp, _ := ts.get(t, "/rocket.jpg?size=33"); resp.StatusCode != 200 {
		t.Errorf("after release: %d, and the error must not have been cached", resp.StatusCode)
	}
}

func TestCacheStatusAndMetrics(t *testing.T) {
	ts := newTestServer(t, nil)
	for i, want := range []string{"MISS", "HIT-MEMORY", "HIT-MEMORY"} {
		resp, _ := ts.get(t, "/coffee.png?size=64&format=webp")
		if got := resp.Header.Get("X-Cache-Status"); got != want {
			t.Errorf("request %d: X-Cache-Status %q, want %q", i, got, want)
		}
	}
	ts.get(t, "/rocket.jpg")
	ts.get(t, "/nope.jpg")
	for _, c := range []struct {
		code, kind string
		want       float64
	}{{"200", "transform", 3}, {"200", "passthrough", 1}, {"404", "error", 1}} {
		if got := testutil.ToFloat64(ts.m.HTTPRequests.WithLabelValues(c.code, c.kind)); got != c.want {
			t.Errorf("requests{%s,%s} = %v, want %v", c.code, c.kind, got, c.want)
		}
	}
	if got := testutil.ToFloat64(ts.m.Transforms.WithLabelValues("webp", "ok", "live")); got != 1 {
		t.Errorf("transforms{webp,ok,live} = %v, want 1", got)
	}
}

func TestCacheDisabledBypasses(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, c *cache.Config, _ *transform.Config) { c.Enabled = false })
	for range 2 {
		resp, _ := ts.get(t, "/coffee.png?size=64")
		if got := resp.Header.Get("X-Cache-Status"); got != "BYPASS" {
			t.Errorf("X-Cache-Status %q, want BYPASS", got)
		}
	}
}

// pngHeader is a PNG signature and IHDR declaring w×h with no pixel data.
func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	b = append(b, byte(w>>24), byte(w>>16), byte(w>>8), byte(w), byte(h>>24), byte(h>>16), byte(h>>8), byte(h), 8, 2, 0, 0, 0)
	crc := crc32IEEE(b[12:])
	return append(b, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
}

func TestTransformHEAD(t *testing.T) {
	ts := newTestServer(t, nil)
	_, body := ts.get(t, "/rocket.jpg?size=120&format=png")
	resp, headBody := ts.do(t, http.MethodHead, "/rocket.jpg?size=120&format=png")
	if resp.StatusCode != 200 || len(headBody) != 0 || resp.ContentLength != int64(len(body)) {
		t.Fatalf("HEAD: %d, %d body bytes, Content-Length %d (GET had %d)", resp.StatusCode, len(headBody), resp.ContentLength, len(body))
	}
	if resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("X-Cache-Status") != "HIT-MEMORY" {
		t.Errorf("headers %v", resp.Header)
	}
}

// TestMetricLabelsAreBounded: thousands of distinct paths and queries must
// not create a single new series.
func TestMetricLabelsAreBounded(t *testing.T) {
	ts := newTestServer(t, nil)
	series := func() int {
		fams, err := ts.m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range fams {
			if strings.HasPrefix(f.GetName(), "image_proxy_") {
				n += len(f.GetMetric())
			}
		}
		return n
	}
	warm := func(i int) {
		ts.get(t, fmt.Sprintf("/missing-%d.jpg", i))
		ts.get(t, fmt.Sprintf("/rocket.jpg?v=%d", i))
		ts.get(t, fmt.Sprintf("/rocket.jpg?size=%d", i+1))
		ts.get(t, fmt.Sprintf("/dir%d/x.png?size=abc%d", i, i))
	}
	for i := range 5 {
		warm(i)
	}
	before := series()
	for i := 5; i < 300; i++ {
		warm(i)
	}
	if after := series(); after != before {
		t.Errorf("series grew from %d to %d with distinct paths", before, after)
	}
}
