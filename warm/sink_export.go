package warm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"image-proxy/imageformat"
	"image-proxy/origin"
	"image-proxy/placeholder"
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
	// Placeholders are format=json's for this source (placeholders.go);
	// absent from manifests written before they existed.
	Placeholders *placeholder.Set `json:"placeholders,omitempty"`
}

// ManifestVariant is one exported file.
type ManifestVariant struct {
	File   string  `json:"file"`             // relative to the export directory or prefix
	Preset string  `json:"preset,omitempty"` // the preset it is, ?preset=Preset; empty for a size
	Size   int     `json:"size"`
	DPR    float64 `json:"dpr"`
	Format string  `json:"format"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	Bytes  int     `json:"bytes"`
	// ETag is the live server's ETag for the same URL: it changes with the
	// source's identity and every setting that changes the bytes, so a
	// second run re-exports exactly what changed. Manifests written before
	// it existed lack it; their files are judged by the source's size and
	// time alone.
	ETag string `json:"etag,omitempty"`
}

// ExportSink writes variants as static files, into a directory
// (NewExportSink) or a bucket (NewS3ExportSink), and keeps their manifest.
// Naming, skipping and the manifest are the same for both; only where the
// bytes go differs (exportFiles).
type ExportSink struct {
	files exportFiles
	mu    sync.Mutex
	old   map[string]ManifestSource // the manifest found at the start
	new   map[string]ManifestSource // sources touched by this run
	gone  map[string]bool           // sources removed by this run (Remove)
}

// exportFiles is where an export's files live: a directory or a prefix of
// a bucket. Names are slash-separated and relative to it.
type exportFiles interface {
	// readManifest returns the manifest's bytes and its version, for a
	// conditional write; nil and "" when there is none.
	readManifest(ctx context.Context) ([]byte, string, error)
	// writeManifest replaces the manifest if it is still at version
	// ("": still absent), else fails with errManifestChanged. A store
	// with one writer (a directory) may ignore the version.
	writeManifest(ctx context.Context, b []byte, version string) error
	// size is the stored size of the file name, false when it is missing.
	size(ctx context.Context, name string) (int64, bool)
	// write stores the file name whole: readers see the old bytes or the
	// new ones.
	write(ctx context.Context, name string, data []byte, f imageformat.Format) error
	// remove deletes the file name; a missing one is no error.
	remove(ctx context.Context, name string) error
}

// errManifestChanged: someone else wrote the manifest since it was read.
var errManifestChanged = errors.New("the manifest changed while it was written")

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
	return newExportSink(context.Background(), dirFiles(dir))
}

// newExportSink is the sink over files, with the manifest it holds.
func newExportSink(ctx context.Context, files exportFiles) (*ExportSink, error) {
	sink := &ExportSink{files: files, old: map[string]ManifestSource{}, new: map[string]ManifestSource{}, gone: map[string]bool{}}
	b, _, err := files.readManifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	sink.old = parseManifest(b)
	return sink, nil
}

// parseManifest is the sources of a manifest by path; a damaged or
// missing one is empty: its files are rendered again.
func parseManifest(b []byte) map[string]ManifestSource {
	out := map[string]ManifestSource{}
	var m Manifest
	if b != nil && json.Unmarshal(b, &m) == nil {
		for _, src := range m.Sources {
			out[src.Source] = src
		}
	}
	return out
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

// exportName is <path-without-ext>-<size>[@<dpr>x].<ext> for a size, and
// <path-without-ext>-<preset>.<ext> for a preset, slash-separated; ext is
// the output format's name.
func exportName(rel string, it Item, f imageformat.Format) string {
	base := strings.TrimSuffix(rel, path.Ext(rel)) + "-"
	if it.Preset != "" {
		return base + it.Preset + "." + f.String()
	}
	base += strconv.Itoa(it.Size)
	if it.DPR != 1 {
		base += "@" + strconv.FormatFloat(it.DPR, 'f', -1, 64) + "x"
	}
	return base + "." + f.String()
}

// sameSource reports whether src describes o: the same bytes and time.
func sameSource(src ManifestSource, o origin.Original) bool {
	return src.Bytes == o.Size && src.Modified.Equal(o.ModTime)
}

// recorded is the manifest's entry of it for o, if a manifest (this
// run's, else the one found) records it for this very source: a preset by
// its name (its format may follow the source's), a size by its file name,
// and the variant's ETag when the entry has one.
func (e *ExportSink) recorded(o origin.Original, it Item) (ManifestVariant, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	etag := it.Variant.ETag()
	for _, m := range []map[string]ManifestSource{e.new, e.old} {
		src, ok := m[o.Rel]
		if !ok || !sameSource(src, o) {
			continue
		}
		for _, v := range src.Variants {
			slot := v.Preset == it.Preset && (it.Preset != "" || v.File == exportName(o.Rel, it, it.Format))
			if slot && (v.ETag == "" || v.ETag == etag) {
				return v, true
			}
		}
	}
	return ManifestVariant{}, false
}

// Has: the file exists with the size the manifest recorded for this very
// source (same bytes and modification time, and the same live ETag).
func (e *ExportSink) Has(ctx context.Context, o origin.Original, it Item) bool {
	v, ok := e.recorded(o, it)
	if !ok {
		return false
	}
	if n, ok := e.files.size(ctx, v.File); !ok || n != int64(v.Bytes) {
		return false
	}
	e.record(o, v)
	return true
}

// Put writes the file and records it in this run's manifest.
func (e *ExportSink) Put(ctx context.Context, o origin.Original, it Item, res transform.Result) error {
	name := exportName(o.Rel, it, res.Format)
	if err := e.files.write(ctx, name, res.Data, res.Format); err != nil {
		return err
	}
	e.record(o, ManifestVariant{File: name, Preset: it.Preset, Size: it.Size, DPR: it.DPR, Format: res.Format.String(),
		Width: res.Width, Height: res.Height, Bytes: len(res.Data), ETag: it.Variant.ETag()})
	return nil
}

// record adds v to this run's entry of o, replacing one for the same file.
func (e *ExportSink) record(o origin.Original, v ManifestVariant) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.gone, o.Rel) // uploaded again after a Remove
	src, ok := e.new[o.Rel]
	if !ok || !sameSource(src, o) {
		src = ManifestSource{Source: o.Rel, Bytes: o.Size, Modified: o.ModTime}
		if old, ok := e.old[o.Rel]; ok && sameSource(old, o) {
			src.Placeholders = old.Placeholders // still this source's
		}
	}
	src.Variants = slices.DeleteFunc(src.Variants, func(x ManifestVariant) bool { return x.File == v.File })
	src.Variants = append(src.Variants, v)
	slices.SortFunc(src.Variants, func(a, b ManifestVariant) int { return strings.Compare(a.File, b.File) })
	e.new[o.Rel] = src
}

// NeedsPlaceholders: neither this run nor the manifest found has
// placeholders for this version of the source.
func (e *ExportSink) NeedsPlaceholders(o origin.Original) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range []map[string]ManifestSource{e.new, e.old} {
		if src, ok := m[o.Rel]; ok && sameSource(src, o) && src.Placeholders != nil {
			return false
		}
	}
	return true
}

// PutPlaceholders records p in this run's entry of o.
func (e *ExportSink) PutPlaceholders(o origin.Original, p placeholder.Set) {
	e.mu.Lock()
	defer e.mu.Unlock()
	src, ok := e.new[o.Rel]
	if !ok || !sameSource(src, o) {
		src = ManifestSource{Source: o.Rel, Bytes: o.Size, Modified: o.ModTime}
	}
	src.Placeholders = &p
	e.new[o.Rel] = src
}

// flushAttempts bounds how often Flush reads the manifest again because
// another writer (a replica handling another event) replaced it meanwhile.
const flushAttempts = 8

// Remove deletes the files exported for the source at rel and drops it
// from the manifest (at the next Flush): a deleted original's static
// variants must not stay public. It returns how many files it removed.
func (e *ExportSink) Remove(ctx context.Context, rel string) (int, error) {
	b, _, err := e.files.readManifest(ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	e.mu.Lock()
	var files []string
	for _, m := range []map[string]ManifestSource{parseManifest(b), e.old, e.new} {
		for _, v := range m[rel].Variants {
			if !slices.Contains(files, v.File) {
				files = append(files, v.File)
			}
		}
	}
	delete(e.old, rel)
	delete(e.new, rel)
	e.gone[rel] = true
	e.mu.Unlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, e.files.remove(ctx, f))
	}
	return len(files), errors.Join(errs...)
}

// Flush writes the manifest: the sources this run touched over those of
// the manifest as it is now (another run or replica may have added some
// since this one started). Where the store has conditional writes (a
// bucket), a manifest replaced between the read and the write is read
// again, so no writer's sources are lost.
func (e *ExportSink) Flush() error {
	ctx := context.Background()
	for range flushAttempts {
		b, version, err := e.files.readManifest(ctx)
		if err != nil {
			return fmt.Errorf("read %s: %w", ManifestFile, err)
		}
		all := parseManifest(b)
		e.mu.Lock()
		maps.Copy(all, e.new)
		for rel := range e.gone {
			delete(all, rel)
		}
		e.mu.Unlock()
		m := Manifest{Sources: []ManifestSource{}}
		for _, k := range slices.Sorted(maps.Keys(all)) {
			m.Sources = append(m.Sources, all[k])
		}
		out, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		if err = e.files.writeManifest(ctx, append(out, '\n'), version); !errors.Is(err, errManifestChanged) {
			return err
		}
	}
	return fmt.Errorf("write %s: %w %d times in a row", ManifestFile, errManifestChanged, flushAttempts)
}

// dirFiles is an export directory.
type dirFiles string

func (d dirFiles) full(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

func (d dirFiles) readManifest(context.Context) ([]byte, string, error) {
	b, err := os.ReadFile(d.full(ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	return b, "", err
}

// writeManifest ignores version: a directory has one writer, the run.
func (d dirFiles) writeManifest(_ context.Context, b []byte, _ string) error {
	return writeAtomic(d.full(ManifestFile), b)
}

func (d dirFiles) size(_ context.Context, name string) (int64, bool) {
	fi, err := os.Stat(d.full(name))
	if err != nil {
		return 0, false
	}
	return fi.Size(), true
}

func (d dirFiles) remove(_ context.Context, name string) error {
	if err := os.Remove(d.full(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (d dirFiles) write(_ context.Context, name string, data []byte, _ imageformat.Format) error {
	return writeAtomic(d.full(name), data)
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
