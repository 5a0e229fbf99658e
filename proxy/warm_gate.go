package proxy

import (
	"context"
	"time"
)

// sparePoll is how often background work looks again for spare capacity
// while live requests keep every slot busy or wait for one.
const sparePoll = 20 * time.Millisecond

// spare waits until the server has capacity nobody live needs — no request
// waits for a slot and at least one slot is free — and then lets one
// background render start. It holds none of the live requests' slots: a
// request arriving while the background render runs finds its slot free,
// so it never queues behind warm work; at worst it shares the CPU with one
// background render. Callers run one background render at a time.
func (l *limiter) spare(ctx context.Context) (func(), error) {
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
