package warm

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"image-proxy/request"
)

// Paths lists the files to warm under root: the given paths (relative
// to root; a directory stands for every file under it), or the whole root
// when none is given. Like requests, it leaves out hidden files and
// directories, which the server refuses to serve, and it leaves out every
// directory in skip (the disk cache may sit inside the root). A path the
// server would refuse is an error; a path that does not exist is listed,
// so it is reported as missing.
func Paths(root string, paths []string, skip []string) ([]string, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	skipped := make([]string, len(skip))
	for i, s := range skip {
		skipped[i] = resolved(s)
	}
	var out []string
	for _, p := range paths {
		rel := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(p)), "./")
		if rel != "." {
			if _, err := request.ResolvePath("/"+rel, ""); err != nil {
				return nil, fmt.Errorf("%s: not a plain path below the root (no .., hidden or absolute paths)", p)
			}
		}
		start := filepath.Join(root, filepath.FromSlash(rel))
		err := filepath.WalkDir(start, func(full string, d fs.DirEntry, err error) error {
			if err != nil {
				if full == start {
					out = append(out, rel) // missing: reported by the warm itself
					return nil
				}
				return nil // vanished or unreadable while walking: not ours to report
			}
			name := d.Name()
			if d.IsDir() {
				if full != start && strings.HasPrefix(name, ".") || slices.Contains(skipped, resolved(full)) {
					return filepath.SkipDir
				}
				return nil
			}
			if full != start && strings.HasPrefix(name, ".") || !d.Type().IsRegular() {
				return nil
			}
			r, err := filepath.Rel(root, full)
			if err == nil {
				out = append(out, filepath.ToSlash(r))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
