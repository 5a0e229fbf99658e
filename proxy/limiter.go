package proxy

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// limiter bounds libvips work: at most `slots` transforms run, at most
// `depth` wait, and nobody waits longer than `timeout`. Past either bound
// the request is refused (503) instead of piling up goroutines and memory.
type limiter struct {
	sem     *semaphore.Weighted
	waiting atomic.Int64
	depth   int64
	timeout time.Duration
}

var errOverloaded = fail(kindOverloaded, "", nil)

func newLimiter(slots, depth int, timeout time.Duration) *limiter {
	return &limiter{sem: semaphore.NewWeighted(int64(slots)), depth: int64(depth), timeout: timeout}
}

// acquire waits for a slot; the returned release must be called once.
func (l *limiter) acquire(ctx context.Context) (func(), error) {
	if l.sem.TryAcquire(1) {
		return l.release, nil
	}
	if l.waiting.Add(1) > l.depth {
		l.waiting.Add(-1)
		return nil, errOverloaded
	}
	defer l.waiting.Add(-1)
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := l.sem.Acquire(ctx, 1); err != nil {
		return nil, errOverloaded
	}
	return l.release, nil
}

func (l *limiter) release() { l.sem.Release(1) }
