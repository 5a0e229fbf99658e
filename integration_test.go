package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests start the real binary on loopback and talk to it over TCP.

func TestBinaryServesAndLogsJSON(t *testing.T) {
	p := startBinary(t, t.TempDir(), "IMAGE_PROXY_LOG_FORMAT=json", "IMAGE_PROXY_LOG_LEVEL=debug")
	client := http.Client{Timeout: hangGuard}
	for _, path := range []string{"/rocket.jpg", "/rocket.jpg?size=50&format=webp", "/nope.jpg", "/rocket.jpg?size=0"} {
		resp, err := client.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logs.String())
	}
	requests := 0
	for _, m := range jsonLogLines(t, p.logs.String()) {
		if m["msg"] == "request" {
			requests++
		}
	}
	if requests != 4 {
		t.Errorf("%d request log lines, want 4:\n%s", requests, p.logs.String())
	}
}

// jsonLogLines decodes every line of a JSON log, in order.
func jsonLogLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// TestGracefulShutdown sends SIGTERM while a slow transform is running: the
// response must arrive whole and the process must exit 0. That the render
// really was running at the signal is proved, not assumed: the in-flight
// gauge reads 1 before the signal is sent, and the request is logged after
// the server logged that it was shutting down, i.e. after it had the signal.
func TestGracefulShutdown(t *testing.T) {
	root := t.TempDir()
	// About 2 s of CPU to encode at full size (far longer on a loaded
	// machine): the signal, sent right after the render is seen starting,
	// lands while it runs.
	const side = 1600
	writeNoisePNG(t, filepath.Join(root, "big.png"), side, side)
	p := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root,
		"IMAGE_PROXY_LOG_FORMAT=json", "IMAGE_PROXY_LOG_LEVEL=debug",
		// The drain and the write wait as long as the render needs, however
		// loaded the machine: this test is about order, not speed.
		"IMAGE_PROXY_SHUTDOWN_TIMEOUT=10m", "IMAGE_PROXY_WRITE_TIMEOUT=10m")

	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		client := http.Client{Timeout: hangGuard}
		resp, err := client.Get(p.base + "/big.png?format=avif")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, b, err}
	}()
	waitMetric(t, p.base, "image_proxy_transforms_in_flight 1")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(hangGuard):
		t.Fatalf("no response within %v:\n%s", hangGuard, p.logs.String())
	}
	if r.err != nil || r.status != 200 {
		t.Fatalf("in-flight response: %v status %d, %d bytes\n%s", r.err, r.status, len(r.body), p.logs.String())
	}
	if w, h, ok := avifSize(r.body); !ok || w != side || h != side {
		t.Errorf("in-flight response is not a whole %dx%d AVIF: %dx%d (%v), %d bytes", side, side, w, h, ok, len(r.body))
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logs.String())
	}

	shutdown, request := -1, -1
	for i, m := range jsonLogLines(t, p.logs.String()) {
		switch {
		case m["msg"] == "shutting down" && shutdown < 0:
			shutdown = i
		case m["msg"] == "request" && m["path"] == "/big.png":
			request = i
		case m["level"] == "ERROR", m["msg"] == "renders still running at the end of the drain time":
			t.Errorf("unexpected log line: %v", m)
		}
	}
	if shutdown < 0 || request < 0 || request < shutdown {
		t.Errorf("the render's request is log line %d, \"shutting down\" line %d: the render had ended before the signal\n%s",
			request, shutdown, p.logs.String())
	}
}

// avifSize reads the ispe (image spatial extent) property of an AVIF.
func avifSize(b []byte) (w, h int, ok bool) {
	if len(b) < 12 || string(b[4:12]) != "ftypavif" {
		return 0, 0, false
	}
	i := bytes.Index(b, []byte("ispe"))
	if i < 0 || i+16 > len(b) {
		return 0, 0, false
	}
	be32 := func(b []byte) int { return int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3]) }
	return be32(b[i+8:]), be32(b[i+12:]), true
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
	// The read timeout is far beyond the hang guard: only serving /health
	// alongside the slow clients, not waiting for their timeout to free a
	// worker, answers it in time.
	p := startBinary(t, t.TempDir(), "IMAGE_PROXY_READ_TIMEOUT=1h")
	addr := strings.TrimPrefix(p.base, "http://")

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
	client := http.Client{Timeout: hangGuard}
	resp, err := client.Get(p.base + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health with 200 slow clients: %v", err)
	}
	resp.Body.Close()
	// …while every slow client is still connected and unanswered: /health
	// did not get its turn by the server giving up on them.
	for i, c := range conns {
		if state := peek(t, c); state != "open" {
			t.Fatalf("slow client %d: %s after /health answered", i, state)
		}
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
			conn.SetDeadline(time.Now().Add(hangGuard))
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
	if resp, err := client.Get(p.base + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health after hostile connections: %v", err)
	}
}

// peek says whether the server has answered ("data"), closed ("closed") or
// left alone ("open") a connection, without consuming or waiting.
func peek(t *testing.T, c net.Conn) string {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	state := ""
	err = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			state = "open"
		case err != nil:
			state = "closed (" + err.Error() + ")"
		case n == 0:
			state = "closed"
		default:
			state = "data"
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// TestFIFOInRoot: a FIFO never blocks a request. Opening it would block
// until a writer came, which none does: only the hang guard would end it.
func TestFIFOInRoot(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "pipe.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root)
	client := http.Client{Timeout: hangGuard}
	var wg sync.WaitGroup
	for _, path := range []string{"/pipe.jpg", "/pipe.jpg?size=10", "/pipe.jpg?format=png"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(p.base + path)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Errorf("%s: %d, want 404", path, resp.StatusCode)
			}
		}()
	}
	wg.Wait() // each client gives up at hangGuard
}

// TestHangUpFreesQueueSlot: a client that gives up while waiting for a
// transform slot stops occupying the queue.
func TestHangUpFreesQueueSlot(t *testing.T) {
	root := t.TempDir()
	writeNoisePNG(t, filepath.Join(root, "big.png"), 1600, 1600)
	p := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root,
		"IMAGE_PROXY_CONCURRENCY=1", "IMAGE_PROXY_QUEUE_DEPTH=4", "IMAGE_PROXY_QUEUE_TIMEOUT=1h")
	addr := strings.TrimPrefix(p.base, "http://")

	// Occupy the only slot with a slow transform.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /big.png?format=avif HTTP/1.1\r\nHost: x\r\n\r\n")
	waitMetric(t, p.base, "image_proxy_transforms_in_flight 1")

	// A second client queues behind it, then hangs up. The queue timeout
	// is far beyond the hang guard: only the hang-up can empty the queue.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /big.png?format=png&size=77 HTTP/1.1\r\nHost: x\r\n\r\n")
	waitMetric(t, p.base, "image_proxy_transform_queue_waiting 1")
	c.Close()
	waitMetric(t, p.base, "image_proxy_transform_queue_waiting 0")
}

func scrape(base string) string {
	client := http.Client{Timeout: hangGuard}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitMetric polls /metrics until a line appears, failing after hangGuard.
// The poll observes the server's state; no ordering depends on its interval.
func waitMetric(t *testing.T, base, line string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !strings.Contains(scrape(base), line+"\n") {
		if time.Now().After(deadline) {
			t.Fatalf("%q never appeared in /metrics", line)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serverCPU is the CPU time (user+system) the server process has used so
// far, from /proc in USER_HZ ticks (100 per second on Linux). Unlike wall
// time it does not grow when the machine is shared.
func serverCPU(t *testing.T, p *binaryProcess) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", p.cmd.Process.Pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// TestHostileRoot throws crafted files, escape paths and an overload burst at
// the real binary: every answer is a clean status for a bounded amount of
// work, and /health still answers afterwards.
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
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := startBinary(t, t.TempDir(), "IMAGE_PROXY_ROOT_PATH="+root,
		"IMAGE_PROXY_CONCURRENCY=1", "IMAGE_PROXY_QUEUE_DEPTH=2", "IMAGE_PROXY_QUEUE_TIMEOUT=500ms")
	client := http.Client{Timeout: hangGuard}
	// try is for every goroutine: it reports instead of calling t.Fatal.
	try := func(path string) (int, http.Header, error) {
		resp, err := client.Get(p.base + path)
		if err != nil {
			return 0, nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header, nil
	}
	cases := []struct {
		path   string
		status int
	}{
		{"/bomb.png?size=10", 422}, {"/tall.png?size=10", 422},
		{"/doc.jpg", 415}, {"/doc.jpg?size=10", 415},
		{"/matrix.png?format=png", 415}, {"/pixels.gif?size=5", 415},
		{"/page.svg", 415}, {"/empty.webp?size=5", 415},
		// libxml2's amplification check refuses the 10^6-character expansion.
		{"/cut.jpg?size=10", 422}, {"/laughs.svg?size=10", 422},
		{"/..%2f..%2fetc%2fpasswd", 404}, {"/%2e%2e/%2e%2e/etc/passwd", 404}, {"/ok.jpg%00.png", 404},
	}
	for _, c := range cases {
		before := serverCPU(t, p)
		status, _, err := try(c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if status != c.status {
			t.Errorf("%s: %d, want %d", c.path, status, c.status)
		}
		// Milliseconds of work each, for a bound of 2 s: decoding what the
		// bombs claim (10^12 and 10^9 pixels) would take minutes.
		if used := serverCPU(t, p) - before; used > 2*time.Second {
			t.Errorf("%s: the server used %v of CPU", c.path, used)
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
			status, h, err := try(fmt.Sprintf("/ok.jpg?size=%d&format=avif", 100+i))
			if err != nil {
				t.Errorf("burst request %d: %v", i, err)
				return
			}
			if status == 503 && (h.Get("Retry-After") == "" || h.Get("Cache-Control") != "no-store") {
				t.Errorf("503 without Retry-After/no-store: %v", h)
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		}()
	}
	wg.Wait() // each client gives up at hangGuard
	if counts[200] == 0 || counts[503] == 0 || counts[200]+counts[503] != 30 {
		t.Errorf("burst statuses %v, want only 200s and 503s, some of each", counts)
	}
	if status, _, err := try("/health"); err != nil || status != 200 {
		t.Errorf("/health after the attacks: %d %v", status, err)
	}
}
