package transform

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFingerprintsFollowTheBytes changes each setting in turn, renders every
// output format with and without the change, and requires that a format's
// fingerprint changes exactly when the table says, and never stays while
// the format's bytes changed. A new Config field without an entry here
// fails the test.
func TestFingerprintsFollowTheBytes(t *testing.T) {
	cases := map[string]struct {
		change func(*Config)
		moves  []Format
	}{
		"JPEGQuality":     {func(c *Config) { c.JPEGQuality = 40 }, []Format{FormatJPEG}},
		"WebPQuality":     {func(c *Config) { c.WebPQuality = 40 }, []Format{FormatWebP}},
		"WebPEffort":      {func(c *Config) { c.WebPEffort = 0 }, []Format{FormatWebP}},
		"AVIFQuality":     {func(c *Config) { c.AVIFQuality = 40 }, []Format{FormatAVIF}},
		"AVIFSpeed":       {func(c *Config) { c.AVIFSpeed = 9 }, []Format{FormatAVIF}},
		"PNGCompression":  {func(c *Config) { c.PNGCompression = 1 }, []Format{FormatPNG}},
		"MaxSourcePixels": {func(c *Config) { c.MaxSourcePixels = 10_000_000 }, nil},
		"DecodeCacheSize": {func(c *Config) { c.DecodeCacheSize = 0 }, nil},
		"DecodeCacheTTL":  {func(c *Config) { c.DecodeCacheTTL = time.Minute }, nil},
		// Persisted decodes render the direct render's bytes: their
		// settings change what a render costs, never its pixels.
		"IntermediateSize":     {func(c *Config) { c.IntermediateSize = 300 }, nil},
		"IntermediateMinBytes": {func(c *Config) { c.IntermediateMinBytes = 1 }, nil},
	}
	// A progressive and a baseline JPEG large enough that the shrink rule
	// matters, at a small and a family box, each with a source identity so
	// that the decode cache is used when it is on.
	sources := map[string][]byte{"progressive": texturedJPEG(t, 1600, 900, 21), "baseline": baselineJPEG(t, 1600, 900, 21)}
	render := func(cfg Config, src []byte, box int, f Format) []byte {
		t.Helper()
		e := New(cfg)
		defer e.Close()
		var last []byte
		for range 2 { // the second render reuses a kept decode, if any
			res, err := e.Render(context.Background(), src, Options{Box: box, Format: f, Source: "photo"})
			if err != nil {
				t.Fatal(err)
			}
			if last != nil && !bytes.Equal(last, res.Data) {
				t.Fatalf("%s %d px: a reused decode changed the bytes", f, box)
			}
			last = res.Data
		}
		return last
	}
	base := DefaultConfig()
	type shot struct {
		source string
		box    int
		f      Format
	}
	baseBytes := map[shot][]byte{}
	renderBase := func(sname string, box int, f Format) []byte {
		k := shot{sname, box, f}
		if baseBytes[k] == nil {
			baseBytes[k] = render(base, sources[sname], box, f)
		}
		return baseBytes[k]
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		c, ok := cases[name]
		if !ok {
			t.Errorf("Config.%s has no entry here: say which formats' bytes it changes", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			cfg := base
			c.change(&cfg)
			for _, f := range Outputs() {
				moved := cfg.Fingerprints().Of(f) != base.Fingerprints().Of(f)
				if moved != slices.Contains(c.moves, f) {
					t.Errorf("%s: fingerprint moved %v, want %v", f, moved, !moved)
				}
				if moved {
					continue // a moved fingerprint is right whatever the bytes
				}
				for sname, src := range sources {
					for _, box := range []int{200, 700} {
						if !bytes.Equal(renderBase(sname, box, f), render(cfg, src, box, f)) {
							t.Errorf("%s from the %s JPEG at %d px: bytes changed but the fingerprint did not", f, sname, box)
						}
					}
				}
			}
		})
	}
}

// Of joins the formats' own settings in Format order and ends with the
// pixel rule; formats that are never encoded add nothing.
func TestFingerprintsOf(t *testing.T) {
	f := DefaultConfig().Fingerprints()
	cases := []struct {
		formats []Format
		want    string
	}{
		{[]Format{FormatWebP}, "w80.4.v2"},
		{[]Format{FormatGIF, FormatPNG, FormatJPEG}, "j75.p6.g.v2"},
		{Outputs(), "j75.p6.w80.4.g.a85.6.v2"},
		{[]Format{FormatTIFF, FormatAVIF}, "a85.6.v2"},
		{nil, "v2"},
	}
	for _, c := range cases {
		if got := f.Of(c.formats...); got != c.want {
			t.Errorf("Of(%v) = %q, want %q", c.formats, got, c.want)
		}
	}
	if strings.Contains(f.Of(Outputs()...), "d1200") {
		t.Error("the decode cache's setting is still in the fingerprint")
	}
}
