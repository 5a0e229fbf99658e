package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

// JSON bodies end with one newline, so `curl` output ends its line, and
// Content-Length counts it.
func TestJSONBodiesEndWithNewline(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, c := range []struct {
		method, target string
		status         int
	}{
		{http.MethodGet, "/health", 200},
		{http.MethodGet, "/rocket.jpg?size=0", 400},
		{http.MethodGet, "/missing.jpg", 404},
		{http.MethodPost, "/rocket.jpg", 405},
		{http.MethodGet, "/../etc/passwd", 404},
	} {
		resp, body := ts.do(t, c.method, c.target)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.target, resp.StatusCode, c.status)
		}
		if !bytes.HasSuffix(body, []byte("}\n")) {
			t.Errorf("%s %s: body %q does not end with one newline", c.method, c.target, body)
		}
		if !json.Valid(body) {
			t.Errorf("%s %s: body %q is not JSON", c.method, c.target, body)
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
			t.Errorf("%s %s: Content-Length %s, body has %d bytes", c.method, c.target, cl, len(body))
		}
	}
}
