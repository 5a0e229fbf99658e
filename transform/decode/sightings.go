package decode

import (
	"sync"
	"time"
)

// sightings remembers which decodes were asked for recently without being
// kept, so that the second render of the same load of a baseline JPEG
// keeps its decode for the ones after it, while a lone render streams as
// it would with the decode cache off (Decoder.keeps). Streaming or keeping
// decodes at the same shrink, so this changes the cost, never the pixels.
//
// Bounded in time (an entry lives one TTL) and in count (a flood of
// distinct sources forgets the oldest first).
type sightings struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	at    map[key]time.Time
	queue []sighting // oldest first: times only grow
}

type sighting struct {
	key key
	at  time.Time
}

// maxSightings bounds the memory: a key is a source identity (about 100
// bytes) and small load parameters, so 4096 of them are well under 1 MB.
const maxSightings = 4096

func newSightings(ttl time.Duration) *sightings {
	return newSightingsOf(ttl, maxSightings)
}

func newSightingsOf(ttl time.Duration, max int) *sightings {
	return &sightings{ttl: ttl, max: max, at: map[key]time.Time{}}
}

// again tells whether k was sighted within the TTL, and forgets it then
// (its decode is about to be kept); otherwise it records the sighting.
func (s *sightings) again(k key, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if t, ok := s.at[k]; ok && now.Sub(t) < s.ttl {
		delete(s.at, k)
		return true
	}
	s.at[k] = now
	s.queue = append(s.queue, sighting{k, now})
	return false
}

// sighted tells whether k was sighted within the TTL, and records it when
// it was not. Unlike again it keeps k: every later ask within the TTL of
// the first is true.
func (s *sightings) sighted(k key, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if t, ok := s.at[k]; ok && now.Sub(t) < s.ttl {
		return true
	}
	s.at[k] = now
	s.queue = append(s.queue, sighting{k, now})
	return false
}

// expire drops sightings older than the TTL and the oldest beyond max.
// s.mu is held.
func (s *sightings) expire(now time.Time) {
	n := 0
	for n < len(s.queue) && (now.Sub(s.queue[n].at) >= s.ttl || len(s.queue)-n >= s.max) {
		old := s.queue[n]
		// A key seen again since has a newer time in the map; keep that.
		if t, ok := s.at[old.key]; ok && t.Equal(old.at) {
			delete(s.at, old.key)
		}
		n++
	}
	if n > 0 {
		s.queue = append(s.queue[:0], s.queue[n:]...)
	}
}
