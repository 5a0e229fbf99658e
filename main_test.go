package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is the real image-proxy, built once for the tests in this package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "image-proxy-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "image-proxy")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// command runs the binary in dir with only the given environment.
func command(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	return cmd
}

func TestBadSettingsExit2(t *testing.T) {
	root, _ := filepath.Abs("data/images")
	cases := []struct {
		env  string
		name string
	}{
		{"IMAGE_PROXY_JPEG_QUALITY=101", "IMAGE_PROXY_JPEG_QUALITY"},
		{"IMAGE_PROXY_JPEG_QUALITY=abc", "IMAGE_PROXY_JPEG_QUALITY"},
		{"IMAGE_PROXY_AVIF_SPEED=0", "IMAGE_PROXY_AVIF_SPEED"},
		{"IMAGE_PROXY_AVIF_SPEED=11", "IMAGE_PROXY_AVIF_SPEED"},
		{"IMAGE_PROXY_AVIF_QUALITY=-1", "IMAGE_PROXY_AVIF_QUALITY"},
		{"IMAGE_PROXY_WEBP_QUALITY=200", "IMAGE_PROXY_WEBP_QUALITY"},
		{"IMAGE_PROXY_WEBP_EFFORT=7", "IMAGE_PROXY_WEBP_EFFORT"},
		{"IMAGE_PROXY_PNG_COMPRESSION_LEVEL=10", "IMAGE_PROXY_PNG_COMPRESSION_LEVEL"},
		{"IMAGE_PROXY_RESIZE_ALGORITHM=bicubic", "IMAGE_PROXY_RESIZE_ALGORITHM"},
		{"IMAGE_PROXY_ENABLE_CACHE=maybe", "IMAGE_PROXY_ENABLE_CACHE"},
		{"IMAGE_PROXY_ENABLE_DISK_CACHE=2", "IMAGE_PROXY_ENABLE_DISK_CACHE"},
		{"IMAGE_PROXY_CACHE_MEMORY_SIZE=0", "IMAGE_PROXY_CACHE_MEMORY_SIZE"},
		{"IMAGE_PROXY_CACHE_MAX_ITEM_SIZE=-3", "IMAGE_PROXY_CACHE_MAX_ITEM_SIZE"},
		{"IMAGE_PROXY_CACHE_DISK_SIZE=lots", "IMAGE_PROXY_CACHE_DISK_SIZE"},
		{"IMAGE_PROXY_MAX_SIZE=0", "IMAGE_PROXY_MAX_SIZE"},
		{"IMAGE_PROXY_MAX_SOURCE_PIXELS=0", "IMAGE_PROXY_MAX_SOURCE_PIXELS"},
		{"IMAGE_PROXY_MAX_SOURCE_BYTES=1.5", "IMAGE_PROXY_MAX_SOURCE_BYTES"},
		{"IMAGE_PROXY_CONCURRENCY=-1", "IMAGE_PROXY_CONCURRENCY"},
		{"IMAGE_PROXY_QUEUE_TIMEOUT=soon", "IMAGE_PROXY_QUEUE_TIMEOUT"},
		{"IMAGE_PROXY_QUEUE_TIMEOUT=0s", "IMAGE_PROXY_QUEUE_TIMEOUT"},
		{"IMAGE_PROXY_SHUTDOWN_TIMEOUT=-1s", "IMAGE_PROXY_SHUTDOWN_TIMEOUT"},
		{"IMAGE_PROXY_STAT_CACHE_MAX_AGE=-1s", "IMAGE_PROXY_STAT_CACHE_MAX_AGE"},
		{"IMAGE_PROXY_STAT_CACHE_MAX_AGE=25h", "IMAGE_PROXY_STAT_CACHE_MAX_AGE"},
		{"IMAGE_PROXY_STAT_CACHE_MAX_AGE=often", "IMAGE_PROXY_STAT_CACHE_MAX_AGE"},
		{"IMAGE_PROXY_FALLBACK_TIMEOUT=10", "IMAGE_PROXY_FALLBACK_TIMEOUT"},
		{"IMAGE_PROXY_S3_TIMEOUT=10", "IMAGE_PROXY_S3_TIMEOUT"},
		{"IMAGE_PROXY_S3_TIMEOUT=0s", "IMAGE_PROXY_S3_TIMEOUT"},
		{"IMAGE_PROXY_S3_STAT_MAX_AGE=-1s", "IMAGE_PROXY_S3_STAT_MAX_AGE"},
		{"IMAGE_PROXY_S3_STAT_MAX_AGE=25h", "IMAGE_PROXY_S3_STAT_MAX_AGE"},
		{"IMAGE_PROXY_S3_STAT_MAX_AGE=often", "IMAGE_PROXY_S3_STAT_MAX_AGE"},
		{"IMAGE_PROXY_S3_PATH_STYLE=perhaps", "IMAGE_PROXY_S3_PATH_STYLE"},
		{"IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE=0", "IMAGE_PROXY_FALLBACK_IMAGE_MAX_SIZE"},
		{"IMAGE_PROXY_FALLBACK_IMAGE_URL=ftp://example.com", "IMAGE_PROXY_FALLBACK_IMAGE_URL"},
		{"IMAGE_PROXY_FALLBACK_IMAGE_URL=http://", "IMAGE_PROXY_FALLBACK_IMAGE_URL"},
		{"IMAGE_PROXY_FALLBACK_IMAGE_URL=https://example.com/x?y=1", "IMAGE_PROXY_FALLBACK_IMAGE_URL"},
		{"IMAGE_PROXY_FALLBACK_IMAGE_URL=https://example.com/x#f", "IMAGE_PROXY_FALLBACK_IMAGE_URL"},
		{"IMAGE_PROXY_FALLBACK_IMAGE_URL=example.com/images", "IMAGE_PROXY_FALLBACK_IMAGE_URL"},
		{"IMAGE_PROXY_ROOT_PATH=/nonexistent/dir", "IMAGE_PROXY_ROOT_PATH"},
		{"IMAGE_PROXY_ROOT_PATH=" + root + "/rocket.jpg", "IMAGE_PROXY_ROOT_PATH"},
		{"IMAGE_PROXY_BIND_ADDRESS=8000", "IMAGE_PROXY_BIND_ADDRESS"},
		{"IMAGE_PROXY_LOG_LEVEL=loud", "IMAGE_PROXY_LOG_LEVEL"},
		{"RUST_LOG=chatty", "RUST_LOG"},
		{"IMAGE_PROXY_LOG_FORMAT=xml", "IMAGE_PROXY_LOG_FORMAT"},
		// Presets: the line names the offending entry (request/presets.go).
		{"IMAGE_PROXY_PRESETS=phone", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=size400", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=size:abc", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=size:0", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=size:4001", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=quality:0", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=quality:101", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=format:bmp", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=dpr:11", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=resize_algorithm:bicubic", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=colour:red", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=preset:desktop", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=size:400,size:500", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=size:400;phone=size:500", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=Phone=size:400", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=ph.one=size:400", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_PRESETS=phone=size:400,", "IMAGE_PROXY_PRESETS"},
		{"IMAGE_PROXY_ALLOWED_SIZES=360,abc", "IMAGE_PROXY_ALLOWED_SIZES"},
		{"IMAGE_PROXY_ALLOWED_SIZES=0", "IMAGE_PROXY_ALLOWED_SIZES"},
		{"IMAGE_PROXY_ALLOWED_SIZES=360,,720", "IMAGE_PROXY_ALLOWED_SIZES"},
		{"IMAGE_PROXY_ALLOWED_SIZES=4001", "IMAGE_PROXY_ALLOWED_SIZES"},
		{"IMAGE_PROXY_ALLOWED_SIZES=-360", "IMAGE_PROXY_ALLOWED_SIZES"},
		{"IMAGE_PROXY_SNAP_SIZES=true", "IMAGE_PROXY_SNAP_SIZES"},
		{"IMAGE_PROXY_SNAP_SIZES=sometimes", "IMAGE_PROXY_SNAP_SIZES"},
		{"IMAGE_PROXY_ALLOW_QUALITY=no", "IMAGE_PROXY_ALLOW_QUALITY"},
		{"IMAGE_PROXY_SIGN_PASSTHROUGH=maybe", "IMAGE_PROXY_SIGN_PASSTHROUGH"},
		{"IMAGE_PROXY_ENABLE_R_ROUTES=on", "IMAGE_PROXY_ENABLE_R_ROUTES"},
		{"IMAGE_PROXY_WARM_ON_CHANGE=true", "IMAGE_PROXY_WARM_ON_CHANGE"}, // no tier outlives the process
		{"IMAGE_PROXY_WARM_ON_CHANGE=often", "IMAGE_PROXY_WARM_ON_CHANGE"},
		{"IMAGE_PROXY_WARM_SIZES=0", "IMAGE_PROXY_WARM_SIZES"},
		{"IMAGE_PROXY_WARM_FORMATS=tiff", "IMAGE_PROXY_WARM_FORMATS"},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			env := []string{"IMAGE_PROXY_ROOT_PATH=" + root, "IMAGE_PROXY_BIND_ADDRESS=127.0.0.1:0"}
			// A setting that is wrongly accepted starts the server: the
			// deadline turns that hang into a failure.
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			plain := command(t.TempDir(), append(env, c.env))
			cmd := exec.CommandContext(ctx, plain.Path, plain.Args[1:]...)
			cmd.Dir, cmd.Env = plain.Dir, plain.Env
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; output %q", err, out)
			}
			line := strings.TrimSpace(string(out))
			_, value, _ := strings.Cut(c.env, "=")
			if strings.Count(line, "\n") != 0 || !strings.Contains(line, c.name) || !strings.Contains(line, value) || !strings.Contains(line, "must be") {
				t.Errorf("want one line naming %s, the value %q and what is allowed; got %q", c.name, value, line)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := command(t.TempDir(), nil, "version").CombinedOutput()
	if err != nil || !regexp.MustCompile(`^image-proxy \S+ \(libvips 8\.\d+\.\d+\)\n$`).Match(out) {
		t.Fatalf("%v %q", err, out)
	}
}

// hangGuard bounds every wait for an event that only a regression can
// prevent (a server that never starts, answers or exits): the test fails
// instead of hanging. It is no statement about speed: the slowest wait it
// guards, a 1600×1600 AVIF render, takes seconds even on a loaded machine.
const hangGuard = 2 * time.Minute

// logSink collects a child's stdout and stderr. os/exec copies both into
// it on goroutines of its own, hence the lock; cmd.Wait returns only once
// those copies are done, so after the exit every line is here.
type logSink struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// binaryProcess is a running image-proxy.
type binaryProcess struct {
	base   string // http://host:port
	cmd    *exec.Cmd
	logs   *logSink
	exited chan struct{} // closed once the process has exited and all its output is in logs
	err    error         // cmd.Wait's result, set before exited is closed
}

// wait waits for the process to exit and returns cmd.Wait's result.
func (p *binaryProcess) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(hangGuard):
		t.Fatalf("the server did not exit within %v:\n%s", hangGuard, p.logs.String())
		return nil
	}
}

// startBinary runs the real server on a free loopback port and waits until
// it accepts connections.
func startBinary(t *testing.T, dir string, env ...string) *binaryProcess {
	t.Helper()
	return startBinaryAt(t, freeAddr(t), dir, env...)
}

// startBinaryAt is startBinary listening on addr, for a peer that must
// know the address before the server starts (MinIO's webhook).
func startBinaryAt(t *testing.T, addr, dir string, env ...string) *binaryProcess {
	t.Helper()
	root, _ := filepath.Abs("data/images")
	p := &binaryProcess{base: "http://" + addr, logs: &logSink{}, exited: make(chan struct{})}
	p.cmd = command(dir, append([]string{"IMAGE_PROXY_ROOT_PATH=" + root, "IMAGE_PROXY_BIND_ADDRESS=" + addr}, env...))
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(hangGuard):
			t.Errorf("the server survived SIGKILL for %v", hangGuard)
		}
	})
	deadline := time.Now().Add(hangGuard)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("server exited (%v): %s", p.err, p.logs.String())
		case <-time.After(20 * time.Millisecond): // the next dial attempt
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start within %v: %s", hangGuard, p.logs.String())
		}
	}
}

func TestDotEnvIsReadAndEnvironmentWins(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("IMAGE_PROXY_JPEG_QUALITY=500\nIMAGE_PROXY_WEBP_QUALITY=300\n"), 0o644)
	root, _ := filepath.Abs("data/images")
	out, err := command(dir, []string{"IMAGE_PROXY_ROOT_PATH=" + root, "IMAGE_PROXY_JPEG_QUALITY=50"}).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "IMAGE_PROXY_WEBP_QUALITY") {
		t.Fatalf("the .env value was not read or the environment did not win: %v %q", err, out)
	}
}

// TestSettingsDocumented keeps .env.template and the README table in step
// with the settings the loader reads.
func TestSettingsDocumented(t *testing.T) {
	tmpl, _ := os.ReadFile(".env.template")
	readme, _ := os.ReadFile("README.md")
	for _, name := range settingNames() {
		if name == "RUST_LOG" {
			continue
		}
		// Shown commented out at its default: a copied .env changes nothing.
		if !regexp.MustCompile(`(?m)^# ` + name + `=`).Match(tmpl) {
			t.Errorf(".env.template lacks %s", name)
		}
		if !strings.Contains(string(readme), "| `"+name+"` |") {
			t.Errorf("README settings table lacks %s", name)
		}
	}
}
