package decode

import (
	"strconv"
	"testing"
	"time"
)

// len is the number of sightings remembered.
func (s *sightings) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

// Sightings are bounded in number: a flood of distinct sources forgets the
// oldest, and the map never grows past the bound.
func TestSightingsBounded(t *testing.T) {
	s := newSightings(10 * time.Second)
	s.max = 100
	now := time.Unix(1_000_000, 0)
	k := func(i int) key {
		return key{source: strconv.Itoa(i), load: Load{Pages: 1, Shrink: 8}}
	}
	for i := range 1000 {
		if s.again(k(i), now) {
			t.Fatalf("source %d: seen again on first sight", i)
		}
		if n := s.len(); n > s.max {
			t.Fatalf("%d sightings kept, bound %d", n, s.max)
		}
	}
	if len(s.queue) > s.max {
		t.Errorf("queue of %d, bound %d", len(s.queue), s.max)
	}
	if s.again(k(0), now) {
		t.Error("the oldest sighting survived a flood")
	}
	if !s.again(k(999), now) {
		t.Error("the newest sighting was forgotten")
	}
	if s.again(k(999), now) {
		t.Error("a key seen again is not forgotten: its decode is kept from then on")
	}
}
