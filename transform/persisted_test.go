package transform

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"image-proxy/imageformat"
	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// memDecodes is a DecodeStore in memory, as the persistent tiers would
// be: it keeps what Put gets at once and counts the reads.
type memDecodes struct {
	mu         sync.Mutex
	m          map[string][]byte
	hits, puts int
}

func newMemDecodes() *memDecodes { return &memDecodes{m: map[string][]byte{}} }

func (s *memDecodes) Get(_ context.Context, name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	if ok {
		s.hits++
	}
	return v, ok
}

func (s *memDecodes) Put(name string, d *Decoded) {
	defer d.Close()
	v, err := d.Bytes()
	if err != nil {
		panic("saving a decode: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = v
	s.puts++
}

func (s *memDecodes) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[name]
	return ok
}

func (s *memDecodes) counts() (hits, puts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits, s.puts
}

// storedReads counts the engine's reads of kept decodes: used, rejected.
type storedReads struct{ used, rejected atomic.Int64 }

func (r *storedReads) observer() Observer {
	return Observer{StoredDecode: func(used bool) {
		if used {
			r.used.Add(1)
		} else {
			r.rejected.Add(1)
		}
	}}
}

// persistingConfig keeps every decode up to 2048 px of a source of 256 KiB
// or more: the test's sources are 4000 px JPEGs (their renders up to
// 1200 px load at shrink 2 or more) and 1500 px PNGs.
func persistingConfig() Config {
	cfg := DefaultConfig()
	cfg.IntermediateSize = 2048
	cfg.IntermediateMinBytes = 256 << 10
	return cfg
}

// mosaic is the repository's photos, six tiles of 640×427 in a 3×2 grid,
// enlarged to width pixels wide: a large realistic source made in the test.
func mosaic(t testing.TB, width int) *vips.Image {
	t.Helper()
	var tiles []*vips.Image
	for _, name := range []string{"rocket.jpg", "coffee-progressive.jpg", "hubble_deep_field.jpg",
		"coffee.png", "astronaut.png", "rocket-exif-orientation-6.jpg"} {
		im := decodedOutput(t, read(t, name))
		defer im.Close()
		if err := im.Resize(640/float64(im.Width()), &vips.ResizeOptions{Vscale: 427 / float64(im.Height())}); err != nil {
			t.Fatal(err)
		}
		// In memory: the loader reads the file's bytes lazily, and the
		// tile's Close below lets them go.
		if err := vipsx.HoldInMemory(im); err != nil {
			t.Fatal(err)
		}
		tiles = append(tiles, im)
	}
	m, err := vips.NewArrayjoin(tiles, &vips.ArrayjoinOptions{Across: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Resize(float64(width)/float64(m.Width()), nil); err != nil {
		t.Fatal(err)
	}
	return m
}

// bigSources are the sources of the persisted-decode tests, made from the
// repository's photos: baseline and progressive 4000 px JPEGs, a CMYK one
// with its ICC profile, one stored turned (EXIF orientation 6), and
// 1500 px PNGs at 16 bits and with alpha.
func bigSources(t testing.TB) []struct {
	name string
	data []byte
} {
	t.Helper()
	jpeg := func(im *vips.Image, o *vips.JpegsaveBufferOptions) []byte {
		defer im.Close()
		b, err := im.JpegsaveBuffer(o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	png := func(im *vips.Image, ops ...func(*vips.Image) error) []byte {
		defer im.Close()
		for _, op := range ops {
			if err := op(im); err != nil {
				t.Fatal(err)
			}
		}
		depth := 8
		if im.BandFormat() == vips.BandFormatUshort {
			depth = 16
		}
		b, err := im.PngsaveBuffer(&vips.PngsaveBufferOptions{Compression: 1, Bitdepth: depth})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cmyk, err := vips.NewJpegloadBuffer(read(t, "rocket-cmyk.jpg"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cmyk.Interpretation() != vips.InterpretationCmyk || !cmyk.HasICCProfile() {
		t.Fatal("rocket-cmyk.jpg is not CMYK with a profile")
	}
	if err := cmyk.Resize(4000/float64(cmyk.Width()), nil); err != nil {
		t.Fatal(err)
	}
	turned := mosaic(t, 4000)
	if err := turned.SetOrientation(6); err != nil {
		t.Fatal(err)
	}
	return []struct {
		name string
		data []byte
	}{
		{"baseline", jpeg(mosaic(t, 4000), &vips.JpegsaveBufferOptions{Q: 90})},
		{"progressive", jpeg(mosaic(t, 4000), &vips.JpegsaveBufferOptions{Q: 90, Interlace: true})},
		{"cmyk", jpeg(cmyk, &vips.JpegsaveBufferOptions{Q: 90})},
		{"orientation-6", jpeg(turned, &vips.JpegsaveBufferOptions{Q: 90})},
		{"png-16bit", png(mosaic(t, 1500), func(im *vips.Image) error { return im.Colourspace(vips.InterpretationRgb16, nil) })},
		{"png-alpha", png(mosaic(t, 1500), withAlpha)},
	}
}

// withAlpha adds an alpha band that varies over the picture (its green).
func withAlpha(im *vips.Image) error {
	a, err := im.Copy(nil)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.ExtractBand(1, nil); err != nil {
		return err
	}
	j, err := vips.NewBandjoin([]*vips.Image{im, a})
	if err != nil {
		return err
	}
	vipsx.Take(im, j)
	return nil
}

// persistedShapes are the renders of the table: boxes from 160 to 1200,
// a width alone, crops (compass and smart gravity), lanczos3.
var persistedShapes = []struct {
	name string
	opts Options
}{
	{"box160", Options{Box: 160}},
	{"box400", Options{Box: 400}},
	{"box800", Options{Box: 800}},
	{"box1200", Options{Box: 1200}},
	{"width640", Options{Width: 640}},
	{"cover-north", Options{Width: 500, Height: 300, Fit: FitCover, Gravity: imageformat.GravityNorth}},
	{"cover-smart", Options{Width: 300, Height: 300, Fit: FitCover, Gravity: GravitySmart}},
	{"lanczos3", Options{Box: 600, Algorithm: AlgorithmLanczos3}},
}

// loadOf is the load e's render of opts decodes src at.
func loadOf(t testing.TB, e *Engine, src []byte, opts Options) decode.Load {
	s, err := e.open(src, "")
	if err != nil {
		t.Fatal(err)
	}
	return planFor(s, opts).load
}

// keepIn renders src with opts twice as the source called id, so that st
// keeps the decode: it is kept by the second render of a load of a source
// (Decoder.KeepsNow).
func keepIn(t testing.TB, e *Engine, src []byte, opts Options, st DecodeStore, id string) {
	t.Helper()
	opts.Source, opts.Decodes = id, st
	for range 2 {
		if _, err := e.Render(context.Background(), src, opts); err != nil {
			t.Fatal(err)
		}
	}
}

// keeps is 1 when e keeps the decode a render of opts loads, else 0.
func keeps(t testing.TB, e *Engine, src []byte, opts Options) int {
	s, err := e.open(src, "")
	if err != nil {
		t.Fatal(err)
	}
	if e.storesDecode(s, planFor(s, opts).load) {
		return 1
	}
	return 0
}

// TestPersistedDecodeRendersTheSameBytes: for a table of sources, shapes
// and formats, a render from a persisted decode is byte for byte the
// direct render (so its SSIM against it is 1), and it did read the
// persisted decode.
func TestPersistedDecodeRendersTheSameBytes(t *testing.T) {
	cfg := persistingConfig()
	direct := New(cfg)
	defer direct.Close()
	var reads storedReads
	through := NewObserved(cfg, reads.observer())
	defer through.Close()
	n := 0
	render := func(e *Engine, src []byte, opts Options, st DecodeStore) Result {
		t.Helper()
		n++
		opts.Source, opts.Decodes = "render "+strconv.Itoa(n), st // never the decode cache's
		r, err := e.Render(context.Background(), src, opts)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, src := range bigSources(t) {
		st := newMemDecodes()
		cells := 0
		for _, sh := range persistedShapes {
			for _, out := range []Format{FormatWebP, FormatJPEG, FormatPNG, FormatAVIF} {
				if out == FormatAVIF && max(sh.opts.Box, sh.opts.Width, sh.opts.Height) > 500 {
					continue // AVIF's encoder is slow; its small sizes stand for it
				}
				opts := sh.opts
				opts.Format = out
				name := fmt.Sprintf("%s %s %s", src.name, sh.name, out)
				want := render(direct, src.data, opts, nil)
				stored := keeps(t, through, src.data, opts)
				if l := loadOf(t, through, src.data, opts); stored == 1 && !st.has(decodeName(l)) {
					keepIn(t, through, src.data, opts, st, "keep "+name)
				}
				before := reads.used.Load()
				got := render(through, src.data, opts, st)
				if reads.used.Load() != before+int64(stored) {
					t.Fatalf("%s: the render read %d persisted decodes, want %d", name, reads.used.Load()-before, stored)
				} else {
					cells += stored
				}
				if !bytes.Equal(got.Data, want.Data) {
					t.Errorf("%s: %d bytes from the persisted decode, %d direct: not the same", name, len(got.Data), len(want.Data))
				}
				if s := ssim(t, decodedOutput(t, want.Data), decodedOutput(t, got.Data)); s < 0.99 {
					t.Errorf("%s: SSIM %.4f against the direct render, want ≥ 0.99", name, s)
				}
			}
		}
		if _, puts := st.counts(); puts == 0 || cells == 0 {
			t.Errorf("%s: no decode kept", src.name)
		}
	}
	if r := reads.rejected.Load(); r != 0 {
		t.Errorf("%d persisted decodes rejected", r)
	}
}

// ssim is the mean structural similarity of the luma of two images of one
// size (Gaussian window, σ 1.5, Wang et al.'s constants), computed with
// libvips' arithmetic.
func ssim(t testing.TB, a, b *vips.Image) float64 {
	t.Helper()
	defer a.Close()
	defer b.Close()
	const c1, c2 = (0.01 * 255) * (0.01 * 255), (0.03 * 255) * (0.03 * 255)
	if a.Width() != b.Width() || a.Height() != b.Height() || a.Bands() != b.Bands() {
		t.Fatalf("%d×%d×%d against %d×%d×%d", a.Width(), a.Height(), a.Bands(), b.Width(), b.Height(), b.Bands())
	}
	var made []*vips.Image
	defer func() {
		for _, im := range made {
			im.Close()
		}
	}()
	// of is a new image: im, then each operation on it.
	of := func(im *vips.Image, ops ...func(*vips.Image) error) *vips.Image {
		c, err := im.Copy(nil)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, c)
		for _, op := range ops {
			if err := op(c); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	toFloat := func(im *vips.Image) error { return im.Cast(vips.BandFormatFloat, nil) }
	blur := func(im *vips.Image) error {
		return im.Gaussblur(1.5, &vips.GaussblurOptions{Precision: vips.PrecisionFloat})
	}
	times := func(o *vips.Image) func(*vips.Image) error {
		return func(im *vips.Image) error { return im.Multiply(o) }
	}
	plus := func(o *vips.Image) func(*vips.Image) error { return func(im *vips.Image) error { return im.Add(o) } }
	minus := func(o *vips.Image) func(*vips.Image) error {
		return func(im *vips.Image) error { return im.Subtract(o) }
	}
	linear := func(k, c float64) func(*vips.Image) error {
		return func(im *vips.Image) error { return im.Linear([]float64{k}, []float64{c}, nil) }
	}
	luma := func(im *vips.Image) error { return im.Colourspace(vips.InterpretationBW, nil) }
	x, y := of(a, luma, toFloat), of(b, luma, toFloat)
	mx, my := of(x, blur), of(y, blur)
	xx, yy, xy := of(x, times(x), blur), of(y, times(y), blur), of(x, times(y), blur)
	mxmy, mx2, my2 := of(mx, times(my)), of(mx, times(mx)), of(my, times(my))
	num := of(mxmy, linear(2, c1), times(of(xy, minus(mxmy), linear(2, c2))))
	den := of(mx2, plus(my2), linear(1, c1), times(of(xx, plus(yy), minus(mx2), minus(my2), linear(1, c2))))
	m, err := of(num, func(im *vips.Image) error { return im.Divide(den) }).Avg()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSSIMTellsApart: the measure is 1 for the same image and well under
// 0.99 for a visibly different one, so the bound above means something.
func TestSSIMTellsApart(t *testing.T) {
	e := New(DefaultConfig())
	sharp, err := e.Render(context.Background(), read(t, "rocket.jpg"), Options{Box: 200, Format: FormatPNG})
	if err != nil {
		t.Fatal(err)
	}
	blurred, err := e.Render(context.Background(), read(t, "rocket.jpg"), Options{Box: 200, Format: FormatPNG, Blur: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	if s := ssim(t, decodedOutput(t, sharp.Data), decodedOutput(t, sharp.Data)); s < 0.9999 {
		t.Errorf("SSIM of an image with itself: %.5f", s)
	}
	if s := ssim(t, decodedOutput(t, sharp.Data), decodedOutput(t, blurred.Data)); s > 0.95 {
		t.Errorf("SSIM of an image with its blur: %.4f, want well under 0.99", s)
	}
}

// TestDamagedPersistedDecodeIsAMiss: a kept decode that is cut short,
// has a byte flipped, is empty, or is the decode of another load is not
// used: the render decodes the source, returns the direct render's
// bytes, and keeps a good decode in its place.
func TestDamagedPersistedDecodeIsAMiss(t *testing.T) {
	m := mosaic(t, 2000)
	src, err := m.JpegsaveBuffer(&vips.JpegsaveBufferOptions{Q: 90})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg := persistingConfig()
	var reads storedReads
	e := NewObserved(cfg, reads.observer())
	defer e.Close()
	n := 0
	render := func(opts Options, st DecodeStore) []byte {
		t.Helper()
		n++
		opts.Source, opts.Decodes = "render "+strconv.Itoa(n), st
		r, err := e.Render(context.Background(), src, opts)
		if err != nil {
			t.Fatal(err)
		}
		return r.Data
	}
	opts, other := Options{Box: 400, Format: FormatWebP}, Options{Box: 160, Format: FormatWebP}
	name := decodeName(loadOf(t, e, src, opts))
	if name == decodeName(loadOf(t, e, src, other)) || keeps(t, e, src, opts) != 1 || keeps(t, e, src, other) != 1 {
		t.Fatal("the two renders should keep two decodes")
	}
	want := render(opts, nil)
	good := newMemDecodes()
	keepIn(t, e, src, opts, good, "keep 400")
	keepIn(t, e, src, other, good, "keep 160")
	kept, wrong := good.m[name], good.m[decodeName(loadOf(t, e, src, other))]
	flip := func(i int) []byte {
		b := bytes.Clone(kept)
		b[i] ^= 0x10
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"half", kept[:len(kept)/2]},
		{"last bytes cut", kept[:len(kept)-5]},
		{"a pixel flipped", flip(len(kept) / 2)},
		{"the header flipped", flip(20)},
		{"the metadata flipped", flip(len(kept) - 40)},
		{"empty", nil},
		{"another load's decode", wrong},
	} {
		st := newMemDecodes()
		st.m[name] = c.data
		before := reads.rejected.Load()
		// Two renders of one source: a baseline JPEG's decode is kept from
		// the second (Decoder.KeepsNow); each rejects the damaged one.
		for i := range 2 {
			n++
			opts.Source, opts.Decodes = "case "+c.name, st
			got, err := e.Render(context.Background(), src, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Data, want) {
				t.Errorf("%s, render %d: not the direct render's bytes", c.name, i+1)
			}
		}
		if reads.rejected.Load() != before+2 {
			t.Errorf("%s: the kept decode was rejected %d times, want 2", c.name, reads.rejected.Load()-before)
		}
		if !bytes.Equal(st.m[name], kept) {
			t.Errorf("%s: the render did not keep a good decode in its place", c.name)
		}
	}
}

// TestWhichDecodesAreKept: a decode is kept for a still raster source of
// at least the minimum size, when its longest side is at most the
// setting's, and never with the setting at 0.
func TestWhichDecodesAreKept(t *testing.T) {
	m := mosaic(t, 2000)
	big, err := m.JpegsaveBuffer(&vips.JpegsaveBufferOptions{Q: 90})
	if err != nil {
		t.Fatal(err)
	}
	webp, err := m.WebpsaveBuffer(&vips.WebpsaveBufferOptions{Q: 90})
	m.Close()
	if err != nil || int64(len(webp)) < persistingConfig().IntermediateMinBytes {
		t.Fatalf("the WebP source: %d bytes, %v", len(webp), err)
	}
	off := persistingConfig()
	off.IntermediateSize = 0
	small := persistingConfig()
	small.IntermediateSize = 400
	for _, c := range []struct {
		name string
		cfg  Config
		src  []byte
		opts Options
		want int
	}{
		{"a 2000 px JPEG at 400 px: its 500 px decode", persistingConfig(), big, Options{Box: 400}, 1},
		{"at its full size: a 2000 px decode", persistingConfig(), big, Options{}, 1},
		{"with a 400 px side: a 500 px decode is not", small, big, Options{Box: 400}, 0},
		{"a 250 px decode is", small, big, Options{Box: 160}, 1},
		{"off", off, big, Options{Box: 400}, 0},
		{"a source under the minimum", persistingConfig(), read(t, "rocket.jpg"), Options{Box: 100}, 0},
		{"an animation", persistingConfig(), read(t, "astronaut-animated.gif"), Options{Box: 100}, 0},
		{"a WebP (loads at the output's scale)", persistingConfig(), webp, Options{Box: 400}, 0},
		{"an SVG", persistingConfig(), read(t, "variants/badge.svg"), Options{Box: 100}, 0},
	} {
		e := New(c.cfg)
		if got := keeps(t, e, c.src, c.opts); got != c.want {
			t.Errorf("%s: kept %d, want %d", c.name, got, c.want)
		}
		e.Close()
	}
}

// TestManyAndFactsUsePersistedDecodes: warm's RenderMany and format=json's
// Describe read a kept decode and keep the ones they make, with the bytes
// and facts of the direct path.
func TestManyAndFactsUsePersistedDecodes(t *testing.T) {
	m := mosaic(t, 2000)
	src, err := m.JpegsaveBuffer(&vips.JpegsaveBufferOptions{Q: 90, Interlace: true})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	var reads storedReads
	e := NewObserved(persistingConfig(), reads.observer())
	defer e.Close()
	opts := []Options{{Box: 160, Format: FormatWebP}, {Box: 400, Format: FormatJPEG}, {Width: 300, Height: 300, Fit: FitCover, Format: FormatAVIF}}
	direct, errs := e.RenderMany(context.Background(), src, opts)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := newMemDecodes()
	for i := range opts {
		opts[i].Decodes = st
	}
	e.RenderMany(context.Background(), src, opts) // keeps the decode
	if _, puts := st.counts(); puts != 1 {
		t.Fatalf("%d decodes kept, want the one the three share", puts)
	}
	got, errs := e.RenderMany(context.Background(), src, opts)
	for i := range opts {
		if errs[i] != nil || !bytes.Equal(got[i].Data, direct[i].Data) {
			t.Errorf("option %d from the kept decode: %v, same bytes %v", i, errs[i], bytes.Equal(got[i].Data, direct[i].Data))
		}
	}
	if reads.used.Load() != 1 {
		t.Errorf("RenderMany read %d kept decodes, want 1", reads.used.Load())
	}
	// Describe's placeholders load at their own shrink: kept by the second
	// description of the source, read back by another source's.
	want, err := e.Describe(context.Background(), src, Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"describe", "describe", "described after"} {
		f, err := e.Describe(context.Background(), src, Options{Decodes: st, Source: id}, false)
		if err != nil || f.Placeholders != want.Placeholders {
			t.Errorf("Describe %d through the store: %v, placeholders %+v, want %+v", i, err, f.Placeholders, want.Placeholders)
		}
	}
	if reads.used.Load() != 2 {
		t.Errorf("Describe read %d kept decodes, want 1", reads.used.Load()-1)
	}
}

// TestWhenDecodesAreKept: a decode is kept by the first render that
// decodes after a first render of the same load of the same source (a
// photo asked once costs what it did before), whatever the format; a
// render of another source or another load does not count. The decode
// cache is off, so every render decodes. Every render gives the direct
// render's bytes.
func TestWhenDecodesAreKept(t *testing.T) {
	cfg := persistingConfig()
	cfg.DecodeCacheSize = 0
	e := New(cfg)
	defer e.Close()
	srcs := map[string][]byte{}
	for _, s := range bigSources(t) {
		srcs[s.name] = s.data
	}
	small, large := Options{Box: 160, Format: FormatWebP}, Options{Box: 1200, Format: FormatWebP}
	type render struct {
		id   string
		opts Options
	}
	for _, c := range []struct {
		source  string
		renders []render
		puts    []int // the store's puts after each render
	}{
		{"progressive", []render{{"p", small}, {"p", small}, {"p", small}}, []int{0, 1, 1}},
		{"png-alpha", []render{{"a", small}, {"a", small}}, []int{0, 1}},
		{"baseline", []render{{"b", small}, {"b", small}, {"b", small}}, []int{0, 1, 1}},
		{"baseline", []render{{"b", small}, {"other", small}, {"b", large}, {"b", small}}, []int{0, 0, 0, 1}},
		{"baseline", []render{{"c", small}, {"c", large}, {"c", large}, {"c", small}}, []int{0, 0, 1, 2}},
	} {
		st := newMemDecodes()
		for i, r := range c.renders {
			opts := r.opts
			opts.Source, opts.Decodes = r.id+"|"+c.source+"|"+strconv.Itoa(len(c.puts)), st
			got, err := e.Render(context.Background(), srcs[c.source], opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := e.Render(context.Background(), srcs[c.source], r.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Data, want.Data) {
				t.Errorf("%s render %d: not the direct render's bytes", c.source, i+1)
			}
			if _, puts := st.counts(); puts != c.puts[i] {
				t.Errorf("%s render %d (%s): %d decodes kept, want %d", c.source, i+1, r.id, puts, c.puts[i])
			}
		}
	}
}

// TestKeptFromTheDecodeCache: with the decode cache on, a progressive
// JPEG's first render holds its decode there without keeping it; the
// second render of the source, served by the decode cache, keeps that
// decode (a save, not a decode), and the third keeps nothing more.
func TestKeptFromTheDecodeCache(t *testing.T) {
	e := New(persistingConfig())
	defer e.Close()
	var src []byte
	for _, s := range bigSources(t) {
		if s.name == "progressive" {
			src = s.data
		}
	}
	st := newMemDecodes()
	for i, want := range []int{0, 1, 1} {
		opts := Options{Box: 160 + 40*i, Format: FormatWebP, Source: "cached", Decodes: st}
		if _, err := e.Render(context.Background(), src, opts); err != nil {
			t.Fatal(err)
		}
		if _, puts := st.counts(); puts != want {
			t.Errorf("render %d: %d decodes kept, want %d", i+1, puts, want)
		}
	}
}
