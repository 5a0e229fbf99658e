package transform

import (
	"bytes"
	"context"
	"testing"
)

// A baseline JPEG's lone variant streams at its own shrink, exactly as with
// the decode cache off; the second variant needing the same load keeps the
// decode, the third and later reuse it; a variant needing another shrink
// starts its own count. The bytes are the cache-off bytes every time.
func TestBaselineLoneVariantStreams(t *testing.T) {
	ce := newCachingEngine(t, 128<<20)
	off := DefaultConfig()
	off.DecodeCacheSize = 0
	plain := New(off)
	src := baselineJPEG(t, 2400, 1350, 11)
	steps := []struct {
		opts          Options
		decodes, hits int64 // through the cache, after this render
	}{
		{Options{Box: 300, Format: FormatWebP}, 0, 0},  // shrink 8, first sight: streamed
		{Options{Box: 300, Format: FormatAVIF}, 1, 0},  // shrink 8 again: decoded and kept
		{Options{Box: 250, Format: FormatJPEG}, 1, 1},  // shrink 8: reused
		{Options{Box: 1200, Format: FormatWebP}, 1, 1}, // shrink 2, first sight: streamed
		{Options{Box: 1000, Format: FormatWebP}, 2, 1}, // shrink 2 again: kept
		{Options{Box: 1200, Format: FormatAVIF}, 2, 2}, // reused
		{Options{Box: 300, Format: FormatPNG}, 2, 3},   // shrink 8 still kept: reused
	}
	for i, s := range steps {
		s.opts.Source = "baseline photo"
		got, err := ce.Render(context.Background(), src, s.opts)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if n, h := ce.decodeCount(), ce.hits.Load(); n != s.decodes || h != s.hits {
			t.Errorf("step %d (box %d %s): %d decodes and %d hits through the cache, want %d and %d",
				i, s.opts.Box, s.opts.Format, n, h, s.decodes, s.hits)
		}
		want, err := plain.Render(context.Background(), src, Options{Box: s.opts.Box, Format: s.opts.Format})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, want.Data) {
			t.Errorf("step %d (box %d %s): bytes differ from the render with the decode cache off", i, s.opts.Box, s.opts.Format)
		}
	}
	if ce.DecodeCacheBytes() == 0 {
		t.Error("nothing kept after the second sightings")
	}
}

// A lone variant of a new baseline source keeps nothing, and its sighting
// is forgotten after the TTL: the next variant streams again.
func TestBaselineSightingExpires(t *testing.T) {
	ce := newCachingEngine(t, 128<<20)
	src := baselineJPEG(t, 2400, 1350, 12)
	render := func() {
		t.Helper()
		if _, err := ce.Render(context.Background(), src, Options{Box: 300, Format: FormatWebP, Source: "once"}); err != nil {
			t.Fatal(err)
		}
	}
	render()
	if ce.DecodeCacheBytes() != 0 || ce.decodeCount() != 0 {
		t.Fatalf("a lone baseline variant kept %d bytes (%d decodes)", ce.DecodeCacheBytes(), ce.decodeCount())
	}
	ce.clock.Advance(DefaultConfig().DecodeCacheTTL)
	render()
	if ce.decodeCount() != 0 {
		t.Errorf("a sighting older than the TTL made the next variant keep its decode")
	}
}
