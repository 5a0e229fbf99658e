package proxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"image-proxy/fault"
)

// Limiter bounds libvips work: at most `slots` transforms run, at most
// `depth` wait, and nobody waits longer than `timeout`. Past either bound
// the request is refused (503) instead of piling up goroutines and memory.
// Background work (warm's Gate) waits for capacity nobody live needs: Spare.
type Limiter struct {
	sem     *semaphore.Weighted
	waiting atomic.Int64
	busy    atomic.Int64 // slots held, for background work to stay out of the way (Spare)
	slots   int64
	depth   int64
	timeout time.Duration
	gauge   prometheus.Gauge
}

var errOverloaded = fault.New(fault.Overloaded, "", nil)

func newLimiter(slots, depth int, timeout time.Duration, waiting prometheus.Gauge) *Limiter {
	return &Limiter{sem: semaphore.NewWeighted(int64(slots)), slots: int64(slots), depth: int64(depth), timeout: timeout, gauge: waiting}
}

// acquire waits for a slot; the returned release must be called once.
func (l *Limiter) acquire(ctx context.Context) (func(), error) {
	if l.sem.TryAcquire(1) {
		l.busy.Add(1)
		return l.release, nil
	}
	if l.waiting.Add(1) > l.depth {
		l.waiting.Add(-1)
		return nil, errOverloaded
	}
	l.gauge.Inc()
	defer func() {
		l.waiting.Add(-1)
		l.gauge.Dec()
	}()
	wctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := l.sem.Acquire(wctx, 1); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the client left: not an overload
		}
		return nil, errOverloaded
	}
	l.busy.Add(1)
	return l.release, nil
}

func (l *Limiter) release() {
	l.busy.Add(-1)
	l.sem.Release(1)
}

// drain waits until every slot is free: renders that outlived their
// requests have finished, so libvips can be shut down under nobody.
func (l *Limiter) drain(ctx context.Context, slots int) error {
	if err := l.sem.Acquire(ctx, int64(slots)); err != nil {
		return err
	}
	l.sem.Release(int64(slots))
	return nil
}

// sparePoll is how often background work looks again for spare capacity
// while live requests keep every slot busy or wait for one.
const sparePoll = 20 * time.Millisecond

// Spare waits until the server has capacity nobody live needs — no request
// waits for a slot and at least one slot is free — and then lets one
// background render start. It holds none of the live requests' slots: a
// request arriving while the background render runs finds its slot free,
// so it never queues behind warm work; at worst it shares the CPU with one
// background render. Callers run one background render at a time.
func (l *Limiter) Spare(ctx context.Context) (func(), error) {
	t := time.NewTicker(sparePoll)
	defer t.Stop()
	for l.waiting.Load() > 0 || l.busy.Load() >= l.slots {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return func() {}, nil
}
