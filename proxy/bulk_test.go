package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"image-proxy/cache"
	"image-proxy/transform"
)

// bulkPart is one decoded part of a bulk answer.
type bulkPart struct {
	header textproto.MIMEHeader
	body   []byte
}

func (p bulkPart) get(k string) string {
	return p.header.Get(k)
}

// readParts decodes a multipart/mixed answer with the standard reader.
func readBulkParts(t testing.TB, contentType string, body io.Reader) []bulkPart {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q", contentType)
	}
	mr := multipart.NewReader(body, params["boundary"])
	var parts []bulkPart
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Fatalf("part %d: %v", len(parts), err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("part %d body: %v", len(parts), err)
		}
		parts = append(parts, bulkPart{header: p.Header, body: b})
	}
}

// TestBulk20Items: twenty items of every kind, each part decoded and
// checked in request order: image, dimensions, headers, failed items.
func TestBulk20Items(t *testing.T) {
	ts := newTestServer(t, nil)
	type want struct {
		status        int
		format        string
		width, height int
	}
	items := []struct {
		item string
		want want
	}{
		{`{"path":"rocket.jpg","size":100}`, want{200, "jpeg", 100, 67}},
		{`{"path":"rocket.jpg","size":"100","format":"webp"}`, want{200, "webp", 100, 67}},
		{`{"path":"rocket.jpg","size":50,"dpr":2,"format":"png"}`, want{200, "png", 100, 67}},
		{`{"path":"rocket.jpg","size":64,"format":"avif"}`, want{200, "avif", 64, 43}},
		{`{"path":"missing.jpg","size":64}`, want{404, "", 0, 0}},
		{`{"path":"coffee.png","size":80}`, want{200, "png", 80, 0}},
		{`{"path":"/coffee.avif","size":40,"format":"jpeg"}`, want{200, "jpeg", 40, 0}},
		{`{"path":"astronaut.png","size":32,"format":"gif"}`, want{200, "gif", 32, 0}},
		{`{"path":"variants/coffee.tif","size":48}`, want{200, "jpeg", 48, 0}},
		{`{"path":"variants/badge.svg","size":30,"format":"png"}`, want{200, "png", 30, 0}},
		{`{"path":"../etc/passwd","size":10}`, want{404, "", 0, 0}},
		{`{"path":"broken.jpg","size":10}`, want{422, "", 0, 0}},
		{`{"path":"doc.jpg","size":10}`, want{415, "", 0, 0}},
		{`{"path":"rocket-exif-orientation-6.jpg","size":100,"format":"webp"}`, want{200, "webp", 0, 100}},
		{`{"path":"rocket.jpg","size":100}`, want{200, "jpeg", 100, 67}},
		{`{"path":"rocket.jpg","format":"webp","resize_algorithm":"thumbnail"}`, want{200, "webp", 640, 427}},
		{`{"path":"hubble_deep_field.jpg","size":120,"format":"webp"}`, want{200, "webp", 120, 0}},
		{`{"path":"coffee-progressive.jpg","size":90,"dpr":null}`, want{200, "jpeg", 90, 0}},
		{`{"path":"rocket%2Ejpg","size":20}`, want{200, "jpeg", 20, 13}},
		{`{"path":"astronaut-animated.gif","size":50}`, want{200, "gif", 50, 0}},
	}
	rocket := readData(t, "rocket.jpg")
	must(t, writeRootFile(ts.root, "broken.jpg", rocket[:len(rocket)/3]))
	must(t, writeRootFile(ts.root, "doc.jpg", []byte("%PDF-1.4\n%%EOF\n")))
	var list []string
	for _, it := range items {
		list = append(list, it.item)
	}
	resp, body := ts.post(t, "/bulk", []byte("["+strings.Join(list, ",")+"]"), "Content-Type", "application/json")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v: %.200s", resp.StatusCode, resp.Header, body)
	}
	parts := readBulkParts(t, resp.Header.Get("Content-Type"), strings.NewReader(string(body)))
	if len(parts) != len(items) {
		t.Fatalf("%d parts for %d items", len(parts), len(items))
	}
	for i, p := range parts {
		w := items[i].want
		checkBulkPart(t, i, p, w.status, w.format, w.width, w.height)
	}
	// Item 14 repeats item 0: the same ETag, served from the cache.
	if parts[14].get("ETag") != parts[0].get("ETag") || parts[14].get("X-Cache-Status") != "HIT-MEMORY" {
		t.Errorf("repeated item: ETag %q vs %q, cache %q", parts[14].get("ETag"), parts[0].get("ETag"), parts[14].get("X-Cache-Status"))
	}
	// And a GET of the same variant agrees with the bulk part.
	getResp, getBody := ts.get(t, "/rocket.jpg?size=100")
	if getResp.Header.Get("ETag") != parts[0].get("ETag") || string(getBody) != string(parts[0].body) {
		t.Errorf("GET and bulk differ: ETag %q vs %q", getResp.Header.Get("ETag"), parts[0].get("ETag"))
	}
}

func writeRootFile(root, name string, b []byte) error {
	return os.WriteFile(filepath.Join(root, name), b, 0o644)
}

// checkBulkPart checks one part's headers and decodes its body.
func checkBulkPart(t *testing.T, i int, p bulkPart, status int, format string, w, h int) {
	t.Helper()
	if got := p.get("X-Item-Status"); got != strconv.Itoa(status) {
		t.Errorf("part %d: X-Item-Status %q, want %d: %.200s", i, got, status, p.body)
		return
	}
	if p.get("X-Item-Index") != strconv.Itoa(i) || p.get("Content-Length") != strconv.Itoa(len(p.body)) || p.get("X-Cache-Status") == "" {
		t.Errorf("part %d: headers %v (body %d bytes)", i, p.header, len(p.body))
	}
	if status != 200 {
		var e struct{ Error string }
		if json.Unmarshal(p.body, &e) != nil || e.Error == "" || p.get("Content-Type") != "application/json" || p.get("ETag") != "" {
			t.Errorf("part %d: error part %v %q", i, p.header, p.body)
		}
		return
	}
	info := decodeInfo(t, p.body)
	if info.format != format || (w > 0 && info.width != w) || (h > 0 && info.height != h) {
		t.Errorf("part %d: %s %dx%d, want %s %dx%d", i, info.format, info.width, info.height, format, w, h)
	}
	if p.get("Content-Type") != "image/"+format || !strings.HasPrefix(p.get("ETag"), `"`) {
		t.Errorf("part %d: headers %v", i, p.header)
	}
}

// TestBulkRefusals: malformed bodies and items are a 400 naming the index.
func TestBulkRefusals(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) { c.Backend.BulkMaxItems = 3 })
	ok := `{"path":"rocket.jpg","size":10}`
	cases := []struct {
		name, body string
		status     int
		inMsg      string
	}{
		{"not JSON", `hello`, 400, "JSON array"},
		{"object, not array", `{"path":"rocket.jpg"}`, 400, "JSON array"},
		{"truncated", `[` + ok + `,{"path":`, 400, "item 1"},
		{"empty array", `[]`, 400, "at least one item"},
		{"trailing garbage", `[` + ok + `] x`, 400, "nothing after it"},
		{"too many items", `[` + strings.Repeat(ok+",", 3) + ok + `]`, 400, "item 3: a bulk request takes at most 3 items"},
		{"item not an object", `[` + ok + `, 5]`, 400, "item 1: not a JSON object"},
		{"missing path", `[{"size":10}]`, 400, "item 0: path must be a non-empty string"},
		{"path not a string", `[{"path":5,"size":10}]`, 400, "item 0: path must be"},
		{"unknown field", `[` + ok + `,{"path":"a.jpg","sise":10}]`, 400, `item 1: unknown field "sise"`},
		{"size an object", `[{"path":"a.jpg","size":{}}]`, 400, "item 0: size must be a string or a number"},
		{"size a bool", `[{"path":"a.jpg","size":true}]`, 400, "item 0: size must be a string or a number"},
		{"bad size", `[` + ok + `,` + ok + `,{"path":"a.jpg","size":0}]`, 400, "item 2: size must be a whole number from 1 to 4000"},
		{"size exponent", `[{"path":"a.jpg","size":1e2}]`, 400, "item 0: size must be a whole number"},
		{"bad format", `[{"path":"a.jpg","format":"bmp"}]`, 400, "item 0: format must be one of"},
		{"bad dpr", `[{"path":"a.jpg","size":10,"dpr":11}]`, 400, "item 0: dpr must be"},
		{"empty format", `[{"path":"a.jpg","size":10,"format":""}]`, 400, "item 0: format must not be empty"},
		{"no transform", `[{"path":"a.jpg","dpr":2}]`, 400, "item 0: a bulk item needs size, format, quality, preset or a shape parameter"},
		{"bad escape", `[{"path":"a%zz.jpg","size":10}]`, 400, "item 0: path has malformed percent-encoding"},
		{"over the body cap", `[` + `{"path":"` + strings.Repeat("a", 3*bulkItemBytes) + `","size":1}]`, 413, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.post(t, "/bulk", []byte(c.body), "Content-Type", "application/json")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if msg := errorMessage(t, body); !strings.Contains(msg, c.inMsg) {
				t.Errorf("message %q lacks %q", msg, c.inMsg)
			}
		})
	}
}

// gatedEngine is the real engine behind a gate: each render waits until
// the test lets one through or its context ends.
type gatedEngine struct {
	Engine
	gate    chan struct{}
	started atomic.Int64
}

func (g *gatedEngine) Render(ctx context.Context, src []byte, opts transform.Options) (transform.Result, error) {
	g.started.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return transform.Result{}, &transform.Error{Kind: transform.KindCanceled, Err: ctx.Err()}
	}
	return g.Engine.Render(ctx, src, opts)
}

// bulkGoroutines counts goroutines running this file's bulk code.
func bulkGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	count := 0
	for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "proxy.(*bulkRun)") || strings.Contains(g, "proxy.(*Server).renderItem") {
			count++
		}
	}
	return count
}

// TestBulkClientDisconnects: a client that reads the first part and hangs
// up stops the rest: no further renders start, and every goroutine of the
// bulk ends.
func TestBulkClientDisconnects(t *testing.T) {
	// One slot: item 0 renders alone, the next waits at the gate.
	ts := newTestServer(t, func(c *Config, _ *cache.Config, _ *transform.Config) { c.Concurrency = 1 })
	g := &gatedEngine{Engine: ts.engine, gate: make(chan struct{})}
	ts.engine = g
	ln := ts.serve(t)

	const n = 20
	var items []string
	for i := range n {
		items = append(items, fmt.Sprintf(`{"path":"rocket.jpg","size":%d}`, 10+i))
	}
	body := "[" + strings.Join(items, ",") + "]"
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), hangGuard)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	must(t, conn.SetDeadline(time.Now().Add(hangGuard)))
	_, err = fmt.Fprintf(conn, "POST /bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	must(t, err)
	// Let exactly one render through: item 0 (the answer's head is sent
	// with its first part).
	go func() {
		select {
		case g.gate <- struct{}{}:
		case <-time.After(hangGuard):
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	mr := multipart.NewReader(resp.Body, boundaryParam(t, resp.Header.Get("Content-Type")))
	p, err := mr.NextPart()
	must(t, err)
	if p.Header.Get("X-Item-Status") != "200" || p.Header.Get("X-Item-Index") != "0" {
		t.Fatalf("first part: %v", p.Header)
	}
	conn.Close() // hang up with 19 items to go

	eventually(t, "bulk goroutines to end", func() bool { return bulkGoroutines() == 0 })
	// Renders started: item 0, and item 1 that was waiting at the gate
	// when the client left; none of the 18 others.
	if s := g.started.Load(); s > 2 {
		t.Errorf("%d renders started after the client left", s)
	}
}

func boundaryParam(t *testing.T, ct string) string {
	t.Helper()
	_, params, err := mime.ParseMediaType(ct)
	if err != nil || params["boundary"] == "" {
		t.Fatalf("Content-Type %q", ct)
	}
	return params["boundary"]
}
