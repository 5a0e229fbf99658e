package fault

import (
	"errors"
	"fmt"
	"testing"
)

// Every kind has a row: a client status, a sentence, a metric label.
func TestEveryKindHasAnOutcome(t *testing.T) {
	for _, k := range Kinds() {
		o := k.Outcome()
		if o.Status < 400 || o.Status > 599 || o.Msg == "" || o.Label == "" {
			t.Errorf("kind %d: %+v", k, o)
		}
	}
	if Kind(250).Outcome() != Internal.Outcome() {
		t.Error("a kind beyond the table is not an internal error")
	}
}

func TestError(t *testing.T) {
	cause := errors.New("disk on fire")
	cases := []struct {
		err  error
		want string
	}{
		{New(NotFound, "", nil), "No image exists at this path."},
		{New(BadRequest, "size must be a number", nil), "size must be a number"},
		{New(StorageError, "", cause), "The image store did not return the image. (disk on fire)"},
	}
	for _, c := range cases {
		if c.err.Error() != c.want {
			t.Errorf("%q, want %q", c.err.Error(), c.want)
		}
	}
	wrapped := fmt.Errorf("reading: %w", New(StorageTimeout, "", cause))
	e, ok := As(wrapped)
	if !ok || e.Kind != StorageTimeout || !errors.Is(wrapped, cause) {
		t.Errorf("As(%v) = %+v, %v", wrapped, e, ok)
	}
	if _, ok := As(cause); ok {
		t.Error("a plain error has a kind")
	}
}
