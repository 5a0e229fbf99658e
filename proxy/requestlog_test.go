package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is written by the server's goroutine and read by the test's.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns what was logged since the last call.
func (b *lockedBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// The debug request line's bytes is what the client is sent as the body
// (or, for HEAD, told in Content-Length), whichever way the body was set:
// as bytes (transforms, errors) or as a stream (passthrough of a file).
func TestRequestLogBytes(t *testing.T) {
	ts := newTestServer(t, nil)
	var logged lockedBuffer
	ts.log = slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))

	for _, c := range []struct {
		name, method, target string
		headers              []string
	}{
		{"transform, rendered", http.MethodGet, "/rocket.jpg?size=120&format=webp", nil},
		{"transform, from the cache", http.MethodGet, "/rocket.jpg?size=120&format=webp", nil},
		{"transform, HEAD", http.MethodHead, "/rocket.jpg?size=120&format=webp", nil},
		{"passthrough, streamed", http.MethodGet, "/rocket.jpg", nil},
		{"passthrough, HEAD", http.MethodHead, "/rocket.jpg", nil},
		{"passthrough, range", http.MethodGet, "/rocket.jpg", []string{"Range", "bytes=0-99"}},
		{"error", http.MethodGet, "/missing.jpg", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			logged.take()
			resp, body := ts.do(t, c.method, c.target, c.headers...)
			want := int64(len(body))
			if c.method == http.MethodHead {
				want = resp.ContentLength
			}
			if want <= 0 {
				t.Fatalf("status %d with no body to measure (Content-Length %d)", resp.StatusCode, resp.ContentLength)
			}
			var line struct {
				Msg    string `json:"msg"`
				Status int    `json:"status"`
				Bytes  *int64 `json:"bytes"`
			}
			var found bool
			for _, l := range strings.Split(strings.TrimSpace(logged.take()), "\n") {
				if err := json.Unmarshal([]byte(l), &line); err == nil && line.Msg == "request" {
					found = true
					break
				}
			}
			switch {
			case !found:
				t.Fatal("no debug request line logged")
			case line.Status != resp.StatusCode:
				t.Errorf("logged status %d, response %d", line.Status, resp.StatusCode)
			case line.Bytes == nil:
				t.Error("request line has no bytes")
			case *line.Bytes != want:
				t.Errorf("logged bytes=%d, the response has %d", *line.Bytes, want)
			}
		})
	}
}
