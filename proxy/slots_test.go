package proxy

import (
	"runtime"
	"testing"
)

// The default follows GOMAXPROCS, which follows a container's CPU limit,
// not the node's CPU count; an explicit IMAGE_PROXY_CONCURRENCY wins.
func TestSlotsFollowGOMAXPROCS(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, c := range []struct {
		name                   string
		gomaxprocs, configured int
		want                   int
	}{
		{"default, one proc", 1, 0, 1},
		{"default, three procs", 3, 0, 3},
		{"configured wins", 3, 7, 7},
		{"configured below procs", 3, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			runtime.GOMAXPROCS(c.gomaxprocs)
			if got := (Config{Concurrency: c.configured}).Slots(); got != c.want {
				t.Errorf("GOMAXPROCS=%d IMAGE_PROXY_CONCURRENCY=%d: %d slots, want %d", c.gomaxprocs, c.configured, got, c.want)
			}
		})
	}
}
