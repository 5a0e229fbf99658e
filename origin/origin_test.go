package origin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"image-proxy/fault"
)

// fixed is a source that answers every path with one result.
func fixed(o Original, err error) sourceFunc {
	return func(rel string) (Original, Body, error) {
		if err != nil {
			return Original{}, nil, err
		}
		o.Rel = rel
		return o, NewMemoryBody([]byte("bytes")), nil
	}
}

// TestChain: the first source that has the path answers; ErrMissing asks
// the next; any other error ends the search; nobody having it is a 404.
func TestChain(t *testing.T) {
	ctx := context.Background()
	here := fixed(Original{Size: 5, Identity: "here"}, nil)
	also := fixed(Original{Size: 5, Identity: "also"}, nil)
	missing := fixed(Original{}, ErrMissing)
	broken := fixed(Original{}, fault.New(fault.StorageError, "", nil))
	cases := []struct {
		name  string
		chain Chain
		want  string     // identity; empty: an error
		kind  fault.Kind // of the error
	}{
		{"first has it", Chain{here, also}, "here", 0},
		{"missing asks the next", Chain{missing, missing, also}, "also", 0},
		{"an error ends the search", Chain{broken, here}, "", fault.StorageError},
		{"nobody has it", Chain{missing, missing}, "", fault.NotFound},
		{"no sources", Chain{}, "", fault.NotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, src, err := c.chain.Stat(ctx, "a.jpg")
			ob, b, openErr := c.chain.Open(ctx, "a.jpg")
			if b != nil {
				b.Close()
			}
			if c.want != "" {
				if err != nil || openErr != nil || o.Identity != c.want || ob.Identity != c.want || src == nil {
					t.Fatalf("Stat %+v %v, Open %+v %v; want %q", o, err, ob, openErr, c.want)
				}
				return
			}
			if kindOf(err) != c.kind || kindOf(openErr) != c.kind || errors.Is(err, ErrMissing) {
				t.Errorf("Stat %v, Open %v; want kind %v", err, openErr, c.kind)
			}
		})
	}
}

// TestReadAll: an original is read whole from the source that described
// it, and refused over the limit; one gone since it was described is a 404
// rather than a reason to ask another source.
func TestReadAll(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rocket := readImage(t, "rocket.jpg")
	must(t, os.WriteFile(filepath.Join(root, "a.jpg"), rocket, 0o644))
	must(t, os.WriteFile(filepath.Join(root, "empty.jpg"), nil, 0o644))
	local, err := OpenLocal(root)
	must(t, err)
	t.Cleanup(func() { local.Close() })

	o, err := local.Stat(ctx, "a.jpg")
	must(t, err)
	if data, err := ReadAll(ctx, local, o, o.Size); err != nil || string(data) != string(rocket) {
		t.Errorf("whole: %d bytes, %v", len(data), err)
	}
	if _, err := ReadAll(ctx, local, o, o.Size-1); kindOf(err) != fault.SourceTooBig {
		t.Errorf("over the limit: %v, want SourceTooBig", err)
	}
	empty, err := local.Stat(ctx, "empty.jpg")
	must(t, err)
	if data, err := ReadAll(ctx, local, empty, 10); err != nil || len(data) != 0 {
		t.Errorf("empty file: %d bytes, %v", len(data), err)
	}
	must(t, os.Remove(filepath.Join(root, "a.jpg")))
	if _, err := ReadAll(ctx, local, o, o.Size); kindOf(err) != fault.NotFound {
		t.Errorf("gone since described: %v, want NotFound", err)
	}
	mem := fixed(Original{Size: 5, Identity: "m"}, nil)
	if data, err := ReadAll(ctx, mem, Original{Rel: "m.jpg", Size: 5}, 5); err != nil || string(data) != "bytes" {
		t.Errorf("from memory: %q, %v", data, err)
	}
	// Any source: bytes of another version than the one described are
	// refused, so a render keyed on the old identity never stores them.
	if data, err := ReadAll(ctx, mem, Original{Rel: "m.jpg", Size: 5, Identity: "old"}, 5); !errors.Is(err, ErrChanged) || kindOf(err) != fault.Overloaded || data != nil {
		t.Errorf("replaced since described: %q, %v; want no bytes and ErrChanged (503)", data, err)
	}
}
