package warm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"image-proxy/origin"
	"image-proxy/transform"
)

// ManifestFile is the name of the export's index, at the top of its directory.
const ManifestFile = "manifest.json"

// Manifest lists every exported source with its variants: what a static
// site build needs to write srcset attributes.
type Manifest struct {
	Sources []ManifestSource `json:"sources"`
}

// ManifestSource is one original and the files made from it.
type ManifestSource struct {
	Source   string            `json:"source"` // path relative to the root
	Bytes    int64             `json:"bytes"`
	Modified time.Time         `json:"modified"`
	Variants []ManifestVariant `json:"variants"`
}

// ManifestVariant is one exported file.
type ManifestVariant struct {
	File   string  `json:"file"` // relative to the export directory
	Size   int     `json:"size"`
	DPR    float64 `json:"dpr"`
	Format string  `json:"format"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	Bytes  int     `json:"bytes"`
}

// ExportSink writes variants as static files under its directory and keeps
// their manifest.
type ExportSink struct {
	dir string
	mu  sync.Mutex
	old map[string]ManifestSource // the manifest found at the start
	new map[string]ManifestSource // sources touched by this run
}

// ErrOutInsideRoot refuses an export directory the walk would read again.
var ErrOutInsideRoot = errors.New("the output directory is inside the root, where its files would be read again as sources")

// NewExportSink writes static files under dir, picking up the manifest a
// former run left there. dir must not lie inside root, the local origin's
// directory, whose files a warm walks.
func NewExportSink(dir, root string) (*ExportSink, error) {
	if InsideRoot(dir, root) {
		return nil, ErrOutInsideRoot
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sink := &ExportSink{dir: dir, old: map[string]ManifestSource{}, new: map[string]ManifestSource{}}
	if b, err := os.ReadFile(filepath.Join(dir, ManifestFile)); err == nil {
		var m Manifest
		if json.Unmarshal(b, &m) == nil {
			for _, src := range m.Sources {
				sink.old[src.Source] = src
			}
		}
	}
	return sink, nil
}

// InsideRoot reports whether dir is root or lies under it, symbolic links
// resolved as far as they exist.
func InsideRoot(dir, root string) bool {
	d, r := resolved(dir), resolved(root)
	rel, err := filepath.Rel(r, d)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolved is p absolute, with the symbolic links of its longest existing
// prefix resolved.
func resolved(p string) string {
	p, _ = filepath.Abs(p)
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// exportName is <path-without-ext>-<size>[@<dpr>x].<ext>, slash-separated.
func exportName(rel string, it Item) string {
	base := strings.TrimSuffix(rel, path.Ext(rel)) + "-" + strconv.Itoa(it.Size)
	if it.DPR != 1 {
		base += "@" + strconv.FormatFloat(it.DPR, 'f', -1, 64) + "x"
	}
	return base + "." + it.Format.String()
}

// Has: the file exists with the size the manifest recorded for this very
// source (same bytes and modification time).
func (e *ExportSink) Has(_ context.Context, o origin.Original, it Item) bool {
	e.mu.Lock()
	src, ok := e.old[o.Rel]
	e.mu.Unlock()
	if !ok || src.Bytes != o.Size || !src.Modified.Equal(o.ModTime) {
		return false
	}
	name := exportName(o.Rel, it)
	i := slices.IndexFunc(src.Variants, func(v ManifestVariant) bool { return v.File == name })
	if i < 0 {
		return false
	}
	fi, err := os.Stat(filepath.Join(e.dir, filepath.FromSlash(name)))
	if err != nil || fi.Size() != int64(src.Variants[i].Bytes) {
		return false
	}
	e.record(o, src.Variants[i])
	return true
}

// Put writes the file and records it in this run's manifest.
func (e *ExportSink) Put(_ context.Context, o origin.Original, it Item, res transform.Result) error {
	name := exportName(o.Rel, it)
	if err := writeAtomic(filepath.Join(e.dir, filepath.FromSlash(name)), res.Data); err != nil {
		return err
	}
	e.record(o, ManifestVariant{File: name, Size: it.Size, DPR: it.DPR, Format: res.Format.String(),
		Width: res.Width, Height: res.Height, Bytes: len(res.Data)})
	return nil
}

// record adds v to this run's entry of o, replacing one for the same file.
func (e *ExportSink) record(o origin.Original, v ManifestVariant) {
	e.mu.Lock()
	defer e.mu.Unlock()
	src, ok := e.new[o.Rel]
	if !ok || src.Bytes != o.Size || !src.Modified.Equal(o.ModTime) {
		src = ManifestSource{Source: o.Rel, Bytes: o.Size, Modified: o.ModTime}
	}
	src.Variants = slices.DeleteFunc(src.Variants, func(x ManifestVariant) bool { return x.File == v.File })
	src.Variants = append(src.Variants, v)
	slices.SortFunc(src.Variants, func(a, b ManifestVariant) int { return strings.Compare(a.File, b.File) })
	e.new[o.Rel] = src
}

// Flush writes the manifest: the sources this run touched, and those of
// the manifest it found that it did not.
func (e *ExportSink) Flush() error {
	e.mu.Lock()
	all := maps.Clone(e.old)
	maps.Copy(all, e.new)
	e.mu.Unlock()
	m := Manifest{Sources: []ManifestSource{}}
	for _, k := range slices.Sorted(maps.Keys(all)) {
		m.Sources = append(m.Sources, all[k])
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(e.dir, ManifestFile), append(b, '\n'))
}

// writeAtomic writes b to a temporary file beside name and renames it into
// place: an interrupted export leaves the old file or the new one, whole.
func writeAtomic(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".warm-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	return nil
}
