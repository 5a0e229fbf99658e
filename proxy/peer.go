package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// peerCheckEvery is how often a request that is still waiting or rendering
// checks whether its client hung up. Requests finishing sooner (every cache
// hit) never pay for a check.
const peerCheckEvery = 100 * time.Millisecond

// peerContext returns a context cancelled when the client closes its
// connection. fasthttp does not report a hang-up while a handler runs, so we
// peek at the socket: a zero-byte read without error means the peer sent
// FIN. Peeking consumes nothing, so a pipelined next request is unharmed.
// stop must be called when the handler is done.
func peerContext(parent context.Context, conn net.Conn) (ctx context.Context, stop func()) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return parent, func() {}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return parent, func() {}
	}
	ctx, cancel := context.WithCancel(parent)
	var (
		mu      sync.Mutex
		timer   *time.Timer
		stopped bool
	)
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if peerGone(raw) {
			cancel()
			return
		}
		timer.Reset(peerCheckEvery)
	}
	mu.Lock()
	timer = time.AfterFunc(peerCheckEvery, check)
	mu.Unlock()
	return ctx, func() {
		mu.Lock()
		stopped = true
		timer.Stop()
		mu.Unlock()
		cancel()
	}
}

func peerGone(raw syscall.RawConn) bool {
	gone := false
	var buf [1]byte
	// Control, not Read: Read honours the read deadline fasthttp set for the
	// request, and would stop checking once it passed.
	err := raw.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n == 0 && err == nil:
			gone = true
		case err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR):
			gone = true // ECONNRESET and friends
		}
	})
	return gone || err != nil
}
