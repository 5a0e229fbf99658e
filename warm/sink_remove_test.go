package warm

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"image-proxy/imageformat"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

// TestExportRemove: a deleted source's exported files go, its manifest
// entry with them, and another source's stay; an upload after the
// removal is exported again.
func TestExportRemove(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	sink, err := NewExportSink(dir, t.TempDir())
	must(t, err)
	mod := time.Unix(1700000000, 0).UTC()
	cat := origin.Original{Rel: "cat.jpg", Size: 100, ModTime: mod, Identity: "file:cat|1"}
	dog := origin.Original{Rel: "dog.jpg", Size: 200, ModTime: mod, Identity: "file:dog|1"}
	vs := request.Variants{MaxBox: 4000}
	item := func(o origin.Original, size int) Item {
		req := request.Request{Transform: true, Size: size, DPR: 1, Output: request.Output{Format: imageformat.WebP}}
		return Item{Size: size, DPR: 1, Format: imageformat.WebP, Variant: vs.Of(o.Identity, req, "")}
	}
	res := transform.Result{Data: []byte("RIFF....WEBP"), Format: imageformat.WebP, Width: 10, Height: 10}
	for _, o := range []origin.Original{cat, dog} {
		must(t, sink.Put(ctx, o, item(o, 100), res))
		must(t, sink.Put(ctx, o, item(o, 200), res))
	}
	must(t, sink.Flush())

	later, err := NewExportSink(dir, t.TempDir()) // the deletion comes to a later run
	must(t, err)
	n, err := later.Remove(ctx, "cat.jpg")
	if err != nil || n != 2 {
		t.Fatalf("Remove = %d, %v; want 2", n, err)
	}
	must(t, later.Flush())
	for name, want := range map[string]bool{"cat-100.webp": false, "cat-200.webp": false, "dog-100.webp": true, "dog-200.webp": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s exists: %t, want %t", name, err == nil, want)
		}
	}
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	must(t, err)
	must(t, json.Unmarshal(b, &m))
	if len(m.Sources) != 1 || m.Sources[0].Source != "dog.jpg" {
		t.Errorf("manifest after the removal: %s", b)
	}
	if n, err := later.Remove(ctx, "never.jpg"); n != 0 || err != nil {
		t.Errorf("removing an unknown source: %d, %v", n, err)
	}
	must(t, later.Put(ctx, cat, item(cat, 100), res)) // uploaded again
	must(t, later.Flush())
	b, err = os.ReadFile(filepath.Join(dir, ManifestFile))
	must(t, err)
	must(t, json.Unmarshal(b, &m))
	if len(m.Sources) != 2 {
		t.Errorf("manifest after a new upload: %s", b)
	}
}
