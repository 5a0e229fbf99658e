package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"image-proxy/request"
)

// TestAPIDocsHeaders pins what GET and HEAD of the description, its page
// and the page's script answer, header by header, and their 304: moving
// the pages out of proxy must not change a byte of it.
func TestAPIDocsHeaders(t *testing.T) {
	const csp = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	ts := newTestServer(t, nil)
	for _, c := range []struct {
		path, contentType, csp, bodyStart string
	}{
		{"/openapi.json", "application/json; charset=utf-8", "", "{\n  \"openapi\": \"3.1.0\","},
		{"/docs", "text/html; charset=utf-8", csp, "<!doctype html>"},
		{"/docs/redoc.standalone.js", "text/javascript; charset=utf-8", "", "/*! For license information please see redoc.standalone.js.LICENSE.txt */"},
	} {
		resp, body := ts.get(t, c.path)
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), c.bodyStart) {
			t.Fatalf("GET %s: %d, body %.60q", c.path, resp.StatusCode, body)
		}
		etag := request.StrongETag(string(body))
		want := http.Header{
			"Content-Type":            {c.contentType},
			"Content-Length":          {strconv.Itoa(len(body))},
			"Cache-Control":           {"public, max-age=300"},
			"X-Content-Type-Options":  {"nosniff"},
			"Etag":                    {etag},
			"Content-Security-Policy": nil,
		}
		if c.csp != "" {
			want["Content-Security-Policy"] = []string{c.csp}
		}
		checkHeaders(t, "GET "+c.path, resp.Header, want)
		resp, head := ts.do(t, http.MethodHead, c.path)
		if resp.StatusCode != 200 || len(head) != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes", c.path, resp.StatusCode, len(head))
		}
		checkHeaders(t, "HEAD "+c.path, resp.Header, want)
		resp, nm := ts.get(t, c.path, "If-None-Match", `"x", W/`+etag)
		if resp.StatusCode != 304 || len(nm) != 0 {
			t.Errorf("GET %s If-None-Match: %d with %d body bytes", c.path, resp.StatusCode, len(nm))
		}
		delete(want, "Content-Length")
		checkHeaders(t, "304 "+c.path, resp.Header, want)
	}
}

// checkHeaders compares the named headers only; a nil value means absent.
func checkHeaders(t *testing.T, what string, got, want http.Header) {
	t.Helper()
	for name, values := range want {
		if g := got.Values(name); strings.Join(g, "\n") != strings.Join(values, "\n") {
			t.Errorf("%s: %s = %q, want %q", what, name, g, values)
		}
	}
}
