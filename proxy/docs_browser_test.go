package proxy

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"image-proxy/apidocs"
)

// chromium is Debian's browser, which `make test` installs.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is required for the /docs browser test: `make test` installs it (apt-get install chromium)")
	return ""
}

// browser starts headless Chromium with extra options for the rest of the
// test and returns its context, which ends after hangGuard; the browser
// stops and its profile is removed when the test ends.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.UserDataDir(browserDir(t)))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, hangGuard)
	t.Cleanup(cancelT)
	return ctx
}

// browserDir is a profile directory for one Chromium run. Chromium's
// helper processes may still be writing to it for a moment after the
// browser is gone, which makes t.TempDir's removal fail the test; its
// removal here retries until the directory is gone or hangGuard passes.
func browserDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(hangGuard)
		for os.RemoveAll(dir) != nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	})
	return dir
}

// TestDocsPageInBrowser loads /docs in headless Chromium from a real
// listener, waits for Redoc to render, and finds every operation of the
// description listed, while any request to a host other than the server
// fails the test.
func TestDocsPageInBrowser(t *testing.T) {
	ts := newTestServer(t, nil)
	_, doc := servedOpenAPI(t, ts)
	ln := ts.serve(t)
	base := "http://" + ln.Addr().String()

	ctx := browser(t)

	// Redoc's sidebar asks for its maker's logo from a CDN; the page's
	// Content-Security-Policy must block that (and anything else off the
	// server) inside the browser. A foreign request is open until it is
	// reported blocked by the CSP (fine) or anything else (a failure).
	var mu sync.Mutex
	var seen []string
	foreign := map[network.RequestID]string{} // open
	var escaped []string                      // left the browser
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			seen = append(seen, e.Request.URL)
			if u, err := url.Parse(e.Request.URL); err == nil && u.Scheme != "data" && u.Scheme != "blob" && u.Host != ln.Addr().String() {
				foreign[e.RequestID] = e.Request.URL
			}
		case *network.EventLoadingFailed:
			if u, ok := foreign[e.RequestID]; ok {
				delete(foreign, e.RequestID)
				if e.BlockedReason != network.BlockedReasonCsp {
					escaped = append(escaped, u+" ("+e.ErrorText+")")
				}
			}
		case *network.EventResponseReceived, *network.EventLoadingFinished:
			id := network.RequestID("")
			if r, ok := e.(*network.EventResponseReceived); ok {
				id = r.RequestID
			} else {
				id = e.(*network.EventLoadingFinished).RequestID
			}
			if u, ok := foreign[id]; ok {
				delete(foreign, id)
				escaped = append(escaped, u)
			}
		}
	})
	var text string
	err := chromedp.Run(ctx, network.Enable(),
		chromedp.Navigate(base+"/docs"),
		// Redoc renders the operations into .api-content once the spec loads.
		chromedp.WaitVisible(`.api-content h2`, chromedp.ByQuery),
		chromedp.Text(`body`, &text, chromedp.ByQuery))
	if err != nil {
		t.Fatalf("loading /docs: %v", err)
	}
	eventually(t, "every foreign request to be settled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(foreign) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(escaped) > 0 {
		t.Errorf("/docs made requests off the server: %v", escaped)
	}
	if !containsURL(seen, base+"/openapi.json") || !containsURL(seen, base+apidocs.ScriptPath) {
		t.Errorf("requests %v: the page did not load the script and the description from the server", seen)
	}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct{ Summary string }
			_ = json.Unmarshal(raw, &op)
			if !strings.Contains(text, op.Summary) {
				t.Errorf("%s %s (%q) is not listed on /docs", strings.ToUpper(method), path, op.Summary)
			}
		}
		if !strings.Contains(text, path) {
			t.Errorf("path %s is not shown on /docs", path)
		}
	}
}

func containsURL(list []string, u string) bool {
	for _, s := range list {
		if s == u {
			return true
		}
	}
	return false
}
