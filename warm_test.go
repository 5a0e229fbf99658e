package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/image/webp"
)

// gradient encodes a w×h gradient as JPEG or PNG: a real image for libvips.
func gradient(t *testing.T, w, h int, asPNG bool) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 90, 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if asPNG {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func put(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// warmRun runs `image-proxy warm args...` to its end and returns its
// stdout, stderr and exit status.
func warmRun(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	plain := command(t.TempDir(), env, append([]string{"warm"}, args...)...)
	cmd := exec.CommandContext(ctx, plain.Path, plain.Args[1:]...)
	cmd.Dir, cmd.Env = plain.Dir, plain.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatalf("warm %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
	return "", "", -1
}

// warmTree is a root with two photos and a disk cache inside it.
func warmTree(t *testing.T) (root, cacheDir string, env []string) {
	root = t.TempDir()
	cacheDir = filepath.Join(root, "cache")
	put(t, filepath.Join(root, "photos/cat.jpg"), gradient(t, 900, 600, false))
	put(t, filepath.Join(root, "logo.png"), gradient(t, 240, 400, true))
	put(t, filepath.Join(root, "notes.txt"), []byte("not an image"))
	env = []string{"IMAGE_PROXY_ROOT_PATH=" + root, "IMAGE_PROXY_ENABLE_DISK_CACHE=true", "IMAGE_PROXY_CACHE_DISK_PATH=" + cacheDir}
	return root, cacheDir, env
}

func imageSize(t *testing.T, body []byte, contentType string) (int, int) {
	t.Helper()
	var cfg image.Config
	var err error
	if contentType == "image/webp" {
		cfg, err = webp.DecodeConfig(bytes.NewReader(body))
	} else {
		cfg, _, err = image.DecodeConfig(bytes.NewReader(body))
	}
	if err != nil {
		t.Fatalf("decode %s: %v", contentType, err)
	}
	return cfg.Width, cfg.Height
}

// TestWarmCommandThenServe: `image-proxy warm`, then `image-proxy serve`
// over the same disk cache answers every variant HIT-DISK with the ETag a
// server without a cache gives the same URL, and skips everything when
// run again. The cache directory inside the root is not warmed.
func TestWarmCommandThenServe(t *testing.T) {
	root, _, env := warmTree(t)
	out, errOut, code := warmRun(t, env, "--sizes", "120,300", "--formats", "webp,png", "--dpr", "1,2")
	if code != 0 || !strings.Contains(out, "3 sources") || !strings.Contains(out, "16 variants rendered, 0 skipped") ||
		!strings.Contains(out, "1 files not images") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	served := startBinary(t, t.TempDir(), env...)
	live := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root, "IMAGE_PROXY_ENABLE_CACHE=false")
	for _, path := range []string{"/photos/cat.jpg", "/logo.png"} {
		for _, q := range []string{"size=120&format=webp", "size=300&format=png", "size=120&format=png&dpr=2", "size=300&format=webp&dpr=2"} {
			want, got := get(t, live.base+path+"?"+q), get(t, served.base+path+"?"+q)
			if got.status != 200 || got.cache != "HIT-DISK" || got.etag != want.etag || want.etag == "" {
				t.Errorf("%s?%s: %d %s %s, want 200 HIT-DISK %s", path, q, got.status, got.cache, got.etag, want.etag)
			}
			ct := "image/" + strings.Split(strings.Split(q, "format=")[1], "&")[0]
			gw, gh := imageSize(t, got.body, ct)
			lw, lh := imageSize(t, want.body, ct)
			if gw != lw || gh != lh {
				t.Errorf("%s?%s: warmed %dx%d, live %dx%d", path, q, gw, gh, lw, lh)
			}
		}
	}
	out, _, code = warmRun(t, env, "--sizes", "120,300", "--formats", "webp,png", "--dpr", "1,2")
	if code != 0 || !strings.Contains(out, "0 variants rendered, 16 skipped") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
}

// TestWarmReportsFailuresAndGoesOn: a corrupt file is named with its
// reason in the summary, exit 1, and the other files are warmed all the same.
func TestWarmReportsFailuresAndGoesOn(t *testing.T) {
	root, _, env := warmTree(t)
	good := gradient(t, 500, 500, false)
	put(t, filepath.Join(root, "broken.jpg"), good[:len(good)/3])
	out, errOut, code := warmRun(t, env, "--sizes", "100")
	if code != 1 || !strings.Contains(out, "failed broken.jpg: invalid image") || !strings.Contains(out, "2 variants rendered") ||
		!strings.Contains(out, "1 failed") {
		t.Fatalf("exit %d, want 1 with broken.jpg reported:\n%s%s", code, out, errOut)
	}
	served := startBinary(t, t.TempDir(), env...)
	if a := get(t, served.base+"/photos/cat.jpg?size=100&format=webp"); a.cache != "HIT-DISK" {
		t.Errorf("the good file was not warmed: %s", a.cache)
	}
}

func TestWarmBadCommandLineExit2(t *testing.T) {
	root, _, env := warmTree(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--sizes", "0"}, `"0": must be whole numbers from 1 to 4000`},
		{[]string{"--sizes", "-1"}, `"-1": must be whole numbers`},
		{[]string{"--sizes", "abc"}, `"abc": must be whole numbers`},
		{[]string{"--sizes", "99999"}, `"99999": must be whole numbers from 1 to 4000 (IMAGE_PROXY_MAX_SIZE)`},
		{[]string{"--sizes", "360,,720"}, `must be whole numbers`},
		{[]string{"--formats", "gif2"}, `"gif2": must be output formats`},
		{[]string{"--formats", "auto"}, `"auto": must be output formats`},
		{[]string{"--dpr", "0.5"}, `"0.5": must be numbers from 1.0 to 10.0`},
		{[]string{"--colour", "red"}, `flag provided but not defined: -colour`},
		{[]string{"--out", filepath.Join(root, "static")}, `the output directory is inside the root`},
		{[]string{"--out", root}, `the output directory is inside the root`},
		{[]string{"../elsewhere"}, `not a plain path below the root`},
		{[]string{"photos/.hidden.jpg"}, `not a plain path below the root`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, errOut, code := warmRun(t, env, c.args...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, want 2 and %q on stderr:\n%s%s", code, c.want, out, errOut)
			}
		})
	}
	// Settings: the same rules, named by variable; and no tier to warm into.
	for _, c := range []struct{ env, want string }{
		{"IMAGE_PROXY_WARM_SIZES=0", `IMAGE_PROXY_WARM_SIZES="0": must be whole numbers`},
		{"IMAGE_PROXY_WARM_FORMATS=tiff", `IMAGE_PROXY_WARM_FORMATS="tiff": must be output formats`},
		{"IMAGE_PROXY_ENABLE_DISK_CACHE=false", `no result tier to warm`},
	} {
		_, errOut, code := warmRun(t, append(env, c.env), "--sizes", "100")
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want 2 and %q:\n%s", c.env, code, c.want, errOut)
		}
	}
}

// TestWarmOut writes static files and a manifest; the files decode to the
// sizes the manifest states, and a second run skips them.
func TestWarmOut(t *testing.T) {
	_, _, env := warmTree(t)
	dir := filepath.Join(t.TempDir(), "static")
	out, errOut, code := warmRun(t, env, "--out", dir, "--sizes", "150,600", "--dpr", "1,2", "--formats", "webp,jpeg")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var m struct {
		Sources []struct {
			Source   string
			Variants []struct {
				File, Format        string
				Size, Width, Height int
				DPR                 float64
				Bytes               int
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil || json.Unmarshal(b, &m) != nil || len(m.Sources) != 2 {
		t.Fatalf("manifest: %v\n%s", err, b)
	}
	want := map[string][2]int{ // file → width, height (never enlarged)
		"photos/cat-150.webp": {150, 100}, "photos/cat-150@2x.jpeg": {300, 200}, "photos/cat-600.jpeg": {600, 400},
		"photos/cat-600@2x.webp": {900, 600}, "logo-150.webp": {90, 150}, "logo-600@2x.jpeg": {240, 400},
	}
	seen := 0
	for _, src := range m.Sources {
		if len(src.Variants) != 8 {
			t.Errorf("%s: %d variants, want 8", src.Source, len(src.Variants))
		}
		for _, v := range src.Variants {
			body, err := os.ReadFile(filepath.Join(dir, v.File))
			if err != nil || len(body) != v.Bytes {
				t.Fatalf("%s: %v, %d bytes, manifest says %d", v.File, err, len(body), v.Bytes)
			}
			w, h := imageSize(t, body, "image/"+v.Format)
			if w != v.Width || h != v.Height {
				t.Errorf("%s: %dx%d, manifest says %dx%d", v.File, w, h, v.Width, v.Height)
			}
			if size, ok := want[v.File]; ok {
				seen++
				if w != size[0] || h != size[1] {
					t.Errorf("%s: %dx%d, want %dx%d", v.File, w, h, size[0], size[1])
				}
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the expected files listed", seen)
	}
	out, _, code = warmRun(t, env, "--out", dir, "--sizes", "150,600", "--dpr", "1,2", "--formats", "webp,jpeg")
	if code != 0 || !strings.Contains(out, "0 variants rendered, 16 skipped") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
}

// TestWarmWatchCommand: `warm --watch` warms a file changed while it runs;
// SIGINT ends it with status 0, and the server then has the new variants.
func TestWarmWatchCommand(t *testing.T) {
	root, _, env := warmTree(t)
	cmd := command(t.TempDir(), env, "warm", "--watch", "--sizes", "100")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logSink{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine(t, lines, "watching ", logs)
	put(t, filepath.Join(root, "photos/cat.jpg"), gradient(t, 300, 800, false))
	waitLine(t, lines, "warmed photos/cat.jpg: 1 rendered", logs)
	cmd.Process.Signal(syscall.SIGINT)
	for range lines { // drain until the process closes stdout
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
	served := startBinary(t, t.TempDir(), env...)
	a := get(t, served.base+"/photos/cat.jpg?size=100&format=webp")
	if w, h := imageSize(t, a.body, "image/webp"); a.cache != "HIT-DISK" || w > 40 || h != 100 {
		t.Errorf("%s %dx%d, want HIT-DISK about 38x100 (the new file, portrait)", a.cache, w, h)
	}
}

// waitLine reads lines until one starts with prefix, failing after hangGuard.
func waitLine(t *testing.T, lines <-chan string, prefix string, logs fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before %q:\n%s", prefix, logs.String())
			}
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no line %q within %v:\n%s", prefix, hangGuard, logs.String())
		}
	}
}

// TestServeWarmsOnChange: serve with IMAGE_PROXY_WARM_ON_CHANGE warms a file
// written into the root while it runs into the disk tier, at the
// configured sizes and formats, counted as warm work: the first request
// for the variant is a HIT-DISK with the bytes and the ETag a server
// without a cache gives the same URL.
func TestServeWarmsOnChange(t *testing.T) {
	root, _, env := warmTree(t)
	srv := startBinary(t, t.TempDir(), append(env, "IMAGE_PROXY_WARM_ON_CHANGE=true", "IMAGE_PROXY_WARM_SIZES=120")...)
	waitWatching(t, srv, root)
	put(t, filepath.Join(root, "photos/new.jpg"), gradient(t, 300, 200, false))
	waitLog(t, srv, `msg="warmed on change" path=photos/new.jpg rendered=1 skipped=0`)

	live := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root, "IMAGE_PROXY_ENABLE_CACHE=false")
	want, got := get(t, live.base+"/photos/new.jpg?size=120&format=webp"), get(t, srv.base+"/photos/new.jpg?size=120&format=webp")
	if got.status != 200 || got.cache != "HIT-DISK" || got.etag != want.etag || want.etag == "" || !bytes.Equal(got.body, want.body) {
		t.Errorf("%d %s %s (%d bytes), want 200 HIT-DISK %s (%d bytes)", got.status, got.cache, got.etag, len(got.body), want.etag, len(want.body))
	}
	if w, h := imageSize(t, got.body, "image/webp"); w != 120 || h != 80 {
		t.Errorf("%dx%d, want 120x80", w, h)
	}
	metrics := scrape(srv.base)
	if n := metricSum(t, metrics, "image_proxy_transforms_total", `work="live"`); n != 0 {
		t.Errorf("%v live renders, want none: the request was a hit", n)
	}
	if n := metricSum(t, metrics, "image_proxy_transforms_total", `format="webp",result="ok",work="warm"`); n < 2 {
		t.Errorf("%v warm WebP renders, want the probe's and new.jpg's", n)
	}
}

// waitWatching returns once serve's watch of root is in place. It starts
// beside the listener, so a file written before that is never seen: new
// probe files are written until one is warmed (a probe missed is left
// alone; each is a new file, so no later warm of one can be mistaken for
// another's).
func waitWatching(t *testing.T, srv *binaryProcess, root string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for i := 0; ; i++ {
		put(t, filepath.Join(root, fmt.Sprintf("probe-%d.jpg", i)), gradient(t, 64, 64, false))
		// Long enough for several quiet periods (warm.DefaultQuiet) and a
		// render; only how soon a missed probe is replaced depends on it.
		next := time.Now().Add(5 * time.Second)
		for time.Now().Before(next) {
			if strings.Contains(srv.logs.String(), `msg="warmed on change" path=probe-`) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no probe warmed within %v:\n%s", hangGuard, srv.logs.String())
			}
			time.Sleep(20 * time.Millisecond) // the next look at the logs
		}
	}
}

// waitLog waits until the server has logged line, failing after hangGuard.
func waitLog(t *testing.T, srv *binaryProcess, line string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !strings.Contains(srv.logs.String(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("%q never logged:\n%s", line, srv.logs.String())
		}
		time.Sleep(20 * time.Millisecond) // the next look at the logs
	}
}
