// Package miniotest runs a real MinIO server on loopback for tests: the S3
// source and the shared result tier are tested against the server they will
// meet in production, never against a fake of its protocol.
//
// The server binary comes from `make minio` (a pinned build installed with
// the Go toolchain). A missing binary fails the test: a skipped S3 suite
// would pass CI while testing nothing.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// startDeadline bounds the wait for a fresh server to answer its health
// check; a first start on a loaded 2-core machine takes a few seconds.
const startDeadline = 60 * time.Second

// stopDeadline bounds the wait for the killed process to be reaped.
const stopDeadline = 10 * time.Second

// Server is a running MinIO with root credentials.
type Server struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string

	mu     sync.Mutex
	client *minio.Client
}

// Binary finds the MinIO server: $MINIO_BIN, else $(go env GOPATH)/bin/minio.
func Binary() (string, error) {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("MINIO_BIN=%s: %w (run make minio, or point MINIO_BIN at a MinIO server binary)", p, err)
		}
		return p, nil
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOPATH: %w", err)
	}
	// GOPATH may be a list; go install writes to the first entry.
	first := strings.Split(strings.TrimSpace(string(gopath)), string(os.PathListSeparator))[0]
	p := filepath.Join(first, "bin", "minio")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no MinIO server at %s: run make minio (or set MINIO_BIN)", p)
	}
	return p, nil
}

// Start runs a fresh MinIO in a temporary directory and stops it when t
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartEnv(t)
}

// StartEnv is Start with more of MinIO's settings in its environment
// (MINIO_NOTIFY_WEBHOOK_*, say).
func StartEnv(t testing.TB, env ...string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	api, console := freePort(t), freePort(t)
	s := &Server{
		Endpoint:  "http://" + api,
		AccessKey: "miniotest-" + randomHex(t, 4),
		SecretKey: randomHex(t, 20),
	}
	out := &syncWriter{} // MinIO's own log, shown only when it fails to start
	cmd := exec.Command(bin, "server", t.TempDir(), "--address", api, "--console-address", console, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		// A test server must not phone home or look for updates.
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		"MINIO_BROWSER=off",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("miniotest: start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(stopDeadline):
			t.Errorf("miniotest: MinIO (pid %d) not reaped %v after kill", cmd.Process.Pid, stopDeadline)
		}
	})
	if err := waitLive(s.Endpoint, exited); err != nil {
		t.Fatalf("miniotest: %v\nMinIO output:\n%s", err, out)
	}
	return s
}

// waitLive polls the liveness endpoint until it answers 200, the process
// exits, or startDeadline passes.
func waitLive(endpoint string, exited <-chan error) error {
	deadline := time.Now().Add(startDeadline)
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("MinIO exited before it was ready: %v", err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MinIO at %s not live after %v (last error: %v)", endpoint, startDeadline, err)
		}
	}
}

// Client is a root client for the server, shared by the callers.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client
	}
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       false,
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("miniotest: client: %v", err)
	}
	s.client = c
	return c
}

// Bucket creates a bucket named name (which must be a valid, unused S3
// bucket name) and returns the name.
func (s *Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("miniotest: make bucket %s: %v", name, err)
	}
	return name
}

// Put stores data at key, failing t on error.
func (s *Server) Put(t testing.TB, bucket, key string, data []byte) minio.UploadInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := s.Client(t).PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("miniotest: put %s/%s: %v", bucket, key, err)
	}
	return info
}

func freePort(t testing.TB) string {
	t.Helper()
	// The port is free when chosen; another process could take it before
	// MinIO binds, which fails the start loudly rather than silently.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// syncWriter lets MinIO's stdout and stderr share one buffer.
type syncWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Only the start-up failure message is ever shown; a long-running
	// server's log must not grow the test's memory.
	if w.w.Len() < 64<<10 {
		w.w.Write(p)
	}
	return len(p), nil
}

// Silent listens on loopback, accepts connections and never answers, the
// way a store behind a dead load balancer can; it returns host:port. Every
// connection is closed when the test ends.
func Silent(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	held.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		l.Close()
		held.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}
