package transform

import (
	"bytes"
	"context"
	"testing"
)

// TestOptionsQuality: Options.Quality replaces the format's configured
// quality; 0 keeps the setting; formats without a quality ignore it; the
// many-variant path honours it too.
func TestOptionsQuality(t *testing.T) {
	src := read(t, "rocket.jpg")
	cfg := DefaultConfig()
	tr := New(cfg)
	render := func(f Format, q int) []byte {
		t.Helper()
		res, err := tr.Render(context.Background(), src, Options{Box: 200, Format: f, Quality: q})
		if err != nil {
			t.Fatal(err)
		}
		if p := inspect(t, res.Data); p.w != 200 || Sniff(res.Data) != f {
			t.Fatalf("%s q%d: %+v", f, q, p)
		}
		return res.Data
	}
	for _, c := range []struct {
		f       Format
		setting int
	}{{FormatJPEG, cfg.JPEGQuality}, {FormatWebP, cfg.WebPQuality}, {FormatAVIF, cfg.AVIFQuality}} {
		deflt, same, low, high := render(c.f, 0), render(c.f, c.setting), render(c.f, 10), render(c.f, 100)
		if !bytes.Equal(deflt, same) {
			t.Errorf("%s: Quality %d differs from the setting %d", c.f, c.setting, c.setting)
		}
		if !(len(low) < len(deflt) && len(deflt) < len(high)) {
			t.Errorf("%s: sizes at quality 10, %d, 100: %d, %d, %d", c.f, c.setting, len(low), len(deflt), len(high))
		}
	}
	for _, f := range []Format{FormatPNG, FormatGIF} {
		if !bytes.Equal(render(f, 0), render(f, 10)) {
			t.Errorf("%s has no quality, yet Quality changed it", f)
		}
	}
	many, errs := tr.RenderMany(context.Background(), src, []Options{{Box: 200, Format: FormatJPEG, Quality: 10}, {Box: 200, Format: FormatJPEG}})
	if errs[0] != nil || errs[1] != nil || len(many[0].Data) >= len(many[1].Data) {
		t.Errorf("RenderMany: %v %v, sizes %d (q10) and %d", errs[0], errs[1], len(many[0].Data), len(many[1].Data))
	}
}
