package deploy

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "golang.org/x/image/webp"

	"image-proxy/imageformat"
)

// sources has one original per format image-proxy accepts, from the
// repository's own images.
var sources = map[imageformat.Format]string{
	imageformat.JPEG: "rocket.jpg",
	imageformat.PNG:  "astronaut.png",
	imageformat.WebP: "astronaut-animated.webp",
	imageformat.GIF:  "astronaut-animated.gif",
	imageformat.AVIF: "coffee.avif",
	imageformat.HEIF: "variants/coffee.heic",
	imageformat.TIFF: "variants/coffee.tif",
	imageformat.JXL:  "variants/coffee.jxl",
	imageformat.SVG:  "variants/badge.svg",
}

// The runtime image is FROM scratch plus what deploy/image/collect-rootfs.sh
// collects. No Docker engine runs here, so this builds that tree from the
// real binary and serves every source format in every output format from a
// chroot into it, the way the chart runs the image: read-only root, uid
// 10001, /tmp and the disk tier on their own mounts.
func TestImageRootfs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("chroot and mount need root, as `make test` runs on CI and the dev machines")
	}
	dir := t.TempDir()
	rootfs, cache := filepath.Join(dir, "rootfs"), filepath.Join(dir, "cache")
	buildRootfs(t, dir, rootfs)
	copyOriginals(t, filepath.Join(rootfs, "app", "data"))

	size := treeSize(t, rootfs)
	t.Logf("rootfs: %.1f MB", float64(size)/1e6)
	if size > 200<<20 {
		t.Errorf("the image's filesystem is %d MB, over the 200 MB budget", size>>20)
	}

	srv := startChroot(t, rootfs, cache)
	for f := imageformat.Format(1); f < imageformat.Count; f++ {
		if _, ok := sources[f]; !ok {
			t.Errorf("no source of format %s: add one to sources", f)
		}
	}
	for f, src := range sources {
		t.Run(f.String(), func(t *testing.T) { checkSource(t, srv.base, src, f) })
	}
	checkHealthcheck(t, rootfs, cache, srv.addr)
	srv.stop(t)

	// A restart on the same cache volume answers from the disk tier.
	srv = startChroot(t, rootfs, cache)
	resp := get(t, srv.base+"/rocket.jpg?size=64&format=webp")
	if got := resp.Header.Get("X-Cache-Status"); got != "HIT-DISK" {
		t.Errorf("after a restart: X-Cache-Status %q, want HIT-DISK", got)
	}
	srv.stop(t)
}

func buildRootfs(t *testing.T, dir, rootfs string) {
	bin := filepath.Join(dir, "image-proxy")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command("bash", "image/collect-rootfs.sh", rootfs, bin).CombinedOutput(); err != nil {
		t.Fatalf("collect-rootfs.sh: %v\n%s", err, out)
	}
}

func copyOriginals(t *testing.T, to string) {
	for _, src := range sources {
		b := read(t, filepath.Join(repo, "data", "images", src))
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, src)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, src), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeSize is what du counts for the files: their sizes, links as links.
func treeSize(t *testing.T, root string) int64 {
	var n int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err == nil && d.Type().IsRegular() {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type chrootServer struct {
	cmd        *exec.Cmd
	addr, base string
	out        *bytes.Buffer
	exited     chan struct{} // closed when the process has exited
}

// startChroot serves rootfs's image-proxy as the chart runs it, with the
// Dockerfile's environment plus the chart's disk tier.
func startChroot(t *testing.T, rootfs, cache string) *chrootServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(cache, 10001, 10001); err != nil {
		t.Fatal(err)
	}
	cmd := inImage(t, rootfs, cache, "/usr/local/bin/image-proxy", "serve")
	for k, v := range parseDockerfile(t).env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "IMAGE_PROXY_BIND_ADDRESS="+addr, "IMAGE_PROXY_ENABLE_DISK_CACHE=true", "IMAGE_PROXY_LOG_LEVEL=warn")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &chrootServer{cmd: cmd, addr: addr, base: "http://" + addr, out: out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-s.exited })
	s.waitHealthy(t)
	return s
}

// inImage runs a command in the rootfs as a container runtime would: its
// own mount namespace, the root read-only, /dev from the host, /tmp a
// tmpfs, the cache directory mounted, uid and gid 10001, no capabilities.
func inImage(t *testing.T, rootfs, cache string, args ...string) *exec.Cmd {
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e
mount --bind "$ROOTFS" "$ROOTFS"
mount -o remount,bind,ro "$ROOTFS"
mount --rbind /dev "$ROOTFS/dev"
mount -t tmpfs -o size=64m tmpfs "$ROOTFS/tmp"
mount --bind "$CACHE" "$ROOTFS/app/cache"
exec "$CHROOT" --userspec=10001:10001 "$ROOTFS" "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--fork", "bash", "-c", script, "in-image"}, args...)...)
	cmd.Env = []string{"ROOTFS=" + rootfs, "CACHE=" + cache, "CHROOT=" + chroot}
	return cmd
}

func (s *chrootServer) waitHealthy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(s.base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the chroot'd image-proxy did not become healthy:\n%s", s.out)
		case <-s.exited:
			t.Fatalf("the chroot'd image-proxy exited:\n%s", s.out)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM to image-proxy, as Kubernetes does, and waits for the
// drain; unshare, its parent, exits with it.
func (s *chrootServer) stop(t *testing.T) {
	pid := s.cmd.Process.Pid
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	child, convErr := strconv.Atoi(strings.TrimSpace(string(children)))
	if err != nil || convErr != nil {
		t.Fatalf("image-proxy's pid under unshare %d: %q %v", pid, children, err)
	}
	if err := syscall.Kill(child, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("image-proxy did not stop:\n%s", s.out)
	}
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// checkSource: the original passes through byte for byte, and renders into
// every output format at the size asked.
func checkSource(t *testing.T, base, src string, f imageformat.Format) {
	resp := get(t, base+"/"+src)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(body, read(t, filepath.Join(repo, "data", "images", src))) {
		t.Errorf("passthrough %s: %d, %d bytes, not the original", src, resp.StatusCode, len(body))
	}
	for _, out := range imageformat.Outputs() {
		url := fmt.Sprintf("%s/%s?size=64&format=%s", base, src, out)
		resp := get(t, url)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != out.MIME() {
			t.Errorf("%s: %d %s: %.200s", url, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			continue
		}
		checkEncoded(t, url, out, body)
	}
}

// checkEncoded decodes what Go can decode (its box is at most 64 px) and
// reads AVIF's file type box.
func checkEncoded(t *testing.T, url string, f imageformat.Format, body []byte) {
	if f == imageformat.AVIF {
		if len(body) < 12 || string(body[4:8]) != "ftyp" || !strings.HasPrefix(string(body[8:12]), "avi") {
			t.Errorf("%s: not an AVIF file (% x)", url, body[:min(len(body), 12)])
		}
		return
	}
	cfg, name, err := image.DecodeConfig(bytes.NewReader(body))
	switch {
	case err != nil:
		t.Errorf("%s: %v", url, err)
	case name != f.String():
		t.Errorf("%s: decoded as %s", url, name)
	case cfg.Width < 1 || cfg.Height < 1 || max(cfg.Width, cfg.Height) > 64:
		t.Errorf("%s: %dx%d, want a box of 64", url, cfg.Width, cfg.Height)
	}
}

// checkHealthcheck: the HEALTHCHECK script runs inside the image (bash,
// grep) and passes against the running server.
func checkHealthcheck(t *testing.T, rootfs, cache, addr string) {
	cmd := inImage(t, rootfs, cache, "/usr/local/bin/healthcheck")
	cmd.Env = append(cmd.Env, "IMAGE_PROXY_BIND_ADDRESS="+addr)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("healthcheck in the image: %v\n%s", err, out)
	}
	if out, err := inImage(t, rootfs, cache, "/bin/sleep", "0").CombinedOutput(); err != nil {
		t.Errorf("the chart's preStop (/bin/sleep) in the image: %v\n%s", err, out)
	}
}
