package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests start the real binary on loopback and talk to it over TCP.

func TestBinaryServesAndLogsJSON(t *testing.T) {
	base, cmd, logs := startBinary(t, t.TempDir(), "IMAGE_PROXY_LOG_FORMAT=json", "IMAGE_PROXY_LOG_LEVEL=debug")
	for _, p := range []string{"/rocket.jpg", "/rocket.jpg?size=50&format=webp", "/nope.jpg", "/rocket.jpg?size=0"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	requests := 0
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == "request" {
			requests++
		}
	}
	if requests != 4 {
		t.Errorf("%d request log lines, want 4:\n%s", requests, logs.String())
	}
}

// TestGracefulShutdown sends SIGTERM while a slow transform is running: the
// response must arrive whole and the process must exit 0.
func TestGracefulShutdown(t *testing.T) {
	root := t.TempDir()
	writeNoisePNG(t, filepath.Join(root, "big.png"), 1600, 1600)
	base, cmd, logs := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root)

	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/big.png?format=avif&resize_algorithm=lanczos3")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, b, err}
	}()
	waitMetric(t, base, "image_proxy_transforms_in_flight 1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != 200 || len(r.body) < 1000 || string(r.body[4:12]) != "ftypavif" {
		t.Fatalf("in-flight response: %v status %d, %d bytes", r.err, r.status, len(r.body))
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
}

func scrape(t *testing.T, base string) string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func writeNoisePNG(t *testing.T, path string, w, h int) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), 255
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestHostileConnections: half-sent requests do not starve others, and
// oversized request lines and headers are refused cleanly.
func TestHostileConnections(t *testing.T) {
	base, _, _ := startBinary(t, t.TempDir(), "IMAGE_PROXY_READ_TIMEOUT=30s")
	addr := strings.TrimPrefix(base, "http://")

	var conns []net.Conn
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /rocket.jpg HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get(base + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health with 200 slow clients: %v", err)
	}
	resp.Body.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("/health took %v", d)
	}

	cases := []struct {
		name, request string
		statuses      []int
	}{
		{"huge request line", "GET /" + strings.Repeat("a", 20000) + " HTTP/1.1\r\nHost: x\r\n\r\n", []int{400, 414, 431}},
		{"huge header", "GET /rocket.jpg HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n\r\n", []int{400, 431}},
		{"many headers", "GET /rocket.jpg HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 3000) + "\r\n", []int{400, 431}},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", []int{400}},
		{"body on GET", "GET /rocket.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("z", 100000), []int{200, 400, 413}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			go io.WriteString(conn, c.request)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no HTTP answer: %v", err)
			}
			resp.Body.Close()
			ok := false
			for _, s := range c.statuses {
				ok = ok || resp.StatusCode == s
			}
			if !ok {
				t.Errorf("status %d, want one of %v", resp.StatusCode, c.statuses)
			}
		})
	}
	if resp, err := client.Get(base + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health after hostile connections: %v", err)
	}
}

// TestFIFOInRoot: a FIFO never blocks a request.
func TestFIFOInRoot(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "pipe.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, _, _ := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root)
	client := http.Client{Timeout: 2 * time.Second}
	var wg sync.WaitGroup
	for _, p := range []string{"/pipe.jpg", "/pipe.jpg?size=10", "/pipe.jpg?format=png"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(base + p)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Errorf("%s: %d, want 404", p, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
}

// TestHangUpFreesQueueSlot: a client that gives up while waiting for a
// transform slot stops occupying the queue.
func TestHangUpFreesQueueSlot(t *testing.T) {
	root := t.TempDir()
	writeNoisePNG(t, filepath.Join(root, "big.png"), 1600, 1600)
	base, _, _ := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root,
		"IMAGE_PROXY_CONCURRENCY=1", "IMAGE_PROXY_QUEUE_DEPTH=4", "IMAGE_PROXY_QUEUE_TIMEOUT=60s")
	addr := strings.TrimPrefix(base, "http://")

	// Occupy the only slot with a slow transform.
	go http.Get(base + "/big.png?format=avif&resize_algorithm=lanczos3")
	waitMetric(t, base, "image_proxy_transforms_in_flight 1")

	// A second client queues behind it, then hangs up.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /big.png?format=png&size=77 HTTP/1.1\r\nHost: x\r\n\r\n")
	waitMetric(t, base, "image_proxy_transform_queue_waiting 1")
	c.Close()
	waitMetric(t, base, "image_proxy_transform_queue_waiting 0")
}

// waitMetric polls /metrics until a line appears, for at most 10 s.
func waitMetric(t *testing.T, base, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(scrape(t, base), line+"\n") {
		if time.Now().After(deadline) {
			t.Fatalf("%q never appeared in /metrics", line)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHostileRoot throws crafted files, escape paths and an overload burst at
// the real binary: every answer is a clean status within a time bound, and
// /health still answers afterwards.
func TestHostileRoot(t *testing.T) {
	root := t.TempDir()
	png := func(w, h uint32) []byte {
		b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
		b = append(b, byte(w>>24), byte(w>>16), byte(w>>8), byte(w), byte(h>>24), byte(h>>16), byte(h>>8), byte(h), 8, 2, 0, 0, 0)
		c := crc32.ChecksumIEEE(b[12:])
		return append(b, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
	}
	rocket, _ := os.ReadFile("data/images/rocket.jpg")
	files := map[string][]byte{
		"bomb.png":   png(1000000, 1000000),
		"tall.png":   png(1, 1<<30),
		"doc.jpg":    []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"),
		"matrix.png": []byte("3 3\n1 0 0\n0 1 0\n0 0 1\n"),
		"pixels.gif": []byte("P5\n1 1\n255\n\x00"),
		"page.svg":   []byte("<html><svg/></html>"),
		"empty.webp": {},
		"cut.jpg":    rocket[:2000],
		"laughs.svg": []byte(`<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&f;</text></svg>`),
		"ok.jpg":     rocket,
	}
	for name, b := range files {
		os.WriteFile(filepath.Join(root, name), b, 0o644)
	}
	base, _, _ := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root,
		"IMAGE_PROXY_CONCURRENCY=1", "IMAGE_PROXY_QUEUE_DEPTH=2", "IMAGE_PROXY_QUEUE_TIMEOUT=500ms")
	client := http.Client{Timeout: 5 * time.Second}
	get := func(p string) (int, http.Header) {
		resp, err := client.Get(base + p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	cases := []struct {
		path   string
		status int
	}{
		{"/bomb.png?size=10", 422}, {"/tall.png?size=10", 422},
		{"/doc.jpg", 415}, {"/doc.jpg?size=10", 415},
		{"/matrix.png?format=png", 415}, {"/pixels.gif?size=5", 415},
		{"/page.svg", 415}, {"/empty.webp?size=5", 415},
		{"/cut.jpg?size=10", 422}, {"/laughs.svg?size=10", 200},
		{"/..%2f..%2fetc%2fpasswd", 404}, {"/%2e%2e/%2e%2e/etc/passwd", 404}, {"/ok.jpg%00.png", 404},
	}
	for _, c := range cases {
		start := time.Now()
		status, _ := get(c.path)
		if status != c.status && !(c.path == "/laughs.svg?size=10" && status == 422) {
			t.Errorf("%s: %d, want %d", c.path, status, c.status)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s took %v", c.path, d)
		}
	}

	// Overload: 30 distinct renders at once against one slot and a queue of 2.
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, h := get(fmt.Sprintf("/ok.jpg?size=%d&format=avif", 100+i))
			if status == 503 && (h.Get("Retry-After") == "" || h.Get("Cache-Control") != "no-store") {
				t.Errorf("503 without Retry-After/no-store: %v", h)
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[200] == 0 || counts[503] == 0 || counts[200]+counts[503] != 30 {
		t.Errorf("burst statuses %v, want only 200s and 503s, some of each", counts)
	}
	if status, _ := get("/health"); status != 200 {
		t.Errorf("/health after the attacks: %d", status)
	}
}
