package proxy

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// TestProfileUnderWrk serves a memory hit on loopback while wrk loads it,
// so `go test -cpuprofile` shows where a real server spends a hit's time
// (connections, deadlines, the GC), not only the handler. It runs only
// with PROFILE_WRK=DURATION (for example 5s) and wrk installed;
// PROFILE_WRK_DISK=1 makes it a disk hit, PROFILE_WRK_URI picks the
// request (default a ~1 KB WebP of rocket.jpg).
func TestProfileUnderWrk(t *testing.T) {
	d := os.Getenv("PROFILE_WRK")
	if d == "" {
		t.Skip("PROFILE_WRK not set")
	}
	uri := "/rocket.jpg?size=100&format=webp"
	if u := os.Getenv("PROFILE_WRK_URI"); u != "" {
		uri = u
	}
	if os.Getenv("PROFILE_WRK_DISK") != "" {
		ts, _ := hitServer(t, uri, "HIT-DISK", diskOnly(t))
		serveWrk(t, ts, uri, d)
		return
	}
	ts, _ := hitServer(t, uri, "HIT-MEMORY", nil)
	serveWrk(t, ts, uri, d)
}

func serveWrk(t *testing.T, ts *testServer, uri, d string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.App().Listener(ln)
	defer ts.App().Shutdown()
	out, err := exec.Command("wrk", "-t2", "-c16", "-d"+d, "http://"+ln.Addr().String()+uri).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
