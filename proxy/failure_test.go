package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/transform"
)

// A failure of ours is a 500 that no cache keeps, logged at error level
// with libvips' text; a broken file is the client's 422.

// libvipsDetail stands for what libvips says when it fails on a file that
// decodes: for the log, never for the client.
const libvipsDetail = "orient: vips_image_copy_memory: out of memory"

// failRenderer fails every render the way transform reports such a failure.
type failRenderer struct{ calls atomic.Int64 }

func (f *failRenderer) Render(context.Context, []byte, transform.Options) (transform.Result, error) {
	f.calls.Add(1)
	return transform.Result{}, &transform.Error{Kind: transform.KindInternal, Err: errors.New(libvipsDetail)}
}

// capturedLog holds the server's JSON log lines; the server writes from
// its own goroutines.
type capturedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *capturedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// at returns the records logged at level (slog's name, e.g. "ERROR").
func (l *capturedLog) at(t *testing.T, level string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if rec["level"] == level {
			out = append(out, rec)
		}
	}
	return out
}

// newLoggedServer is newTestServer with a renderer of the test's choosing
// and every log line, debug included, kept.
func newLoggedServer(t *testing.T, r Engine, out io.Writer) *testServer {
	t.Helper()
	root := t.TempDir()
	copyTree(t, "../data/images", root)
	cfg := defaultTestConfig(root)
	m := metrics.New(prometheus.NewRegistry(), transform.MemStats)
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tiers, err := cache.LocalTiers(cache.Config{Enabled: true, MemorySize: 64 << 20, MaxItemSize: 1 << 20}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(tiers, m)
	sources, _ := testSources(t, root, c, m)
	s, err := New(cfg, Deps{Sources: sources, Engine: r, Cache: c, Metrics: m, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &testServer{Server: s, root: root, m: m}
}

func TestInternalFailureIs500NoStore(t *testing.T) {
	var logs capturedLog
	r := &failRenderer{}
	ts := newLoggedServer(t, r, &logs)
	for i := 1; i <= 2; i++ {
		resp, body := ts.get(t, "/rocket.jpg?size=100")
		if resp.StatusCode != 500 {
			t.Fatalf("status %d, want 500: %s", resp.StatusCode, body)
		}
		// The error Cache-Control (public, max-age=60 here) is for 4xx.
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		if msg := errorMessage(t, body); msg != "The image could not be processed." {
			t.Errorf("message %q", msg)
		}
		if bytes.Contains(body, []byte("vips")) || bytes.Contains(body, []byte("out of memory")) {
			t.Errorf("body carries libvips' text: %s", body)
		}
		if got := r.calls.Load(); got != int64(i) {
			t.Errorf("%d renders after %d requests: a failure was cached", got, i)
		}
	}
	errs := logs.at(t, "ERROR")
	if len(errs) != 2 {
		t.Fatalf("%d error-level records for two 500s, want 2: %v", len(errs), errs)
	}
	for _, rec := range errs {
		if detail, _ := rec["err"].(string); !strings.Contains(detail, libvipsDetail) {
			t.Errorf("error record without libvips' text: %v", rec)
		}
		if rec["status"] != float64(500) {
			t.Errorf("error record status %v", rec["status"])
		}
	}
}

func TestBrokenSourceIs422(t *testing.T) {
	var logs capturedLog
	ts := newLoggedServer(t, transform.New(transform.DefaultConfig()), &logs)
	photo, err := os.ReadFile(filepath.Join(ts.root, "rocket-exif-orientation-6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	// The header is intact; the damage shows only once pixels are decoded.
	must(t, os.WriteFile(filepath.Join(ts.root, "cut.jpg"), photo[:len(photo)*2/3], 0o644))
	for _, target := range []string{"/cut.jpg?size=100", "/cut.jpg?size=600", "/cut.jpg?format=webp"} {
		resp, body := ts.get(t, target)
		if resp.StatusCode != 422 {
			t.Fatalf("%s: status %d, want 422: %s", target, resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
			t.Errorf("%s: Cache-Control %q, want the error setting", target, cc)
		}
		errorMessage(t, body)
	}
	if errs := logs.at(t, "ERROR"); len(errs) != 0 {
		t.Errorf("a broken file is logged as our error: %v", errs)
	}
}

// TestRotatedPhotoAtLargeBoxes is the field report through HTTP: a photo
// tagged orientation 6 was a 422 from a few hundred pixels up.
func TestRotatedPhotoAtLargeBoxes(t *testing.T) {
	ts := newTestServer(t, nil)
	src, err := os.ReadFile(filepath.Join(ts.root, "hubble_deep_field.jpg")) // 1000×872
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(ts.root, "portrait.jpg"), withOrientation6(t, src), 0o644))
	for _, c := range []struct {
		query string
		w, h  int
	}{
		{"size=300", 262, 300},
		{"size=900", 785, 900},
		{"size=1000&format=png", 872, 1000},
		{"size=2000&format=webp", 872, 1000},
	} {
		resp, body := ts.get(t, "/portrait.jpg?"+c.query)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d: %s", c.query, resp.StatusCode, body)
			continue
		}
		if info := decodeInfo(t, body); info.width != c.w || info.height != c.h {
			t.Errorf("%s: %dx%d, want %dx%d (upright)", c.query, info.width, info.height, c.w, c.h)
		}
	}
}

// withOrientation6 gives a JPEG an EXIF segment holding only orientation 6
// (big-endian TIFF structure, one IFD entry), in place of any it had.
func withOrientation6(t *testing.T, jpeg []byte) []byte {
	t.Helper()
	exif := []byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" +
		"\x00\x01" + // one entry
		"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + // Orientation, SHORT, 1, 6
		"\x00\x00\x00\x00")
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, 0, byte(len(exif) + 2)}
	out = append(out, exif...)
	at := 2
	for at+4 <= len(jpeg) && jpeg[at] == 0xFF && jpeg[at+1] != 0xDA {
		n := 2 + (int(jpeg[at+2])<<8 | int(jpeg[at+3]))
		if at+n > len(jpeg) {
			t.Fatal("truncated JPEG segment")
		}
		if jpeg[at+1] != 0xE1 || !bytes.HasPrefix(jpeg[at+4:at+n], []byte("Exif\x00")) {
			out = append(out, jpeg[at:at+n]...)
		}
		at += n
	}
	if at+4 > len(jpeg) || jpeg[at+1] != 0xDA {
		t.Fatal("the segments do not lead to SOS")
	}
	return append(out, jpeg[at:]...)
}
