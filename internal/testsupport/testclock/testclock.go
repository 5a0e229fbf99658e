// Package testclock is a clock that tests move by hand, so that nothing
// that depends on time (ages, back-offs, TTLs) needs a sleep. It is test
// support: only tests import it.
package testclock

import (
	"sync"
	"time"
)

// Clock reads the time the test set; safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New is a clock at t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time, for the code under test.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
