package proxy

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// BenchmarkProfileUnderWrk serves a memory hit on loopback while wrk loads
// it once, so `go test -bench ProfileUnderWrk -benchtime 1x -cpuprofile`
// shows where a real server spends a hit's time (connections, deadlines,
// the GC), not only the handler. It needs wrk; PROFILE_WRK sets wrk's
// duration (default 5s), PROFILE_WRK_DISK=1 makes it a disk hit,
// PROFILE_WRK_URI picks the request (default a ~1 KB WebP of rocket.jpg).
func BenchmarkProfileUnderWrk(t *testing.B) {
	d := os.Getenv("PROFILE_WRK")
	if d == "" {
		d = "5s"
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

func serveWrk(t testing.TB, ts *testServer, uri, d string) {
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
