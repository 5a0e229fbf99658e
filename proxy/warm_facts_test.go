package proxy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"image-proxy/transform"
	"image-proxy/warm"
)

// TestWarmManifestHasPlaceholders: an export's manifest.json records, per
// source, the placeholders format=json answers for it; a second run that
// renders nothing keeps them, and a manifest written before them gains
// them without any variant rendered again.
func TestWarmManifestHasPlaceholders(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "../data/images", root)
	env := newWarmEnv(t, root, nil)
	out := t.TempDir()
	spec := warm.Spec{Sizes: []int{100}, DPRs: []float64{1}, Formats: []transform.Format{transform.FormatWebP}}
	rels := []string{"rocket.jpg", "coffee.png"}
	run := func() warm.Result {
		w := env.exportWarmer(t, out, spec)
		var last warm.Result
		w.Run(context.Background(), slices.Values(rels), 1, func(r warm.Result) {
			if r.Err != nil {
				t.Errorf("%s: %v", r.Rel, r.Err)
			}
			last.Rendered += r.Rendered
		})
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return last
	}
	run()
	check := func(when string) {
		m := readManifest(t, out)
		for _, rel := range rels {
			_, f := getFacts(t, env.testServer, "/"+rel+"?format=json")
			i := slices.IndexFunc(m.Sources, func(s warm.ManifestSource) bool { return s.Source == rel })
			if i < 0 || m.Sources[i].Placeholders == nil || *m.Sources[i].Placeholders != f.Placeholders {
				t.Errorf("%s: %s: manifest's placeholders are not format=json's %+v", when, rel, f.Placeholders)
			}
		}
	}
	check("first run")
	if r := run(); r.Rendered != 0 {
		t.Errorf("second run rendered %d", r.Rendered)
	}
	check("second run")
	// A manifest from before placeholders: they are added, nothing rendered.
	m := readManifest(t, out)
	for i := range m.Sources {
		m.Sources[i].Placeholders = nil
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(out, warm.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(); r.Rendered != 0 {
		t.Errorf("an old manifest: %d rendered", r.Rendered)
	}
	check("an old manifest")
}

func readManifest(t *testing.T, dir string) warm.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, warm.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m warm.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
