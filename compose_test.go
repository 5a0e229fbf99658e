package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"image-proxy/internal/testsupport/miniotest"
)

// countingRelay forwards loopback TCP connections to target and counts
// them: the connections a client opened to the store.
type countingRelay struct {
	addr   string
	opened atomic.Int64
}

func newCountingRelay(t *testing.T, target string) *countingRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &countingRelay{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			r.opened.Add(1)
			out, err := net.DialTimeout("tcp", target, hangGuard)
			if err != nil {
				in.Close()
				continue
			}
			wg.Add(2)
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
	return r
}

// TestOneS3ConnectionPool: the S3 source and the shared result tier use
// one client, so requests one after another that read originals from the
// bucket and results from and into it keep one connection to the store.
// (Two clients kept a pool each: two connections from the first request.)
func TestOneS3ConnectionPool(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "pool")
	rocket, err := os.ReadFile("data/images/rocket.jpg")
	if err != nil {
		t.Fatal(err)
	}
	srv.Put(t, bucket, "originals/rocket.jpg", rocket)
	relay := newCountingRelay(t, strings.TrimPrefix(srv.Endpoint, "http://"))
	p := startBinary(t, t.TempDir(),
		"IMAGE_PROXY_ROOT_PATH="+filepath.Join(t.TempDir(), "no-root"),
		"IMAGE_PROXY_S3_ENDPOINT=http://"+relay.addr, "IMAGE_PROXY_S3_BUCKET="+bucket,
		"IMAGE_PROXY_S3_ACCESS_KEY="+srv.AccessKey, "IMAGE_PROXY_S3_SECRET_KEY="+srv.SecretKey,
		"IMAGE_PROXY_S3_PREFIX=originals/", "IMAGE_PROXY_S3_RESULT_PREFIX=results/")
	// A transform miss asks the source (HEAD, GET) and the tier (GET, the
	// lease, PUT); a passthrough asks the source alone.
	for _, target := range []string{"/rocket.jpg?size=50", "/rocket.jpg", "/rocket.jpg?size=60", "/rocket.jpg"} {
		a := get(t, p.base+target)
		if a.status != 200 || (strings.Contains(target, "size") && a.cache != "MISS") {
			t.Fatalf("%s: %d %s, want 200 (MISS for a transform)", target, a.status, a.cache)
		}
		if n := relay.opened.Load(); n != 1 {
			t.Fatalf("after %s: %d connections to the store, want 1", target, n)
		}
	}
}
