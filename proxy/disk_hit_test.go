package proxy

import (
	"bufio"
	"bytes"
	"context"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/cache"
	"image-proxy/transform"
)

// fileCache is the server's cache, counting the hits Open hands out as
// files: what the disk tier reported, not a guess from the outside.
type fileCache struct {
	cache.Cache
	files atomic.Int64
}

func (c *fileCache) Open(ctx context.Context, key string, head int) (cache.Hit, cache.Status, bool) {
	h, st, ok := c.Cache.Open(ctx, key, head)
	if h.File != nil {
		c.files.Add(1)
	}
	return h, st, ok
}

// diskHits is a test server on a plain loopback listener (so a file body
// can reach sendfile) whose hits all come from disk, the directory of its
// entries and a client of its own.
type diskHits struct {
	ts     *testServer
	c      *fileCache
	dir    string
	base   string
	client *http.Client
}

func newDiskHits(t *testing.T) *diskHits {
	t.Helper()
	dir := t.TempDir()
	ts := newTestServer(t, func(_ *Config, cc *cache.Config, _ *transform.Config) {
		cc.DiskEnabled, cc.DiskPath, cc.DiskSize, cc.MaxItemSize = true, dir, 64<<20, 1
	})
	c := &fileCache{Cache: ts.cache}
	ts.cache = c
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.App().Listener(ln) }()
	client := &http.Client{Transport: &http.Transport{}, Timeout: hangGuard}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		_ = ts.App().ShutdownWithTimeout(hangGuard)
		receive(t, "server stop", done)
	})
	return &diskHits{ts: ts, c: c, dir: dir, base: "http://" + ln.Addr().String(), client: client}
}

// do sends one request and reads the whole answer.
func (d *diskHits) do(t *testing.T, method, uri string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, d.base+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// warm renders uri, backdates its entry (as one written earlier, so that a
// rewrite now is told from it by its time whatever the clock's
// granularity), and has its first disk hit check it: the next hits are
// sent as files. It returns the rendered body and the entry's path.
func (d *diskHits) warm(t *testing.T, uri string) ([]byte, string) {
	t.Helper()
	resp, body := d.do(t, http.MethodGet, uri)
	if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("render: %d %s", resp.StatusCode, resp.Header.Get("X-Cache-Status"))
	}
	files, _ := filepath.Glob(filepath.Join(d.dir, "*", "*", "????????????????-*"))
	if len(files) != 1 {
		t.Fatalf("%d entry files, want 1", len(files))
	}
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(files[0], past, past); err != nil {
		t.Fatal(err)
	}
	before := d.c.files.Load()
	if resp, got := d.do(t, http.MethodGet, uri); resp.Header.Get("X-Cache-Status") != "HIT-DISK" || !bytes.Equal(got, body) {
		t.Fatalf("first disk hit: %s, %d bytes", resp.Header.Get("X-Cache-Status"), len(got))
	}
	if d.c.files.Load() != before {
		t.Fatal("the first disk hit was sent as a file, unchecked")
	}
	return body, files[0]
}

func TestDiskHitIsSentFromTheFile(t *testing.T) {
	for _, c := range []struct {
		box   int
		large bool // over fasthttp's 8 KB: sendfile; else read into its write buffer
	}{{600, true}, {100, false}} {
		uri := "/rocket.jpg?size=" + strconv.Itoa(c.box) + "&format=jpeg"
		t.Run(uri, func(t *testing.T) {
			d := newDiskHits(t)
			body, _ := d.warm(t, uri)
			if large := len(body) > 8<<10; large != c.large {
				t.Fatalf("%d bytes: pick another size", len(body))
			}
			before := d.c.files.Load()
			resp, got := d.do(t, http.MethodGet, uri)
			if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "HIT-DISK" || d.c.files.Load() != before+1 {
				t.Fatalf("%d %s, %d file hits", resp.StatusCode, resp.Header.Get("X-Cache-Status"), d.c.files.Load()-before)
			}
			if !bytes.Equal(got, body) || resp.ContentLength != int64(len(body)) || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("%d bytes (Content-Length %d, %s), rendered %d", len(got), resp.ContentLength, resp.Header.Get("Content-Type"), len(body))
			}
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(got))
			if err != nil || max(cfg.Width, cfg.Height) != c.box {
				t.Fatalf("decoded %dx%d (%v), want a %d box", cfg.Width, cfg.Height, err, c.box)
			}

			head, headBody := d.do(t, http.MethodHead, uri)
			if head.StatusCode != 200 || len(headBody) != 0 || head.ContentLength != int64(len(body)) || head.Header.Get("Content-Type") != "image/jpeg" {
				t.Errorf("HEAD: %d, %d body bytes, Content-Length %d", head.StatusCode, len(headBody), head.ContentLength)
			}
			inm, inmBody := d.do(t, http.MethodGet, uri, "If-None-Match", resp.Header.Get("ETag"))
			if inm.StatusCode != http.StatusNotModified || len(inmBody) != 0 {
				t.Errorf("If-None-Match: %d, %d body bytes", inm.StatusCode, len(inmBody))
			}
		})
	}
}

// TestDiskHitChangedEntryIsRendered: an entry changed after it was checked
// is caught on the next hit: a miss, rendered again, counted as corrupt,
// its file dropped (and written again by the render).
func TestDiskHitChangedEntryIsRendered(t *testing.T) {
	const uri = "/rocket.jpg?size=600&format=jpeg"
	flip := func(b []byte) []byte { b[len(b)-100] ^= 0xFF; return b }
	cases := map[string]func(p string, raw []byte) error{
		"rewritten in place": func(p string, raw []byte) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt(flip(raw), 0)
			return err
		},
		"replaced by rename": func(p string, raw []byte) error {
			if err := os.WriteFile(p+".new", flip(raw), 0o644); err != nil {
				return err
			}
			return os.Rename(p+".new", p)
		},
		"truncated": func(p string, raw []byte) error { return os.Truncate(p, int64(len(raw)-1000)) },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			d := newDiskHits(t)
			body, p := d.warm(t, uri)
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(raw)
			if err := change(p, raw); err != nil {
				t.Fatal(err)
			}
			resp, got := d.do(t, http.MethodGet, uri)
			if resp.Header.Get("X-Cache-Status") != "MISS" || !bytes.Equal(got, body) {
				t.Errorf("changed entry: %s, %d bytes", resp.Header.Get("X-Cache-Status"), len(got))
			}
			if n := testutil.ToFloat64(d.ts.m.CacheCorrupt); n != 1 {
				t.Errorf("corrupt counter %v, want 1", n)
			}
			if now, err := os.ReadFile(p); err != nil || !bytes.Equal(now, orig) {
				t.Errorf("entry not written again as rendered: %d bytes, %v", len(now), err)
			}
		})
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestDiskHitClosesItsFile: many file hits (GET, HEAD, 304) on one
// connection leave no descriptor open once answered.
func TestDiskHitClosesItsFile(t *testing.T) {
	for _, uri := range []string{"/rocket.jpg?size=600&format=jpeg", "/rocket.jpg?size=100&format=jpeg"} {
		t.Run(uri, func(t *testing.T) { closesItsFile(t, uri) })
	}
}

func closesItsFile(t *testing.T, uri string) {
	d := newDiskHits(t)
	body, _ := d.warm(t, uri)
	before, files := openFDs(t), d.c.files.Load()
	for i := range 300 {
		method, headers := http.MethodGet, []string(nil)
		switch i % 3 {
		case 1:
			method = http.MethodHead
		case 2:
			headers = []string{"If-None-Match", `"nope"`}
		}
		if resp, got := d.do(t, method, uri, headers...); resp.StatusCode != 200 || method == http.MethodGet && !bytes.Equal(got, body) {
			t.Fatalf("hit %d: %d, %d bytes", i, resp.StatusCode, len(got))
		}
	}
	if n := d.c.files.Load() - files; n != 300 {
		t.Fatalf("%d of 300 hits were files", n)
	}
	// The last answer's file is closed just after its body is written.
	eventually(t, "descriptors back to what they were", func() bool { return openFDs(t) <= before })
}

// TestDiskHitOutlivesPurge: a file hit whose entry is purged after the
// answer has started still sends the whole body (the open descriptor keeps
// the file).
func TestDiskHitOutlivesPurge(t *testing.T) {
	const uri = "/rocket.jpg?size=640&format=png"
	d := newDiskHits(t)
	body, p := d.warm(t, uri)
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(conn, "GET "+uri+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReaderSize(conn, 16)
	resp, err := http.ReadResponse(r, nil) // the status line and headers only
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "HIT-DISK" {
		t.Fatalf("%v, %v", resp, err)
	}
	for _, pr := range d.ts.Purge(context.Background(), "rocket.jpg", "test") {
		if pr.Err != nil {
			t.Fatal(pr.Err)
		}
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("entry not purged: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after the purge: %d of %d bytes, %v", len(got), len(body), err)
	}
}
