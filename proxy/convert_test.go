package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/cache"
	"image-proxy/imageformat"
	"image-proxy/transform"
)

const testToken = "0123456789abcdef0123456789abcdef"

func withConvert(c *Config, _ *cache.Config, _ *transform.Config) { c.Backend.ConvertToken = testToken }

// formPart is one part of a multipart body: a file when file is set.
type formPart struct {
	name, value string
	file        []byte
}

func multipartBody(t testing.TB, parts ...formPart) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var err error
		if p.file != nil {
			var w io.Writer
			if w, err = mw.CreateFormFile(p.name, "upload.bin"); err == nil {
				_, err = w.Write(p.file)
			}
		} else {
			err = mw.WriteField(p.name, p.value)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// post sends a POST through app.Test; headers are name, value pairs.
func (ts *testServer) post(t testing.TB, target string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.App().Test(req, int(hangGuard/time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (ts *testServer) convert(t testing.TB, parts ...formPart) (*http.Response, []byte) {
	t.Helper()
	body, ct := multipartBody(t, parts...)
	return ts.post(t, "/convert", body, "Authorization", "Bearer "+testToken, "Content-Type", ct)
}

func readData(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../data/images", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConvert: each output format and bound, decoded and checked.
func TestConvert(t *testing.T) {
	ts := newTestServer(t, withConvert)
	rocket := readData(t, "rocket.jpg") // 640×427
	cases := []struct {
		fields        []formPart
		src           []byte
		format        string
		width, height int
	}{
		{nil, rocket, "webp", 640, 427},
		{[]formPart{{name: "format", value: "avif"}, {name: "width", value: "320"}}, rocket, "avif", 320, 214},
		{[]formPart{{name: "format", value: "JPEG"}, {name: "height", value: "100"}}, rocket, "jpeg", 150, 100},
		{[]formPart{{name: "format", value: "png"}, {name: "width", value: "100"}, {name: "height", value: "100"}}, rocket, "png", 100, 67},
		{[]formPart{{name: "width", value: "2000"}, {name: "height", value: "2000"}}, rocket, "webp", 640, 427},
		{[]formPart{{name: "quality", value: "30"}, {name: "format", value: "jpg"}}, rocket, "jpeg", 640, 427},
		{[]formPart{{name: "format", value: "webp"}, {name: "width", value: "50"}}, readData(t, "astronaut.png"), "webp", 50, 0},
		{[]formPart{{name: "format", value: "jpeg"}, {name: "width", value: "64"}}, readData(t, "variants/coffee.tif"), "jpeg", 64, 0},
		{[]formPart{{name: "ignored", value: "x"}, {name: "height", value: "40"}}, rocket, "webp", 60, 40},
	}
	for i, c := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			resp, body := ts.convert(t, append([]formPart{{name: "file", file: c.src}}, c.fields...)...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			info := decodeInfo(t, body)
			if info.format != c.format || info.width != c.width || (c.height > 0 && info.height != c.height) {
				t.Fatalf("got %s %dx%d, want %s %dx%d", info.format, info.width, info.height, c.format, c.width, c.height)
			}
			h := resp.Header
			if h.Get("Content-Type") != "image/"+c.format || h.Get("Cache-Control") != "no-store" ||
				h.Get("Content-Length") != strconv.Itoa(len(body)) || h.Get("ETag") != "" || h.Get("X-Cache-Status") != "" {
				t.Errorf("headers %v", h)
			}
		})
	}
	if n := testutil.ToFloat64(ts.m.HTTPRequests.WithLabelValues("200", "convert")); n != float64(len(cases)) {
		t.Errorf("convert 200s counted %v, want %d", n, len(cases))
	}
}

// TestConvertQualityChangesBytes: a lower quality gives a smaller file.
func TestConvertQualityChangesBytes(t *testing.T) {
	ts := newTestServer(t, withConvert)
	rocket := readData(t, "rocket.jpg")
	_, low := ts.convert(t, formPart{name: "file", file: rocket}, formPart{name: "quality", value: "5"})
	_, high := ts.convert(t, formPart{name: "file", file: rocket}, formPart{name: "quality", value: "100"})
	if decodeInfo(t, low).format != "webp" || len(low) >= len(high) {
		t.Errorf("quality 5: %d bytes, quality 100: %d", len(low), len(high))
	}
}

// TestConvertErrors: every refusal, its status, headers and message.
func TestConvertErrors(t *testing.T) {
	ts := newTestServer(t, func(c *Config, cc *cache.Config, tc *transform.Config) {
		withConvert(c, cc, tc)
		tc.MaxSourcePixels = 640 * 427
		c.Backend.ConvertMaxBytes = 1 << 20
	})
	rocket := readData(t, "rocket.jpg")
	file := formPart{name: "file", file: rocket}
	ok, okType := multipartBody(t, file)
	bearer := "Bearer " + testToken
	with := func(parts ...formPart) []byte {
		b, _ := multipartBody(t, append([]formPart{file}, parts...)...)
		return b
	}
	only := func(parts ...formPart) []byte { b, _ := multipartBody(t, parts...); return b }
	field := func(name, value string) formPart { return formPart{name: name, value: value} }
	cases := []struct {
		name     string
		body     []byte
		headers  []string
		status   int
		inMsg    string
		wantAuth bool
	}{
		{"no token", ok, []string{"Content-Type", okType}, 401, "bearer token", true},
		{"wrong token", ok, []string{"Authorization", "Bearer wrong-token-0123456789", "Content-Type", okType}, 401, "", true},
		{"token prefix", ok, []string{"Authorization", "Bearer " + testToken[:20], "Content-Type", okType}, 401, "", true},
		{"basic scheme", ok, []string{"Authorization", "Basic " + testToken, "Content-Type", okType}, 401, "", true},
		{"not multipart", []byte(`{"file":"x"}`), []string{"Authorization", bearer, "Content-Type", "application/json"}, 415, "multipart/form-data", false},
		{"no boundary", ok, []string{"Authorization", bearer, "Content-Type", "multipart/form-data"}, 415, "multipart/form-data", false},
		{"no content type", ok, []string{"Authorization", bearer}, 415, "multipart/form-data", false},
		{"missing file", only(field("format", "webp")), nil, 400, "file is required", false},
		{"empty file", only(formPart{name: "file", file: []byte{}}), nil, 400, "file must not be empty", false},
		{"two files", with(file), nil, 400, "file must be given only once", false},
		{"bad format", with(field("format", "bmp")), nil, 400, "format must be one of webp, avif, jpeg or png", false},
		{"gif format", with(field("format", "gif")), nil, 400, "format must be one of", false},
		{"quality 0", with(field("quality", "0")), nil, 400, "quality must be a whole number from 1 to 100", false},
		{"quality 101", with(field("quality", "101")), nil, 400, "quality must be", false},
		{"quality text", with(field("quality", "high")), nil, 400, "quality must be", false},
		{"width 0", with(field("width", "0")), nil, 400, "width must be a whole number from 1 to 4000", false},
		{"width negative", with(field("width", "-5")), nil, 400, "width must be", false},
		{"width decimal", with(field("width", "1.5")), nil, 400, "width must be", false},
		{"width over max", with(field("width", "4001")), nil, 400, "width must be", false},
		{"height text", with(field("height", "tall")), nil, 400, "height must be", false},
		{"repeated width", with(field("width", "10"), field("width", "20")), nil, 400, "width must be given only once", false},
		{"malformed multipart", []byte("--XYZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"), []string{"Authorization", bearer, "Content-Type", "multipart/form-data; boundary=XYZ"}, 400, "multipart", false},
		{"not an image", only(formPart{name: "file", file: []byte("%PDF-1.4\n%%EOF\n")}), nil, 415, "not an image type", false},
		{"corrupt image", only(formPart{name: "file", file: rocket[:len(rocket)/3]}), nil, 422, "corrupt", false},
		{"over the cap", only(formPart{name: "file", file: bytes.Repeat([]byte{0xff}, 1<<20)}), nil, 413, "larger than 1048576 bytes", false},
		{"too many pixels", only(formPart{name: "file", file: readData(t, "hubble_deep_field.jpg")}), nil, 422, "pixels", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := c.headers
			if headers == nil {
				headers = []string{"Authorization", bearer, "Content-Type", "multipart/form-data; boundary=" + boundaryOf(c.body)}
			}
			resp, body := ts.post(t, "/convert", c.body, headers...)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if msg := errorMessage(t, body); !strings.Contains(msg, c.inMsg) {
				t.Errorf("message %q lacks %q", msg, c.inMsg)
			}
			if got := resp.Header.Get("WWW-Authenticate"); (got == "Bearer") != c.wantAuth {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// boundaryOf reads the boundary a multipart body starts with.
func boundaryOf(body []byte) string {
	line, _, _ := bytes.Cut(body, []byte("\r\n"))
	return strings.TrimPrefix(string(line), "--")
}

func TestConvertDisabledIs404(t *testing.T) {
	ts := newTestServer(t, nil)
	body, ct := multipartBody(t, formPart{name: "file", file: readData(t, "rocket.jpg")})
	resp, b := ts.post(t, "/convert", body, "Authorization", "Bearer anything", "Content-Type", ct)
	if resp.StatusCode != 404 || !strings.Contains(errorMessage(t, b), "not enabled") {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
}

func TestConvertSlotsFullIs503(t *testing.T) {
	ts := newTestServer(t, func(c *Config, cc *cache.Config, tc *transform.Config) {
		withConvert(c, cc, tc)
		c.Concurrency, c.QueueDepth = 1, 0
	})
	release, err := ts.limiter.acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	resp, body := ts.convert(t, formPart{name: "file", file: readData(t, "rocket.jpg")})
	release()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v: %s", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := ts.convert(t, formPart{name: "file", file: readData(t, "rocket.jpg")}); resp.StatusCode != 200 {
		t.Errorf("after release: %d", resp.StatusCode)
	}
}

// countingListener counts the bytes the server reads from its connections.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

// SyscallConn keeps the socket reachable for the hang-up check (peer.go).
func (c *countingConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// serve runs the app on a real loopback listener that counts what it reads.
func (ts *testServer) serve(t *testing.T) *countingListener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	done := make(chan error, 1)
	go func() { done <- ts.App().Listener(ln) }()
	t.Cleanup(func() {
		_ = ts.App().ShutdownWithTimeout(hangGuard)
		receive(t, "server stop", done)
	})
	return ln
}

// TestConvertCapWhileStreaming: an upload far over the cap, sent chunked
// (no Content-Length to refuse it by) and with a Content-Length, is refused
// 413 long before the client has sent it all, and the server stops reading.
func TestConvertCapWhileStreaming(t *testing.T) {
	const capBytes = 256 << 10
	ts := newTestServer(t, func(c *Config, cc *cache.Config, tc *transform.Config) {
		withConvert(c, cc, tc)
		c.Backend.ConvertMaxBytes = capBytes
	})
	ln := ts.serve(t)
	const total = 64 << 20 // what the client would send: 256 × the cap
	for _, chunked := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunked=%t", chunked), func(t *testing.T) {
			before := ln.read.Load()
			status, sent := uploadUntilAnswered(t, ln.Addr().String(), total, chunked)
			if status != 413 {
				t.Fatalf("status %d, want 413", status)
			}
			read := ln.read.Load() - before
			// The server read the cap and little more (socket buffers
			// aside, what the client managed to push is not read).
			if read > capBytes+256<<10 {
				t.Errorf("server read %d bytes for a cap of %d", read, capBytes)
			}
			if sent >= total {
				t.Errorf("the client sent all %d bytes before the answer", sent)
			}
			t.Logf("server read %d bytes, client sent %d of %d", read, sent, total)
		})
	}
}

// uploadUntilAnswered writes a multipart upload of total bytes on a raw
// connection, stopping as soon as the server answers (or stops reading);
// it returns the status and how many body bytes were written.
func uploadUntilAnswered(t *testing.T, addr string, total int, chunked bool) (int, int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, hangGuard)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	must(t, conn.SetDeadline(time.Now().Add(hangGuard)))
	head := "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n"
	req := "POST /convert HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testToken + "\r\nContent-Type: multipart/form-data; boundary=B\r\n"
	if chunked {
		req += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		req += "Content-Length: " + strconv.Itoa(total) + "\r\n\r\n"
	}
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{'x'}, 32<<10)
	sent := 0
	for sent < total {
		select {
		case status := <-answered:
			return status, sent
		default:
		}
		var b []byte
		if sent == 0 {
			b = append([]byte(head), chunk[len(head):]...)
		} else {
			b = chunk
		}
		if chunked {
			b = append(append([]byte(strconv.FormatInt(int64(len(b)), 16)+"\r\n"), b...), "\r\n"...)
		}
		if _, err := conn.Write(b); err != nil {
			break // the server closed the connection: the answer is in flight
		}
		sent += len(chunk)
	}
	return receive(t, "the answer", answered), sent
}

// TestConvertFormatsFollowTheTable: POST /convert takes every output of
// the format table but GIF, by each of its names in any case, makes WebP
// without a format field, and its refusal names exactly what it takes,
// the default first.
func TestConvertFormatsFollowTheTable(t *testing.T) {
	if opts, err := parseConvert(map[string]string{}, 4000); err != nil || opts.Format != imageformat.WebP {
		t.Fatalf("no format: %s, %v; want webp", opts.Format, err)
	}
	var offered []string
	for f := range imageformat.Count {
		wantOK := f.CanEncode() && f != imageformat.GIF
		if wantOK {
			offered = append(offered, f.String())
		}
		for _, name := range append([]string{f.String(), strings.ToUpper(f.String())}, f.Aliases()...) {
			opts, err := parseConvert(map[string]string{"format": name}, 4000)
			if wantOK && (err != nil || opts.Format != f) {
				t.Errorf("format=%s: %s, %v; want %s", name, opts.Format, err, f)
			}
			if !wantOK && err == nil {
				t.Errorf("format=%s: taken, but /convert does not offer %s", name, f)
			}
		}
	}
	_, err := parseConvert(map[string]string{"format": "gif"}, 4000)
	const prefix = "format must be one of "
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.HasSuffix(err.Error(), ".") {
		t.Fatalf("format=gif: %v", err)
	}
	listed := strings.Split(strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(err.Error(), prefix), "."), " or ", ", "), ", ")
	if listed[0] != "webp" || !slices.Equal(slices.Sorted(slices.Values(listed)), slices.Sorted(slices.Values(offered))) {
		t.Errorf("refusal %q lists %v; /convert takes %v, webp first", err, listed, offered)
	}
}
