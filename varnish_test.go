package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "golang.org/x/image/webp"
)

// The VCL operators start from (README: Purging a CDN by tag), run here
// unchanged but for the backend port.
const varnishVCL = "deploy/varnish/image-proxy.vcl"

// cdnTag is a source's purge tag as the README tells operators to compute
// it: printf '%s' path | sha256sum | cut -c1-16.
func cdnTag(path string) string {
	sum := sha256.Sum256([]byte(path))
	return hex.EncodeToString(sum[:])[:16]
}

// varnish is a real varnishd in the foreground, in front of one image-proxy.
type varnish struct {
	base   string
	cmd    *exec.Cmd
	logs   *logSink
	exited chan struct{}
}

// startVarnish runs varnishd with the committed VCL pointed at backend
// (host:port) and waits until it answers through to the backend.
func startVarnish(t *testing.T, backend string) *varnish {
	t.Helper()
	bin, err := exec.LookPath("varnishd")
	if err != nil {
		t.Fatal("varnishd not found: install Debian's varnish and varnish-modules (make test-deps)")
	}
	vcl := writeTestVCL(t, backend)
	addr := freeLoopbackAddr(t)
	v := &varnish{base: "http://" + addr, logs: &logSink{}, exited: make(chan struct{})}
	// -F: the manager stays in the foreground, so its exit is ours to see;
	// -T none: no management port; -n: a private working directory, so
	// parallel runs never share one; -j none: as root, Varnish would
	// otherwise switch to the varnish user, which cannot read the test's
	// private temporary directories (as any other user it is the default).
	v.cmd = exec.Command(bin, "-F", "-j", "none", "-n", filepath.Join(t.TempDir(), "varnish"),
		"-a", addr, "-f", vcl, "-s", "malloc,16m", "-T", "none")
	v.cmd.Stdout, v.cmd.Stderr = v.logs, v.logs
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the child dies with the group
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(v.stop(t))
	v.waitReady(t)
	return v
}

// writeTestVCL is the committed VCL with the backend's port substituted.
func writeTestVCL(t *testing.T, backend string) string {
	t.Helper()
	src, err := os.ReadFile(varnishVCL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(backend)
	const hostLine, portLine = `.host = "127.0.0.1";`, `.port = "8000";`
	if host != "127.0.0.1" || bytes.Count(src, []byte(hostLine)) != 1 || bytes.Count(src, []byte(portLine)) != 1 {
		t.Fatalf("%s: want one backend at %s and %s (the test substitutes the port)", varnishVCL, hostLine, portLine)
	}
	out := filepath.Join(t.TempDir(), "image-proxy.vcl")
	if err := os.WriteFile(out, bytes.Replace(src, []byte(portLine), []byte(`.port = "`+port+`";`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// stop asks the manager to stop its child and exit (SIGTERM), and kills
// the whole group if it has not within hangGuard.
func (v *varnish) stop(t *testing.T) func() {
	return func() {
		v.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-v.exited:
			return
		case <-time.After(hangGuard):
		}
		syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-v.exited:
			t.Errorf("varnishd ignored SIGTERM for %v:\n%s", hangGuard, v.logs.String())
		case <-time.After(hangGuard):
			t.Errorf("varnishd survived SIGKILL for %v", hangGuard)
		}
	}
}

// waitReady polls GET /health through Varnish: the listener opens before
// the child has loaded the VCL, so a connection alone proves nothing.
func (v *varnish) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		if r, err := (&http.Client{Timeout: hangGuard}).Get(v.base + "/health"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-v.exited:
			t.Fatalf("varnishd exited:\n%s", v.logs.String())
		case <-time.After(20 * time.Millisecond): // the next attempt
		}
		if time.Now().After(deadline) {
			t.Fatalf("varnishd did not answer within %v:\n%s", hangGuard, v.logs.String())
		}
	}
}

// cdnVariant is one URL of one photo, and what its body must be.
type cdnVariant struct {
	photo, query string
	accept       string // the request's Accept header, when not empty
	mime         string
	box          int // the longest edge of the answer
}

func (c cdnVariant) url(base string) string { return base + "/" + c.photo + "?" + c.query }

// through is one response as a visitor of the CDN sees it.
type through struct {
	hit  bool // X-Varnish names two transactions: this one and the object's
	etag string
}

// fetchThrough GETs a variant through Varnish and checks what a visitor
// gets: the image asked for, and no tag headers.
func fetchThrough(t *testing.T, base string, v cdnVariant) through {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, v.url(base), nil)
	if v.accept != "" {
		req.Header.Set("Accept", v.accept)
	}
	resp, err := (&http.Client{Timeout: hangGuard}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v %s", v.url(base), resp.StatusCode, err, body)
	}
	for _, h := range []string{"Surrogate-Key", "Cache-Tag", "Xkey"} {
		if got := resp.Header.Values(h); len(got) > 0 {
			t.Errorf("%s: the visitor sees %s: %q", v.url(base), h, got)
		}
	}
	if ct := resp.Header.Get("Content-Type"); ct != v.mime {
		t.Fatalf("%s: Content-Type %q, want %q", v.url(base), ct, v.mime)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
	if err != nil || max(cfg.Width, cfg.Height) != v.box {
		t.Fatalf("%s: decoded %dx%d (%v), want a longest edge of %d", v.url(base), cfg.Width, cfg.Height, err, v.box)
	}
	ids := strings.Fields(resp.Header.Get("X-Varnish"))
	if len(ids) < 1 || len(ids) > 2 {
		t.Fatalf("%s: X-Varnish %q", v.url(base), resp.Header.Get("X-Varnish"))
	}
	return through{hit: len(ids) == 2, etag: resp.Header.Get("ETag")}
}

// backendRenders counts the image requests image-proxy itself answered.
func backendRenders(t *testing.T, base string) int {
	t.Helper()
	return int(metricSum(t, scrape(base), "image_proxy_http_requests_total", `kind="transform"`))
}

// purgeTag sends the VCL's PURGE for one tag from a local address (from,
// an IP of the loopback network) and returns the status and how many
// objects Varnish says it removed.
func purgeTag(t *testing.T, base, from, tag string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("PURGE", base+"/", nil)
	if tag != "" {
		req.Header.Set("xkey-purge", tag)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	client := &http.Client{Timeout: hangGuard, Transport: &http.Transport{DialContext: dialer.DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	n := resp.Header.Get("xkey-purged")
	if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) != "Purged "+n+" objects" {
		t.Fatalf("PURGE %s: %q (xkey-purged %q)", tag, body, n)
	}
	return resp.StatusCode, n
}

// copyPhotos makes a root holding the two photos under the paths the
// test requests.
func copyPhotos(t *testing.T, photos map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, src := range photos {
		b, err := os.ReadFile(filepath.Join("data/images", src))
		if err == nil {
			err = os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(root, rel), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// checkOrigin asks image-proxy directly for one variant: its Surrogate-Key
// and Cache-Tag must be the tag the README's shell line computes.
func checkOrigin(t *testing.T, base string, v cdnVariant) {
	t.Helper()
	resp, err := (&http.Client{Timeout: hangGuard}).Get(v.url(base))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := cdnTag(v.photo)
	if sk, ct := resp.Header.Get("Surrogate-Key"), resp.Header.Get("Cache-Tag"); sk != want || ct != want {
		t.Fatalf("%s: Surrogate-Key %q, Cache-Tag %q, want %q for both", v.url(base), sk, ct, want)
	}
}

// expectThrough requests each variant through Varnish and checks, one by
// one, whether it was a Varnish hit and whether it reached image-proxy
// (origin); it returns the ETags seen, by URL.
func expectThrough(t *testing.T, cdn, origin, name string, vs []cdnVariant, wantHit bool) map[string]string {
	t.Helper()
	etags := map[string]string{}
	for _, v := range vs {
		before := backendRenders(t, origin)
		got := fetchThrough(t, cdn, v)
		reached := backendRenders(t, origin) - before
		wantReached := 1 // a miss is fetched from image-proxy, a hit is not
		if wantHit {
			wantReached = 0
		}
		if got.hit != wantHit || reached != wantReached {
			t.Fatalf("%s: %s: Varnish hit %v and %d backend requests, want hit %v", name, v.url(""), got.hit, reached, wantHit)
		}
		etags[v.url("")] = got.etag
	}
	return etags
}

// TestVarnishPurgesEveryVariantOfOnePhoto: behind a real Varnish with
// vmod_xkey and the committed VCL, one PURGE with a photo's tag removes
// every cached variant of that photo, and only them.
func TestVarnishPurgesEveryVariantOfOnePhoto(t *testing.T) {
	const photoA, photoB = "photos/rocket.jpg", "photos/coffee.png"
	root := copyPhotos(t, map[string]string{photoA: "rocket.jpg", photoB: "coffee.png"})
	origin := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root)
	variantsA := []cdnVariant{
		{photoA, "size=200&format=webp", "", "image/webp", 200},
		{photoA, "size=300&format=jpeg", "", "image/jpeg", 300},
		{photoA, "size=150&format=png", "", "image/png", 150},
	}
	variantsB := []cdnVariant{
		{photoB, "size=200&format=webp", "", "image/webp", 200},
		{photoB, "size=120&format=jpeg", "", "image/jpeg", 120},
	}
	all := append(append([]cdnVariant{}, variantsA...), variantsB...)
	checkOrigin(t, origin.base, variantsA[0])
	checkOrigin(t, origin.base, variantsB[0])
	cdn := startVarnish(t, strings.TrimPrefix(origin.base, "http://"))

	step := func(name string, vs []cdnVariant, wantHit bool) map[string]string {
		return expectThrough(t, cdn.base, origin.base, name, vs, wantHit)
	}
	first := step("first pass", all, false)
	second := step("second pass", all, true)
	for u, e := range first {
		if second[u] != e {
			t.Errorf("%s: ETag %q from the cache, %q from the origin", u, second[u], e)
		}
	}

	// Refused, and nothing purged: no tag; a client outside the ACL (the
	// loopback network reaches the listener from 127.0.0.2 too).
	if code, _ := purgeTag(t, cdn.base, "127.0.0.1", ""); code != http.StatusBadRequest {
		t.Fatalf("PURGE without xkey-purge: %d, want 400", code)
	}
	if code, _ := purgeTag(t, cdn.base, "127.0.0.2", cdnTag(photoA)); code != http.StatusForbidden {
		t.Fatalf("PURGE from outside the ACL: %d, want 403", code)
	}
	step("after refused purges", all, true)
	if code, n := purgeTag(t, cdn.base, "127.0.0.1", cdnTag(photoA)); code != http.StatusOK || n != "3" {
		t.Fatalf("the purge of %s: %d, %s objects removed, want 200 and its 3 variants", photoA, code, n)
	}
	step("after the purge, "+photoB, variantsB, true)
	step("after the purge, "+photoA, variantsA, false)
	step("cached again, "+photoA, variantsA, true)
	// format=auto varies on Accept: the VCL reduces two browsers' Accept
	// strings that both list WebP to one, so the second is a hit.
	step("format=auto, a first browser", []cdnVariant{{photoB, "size=100&format=auto", "image/webp,*/*", "image/webp", 100}}, false)
	step("format=auto, another browser", []cdnVariant{{photoB, "size=100&format=auto", "text/html,image/webp,image/apng,*/*;q=0.8", "image/webp", 100}}, true)
	if code, n := purgeTag(t, cdn.base, "127.0.0.1", cdnTag("photos/absent.jpg")); code != http.StatusOK || n != "0" {
		t.Fatalf("a tag nothing carries: %d, %s objects purged", code, n)
	}
}
