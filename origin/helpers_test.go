package origin

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// hangGuard bounds every wait of these tests for an event that only a
// regression can prevent: it turns a hang into a failure, and says nothing
// about speed (nothing here comes near it, even on a loaded machine).
const hangGuard = 30 * time.Second

// eventually polls cond until it holds, failing the test after hangGuard.
// Polling observes state the code publishes; no ordering depends on the
// interval.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, hangGuard)
		}
		time.Sleep(time.Millisecond)
	}
}

// receive waits for one value from ch, failing the test after hangGuard.
func receive[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("%s: not after %v", what, hangGuard)
		var zero T
		return zero
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readImage is one of the project's test images.
func readImage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "data", "images", name))
	must(t, err)
	return b
}
