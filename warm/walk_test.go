package warm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPaths: the files a warm walks are those a request could name: no
// hidden file or directory, nothing under a skipped directory (the disk
// cache inside the root), no symbolic link; a path given that does not
// exist is listed (to be reported missing), one that is not a plain path
// below the root is refused.
func TestPaths(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a.jpg", "dir/b.png", "dir/sub/c.webp", ".hidden.jpg", "dir/.h/d.jpg", "cache/e.jpg"} {
		full := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "a.jpg"), filepath.Join(root, "link.jpg")); err != nil {
		t.Fatal(err)
	}
	skip := []string{filepath.Join(root, "cache")}
	for _, c := range []struct {
		paths []string
		want  []string
		bad   string
	}{
		{nil, []string{"a.jpg", "dir/b.png", "dir/sub/c.webp"}, ""},
		{[]string{"dir"}, []string{"dir/b.png", "dir/sub/c.webp"}, ""},
		{[]string{"./dir/sub/", "a.jpg", "a.jpg"}, []string{"a.jpg", "dir/sub/c.webp"}, ""},
		{[]string{"cache"}, nil, ""},
		{[]string{"missing.jpg"}, []string{"missing.jpg"}, ""},
		{[]string{"../elsewhere"}, nil, "../elsewhere"},
		{[]string{"dir/.h/d.jpg"}, nil, "dir/.h/d.jpg"},
		{[]string{"/etc"}, nil, "/etc"},
	} {
		got, err := Paths(root, c.paths, skip)
		switch {
		case c.bad == "" && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("%q: %q %v, want %q", c.paths, got, err, c.want)
		case c.bad != "" && (err == nil || !strings.HasPrefix(err.Error(), c.bad+": not a plain path below the root")):
			t.Errorf("%q: %q %v, want an error naming %s", c.paths, got, err, c.bad)
		}
	}
}
