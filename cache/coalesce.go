package cache

import (
	"context"
	"sync"
)

// flights makes concurrent calls for one key share one execution. Unlike
// singleflight, the shared work runs on a context of its own that is
// cancelled only when every caller waiting for it has gone: one impatient
// client cannot spoil the render for the others, and a render nobody waits
// for any more stops (and frees its queue slot).
type flights struct {
	mu    sync.Mutex
	calls map[string]*flight
}

type flight struct {
	done    chan struct{}
	val     []byte
	status  Status
	err     error
	waiters int
	cancel  context.CancelFunc
}

type work func(ctx context.Context) ([]byte, Status, error)

func (g *flights) do(ctx context.Context, key string, fn work) ([]byte, Status, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flight{}
	}
	f, ok := g.calls[key]
	if !ok {
		// Keep the caller's values (loggers, trace ids) but not its cancellation.
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = f
		go func() {
			f.val, f.status, f.err = fn(fctx)
			g.mu.Lock()
			delete(g.calls, key)
			g.mu.Unlock()
			cancel()
			close(f.done)
		}()
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.val, f.status, f.err
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			f.cancel()
		}
		g.mu.Unlock()
		return nil, StatusMiss, ctx.Err()
	}
}
