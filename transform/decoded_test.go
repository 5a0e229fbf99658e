package transform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"image-proxy/internal/testsupport/testclock"
	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
)

// cachingEngine has a decode cache of budget bytes on a fake clock, counts
// the decodes it runs, and records the largest size the cache reported.
// beforeDecode, when a test sets it before its renders start, runs before
// each of those decodes.
type cachingEngine struct {
	*Engine
	clock           *testclock.Clock
	hits, misses    atomic.Int64
	largest, latest atomic.Int64
	decodes         atomic.Int64
	beforeDecode    func()
}

func newCachingEngine(t *testing.T, budget int64) *cachingEngine {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DecodeCacheSize = budget
	ce := &cachingEngine{clock: testclock.New(time.Unix(1_000_000, 0))}
	ce.Engine = newEngine(cfg, decode.Options{Now: ce.clock.Now, Decoding: ce.decoding, Observer: Observer{
		DecodeLookup: func(hit bool) {
			if hit {
				ce.hits.Add(1)
			} else {
				ce.misses.Add(1)
			}
		},
		DecodeBytes: func(n int64) {
			ce.latest.Store(n)
			for {
				old := ce.largest.Load()
				if n <= old || ce.largest.CompareAndSwap(old, n) {
					break
				}
			}
		},
	}})
	t.Cleanup(ce.Close)
	return ce
}

// decoding is the decode layer's hook: before each decode through the cache.
func (ce *cachingEngine) decoding() {
	ce.decodes.Add(1)
	if ce.beforeDecode != nil {
		ce.beforeDecode()
	}
}

func (ce *cachingEngine) decodeCount() int64 { return ce.decodes.Load() }

// texturedJPEG is a progressive JPEG: the kind whose decode the cache
// keeps from the first render (decode.Decoder's keeps). baselineJPEG is the same picture
// in one scan.
func texturedJPEG(t testing.TB, w, h int, seed int) []byte {
	t.Helper()
	return progressive(t, baselineJPEG(t, w, h, seed))
}

// progressive re-encodes a JPEG in several scans.
func progressive(t testing.TB, jpg []byte) []byte {
	t.Helper()
	im, err := vips.NewJpegloadBuffer(jpg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	out, err := im.JpegsaveBuffer(&vips.JpegsaveBufferOptions{Q: 90, Interlace: true})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// baselineJPEG is a w×h baseline JPEG with detail at every scale, so a
// different shrink-on-load gives different pixels.
func baselineJPEG(t testing.TB, w, h int, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8((x*7 + y*13 + seed) ^ (x * y >> 5))
			img.Set(x, y, color.RGBA{v, uint8(x + seed), uint8(y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func reuseOptions() []Options {
	var opts []Options
	for _, box := range []int{0, 40, 150, 333, 1200, 5000} {
		for _, f := range []Format{FormatWebP, FormatJPEG, FormatAVIF} {
			opts = append(opts, Options{Box: box, Format: f})
		}
	}
	for _, a := range []Algorithm{AlgorithmLanczos3, AlgorithmThumbnail} {
		opts = append(opts, Options{Box: 100, Format: FormatWebP, Algorithm: a}, Options{Box: 300, Format: FormatPNG, Algorithm: a})
	}
	return opts
}

// A variant's bytes do not depend on whether its decode was reused, nor
// on which variants came before it: a fresh decode for every render, one
// shared decode in one order and in the reverse order, and the streaming
// path (no source identity) all give the same bytes.
func TestDecodeReuseIsByteIdentical(t *testing.T) {
	sources := manySources(t)
	// Large enough that the decode cache's shrink rule matters (shrink 2
	// for every box up to 1200 px, where alone 150 px would shrink by 8);
	// fewer options, as its full-size AVIFs would take minutes.
	sources["large jpeg"] = texturedJPEG(t, 2400, 1350, 0)
	sources["large baseline jpeg"] = baselineJPEG(t, 2400, 1350, 0)
	large := []Options{{Box: 150, Format: FormatWebP}, {Box: 150, Format: FormatAVIF}, {Box: 333, Format: FormatJPEG},
		{Box: 1200, Format: FormatWebP}, {Box: 1800, Format: FormatWebP}, {Box: 100, Format: FormatPNG, Algorithm: AlgorithmThumbnail}}
	ctx := context.Background()
	for name, src := range sources {
		opts := reuseOptions()
		if name == "large jpeg" || name == "large baseline jpeg" {
			opts = large
		}
		t.Run(name, func(t *testing.T) {
			fresh, forward, backward := newCachingEngine(t, 128<<20), newCachingEngine(t, 128<<20), newCachingEngine(t, 128<<20)
			want := make([][]byte, len(opts))
			for i, o := range opts {
				streamed := o
				res, err := fresh.Render(ctx, src, streamed)
				if err != nil {
					t.Fatalf("%+v: %v", o, err)
				}
				want[i] = res.Data
				o.Source = fmt.Sprintf("fresh-%d", i)
				if res, err = fresh.Render(ctx, src, o); err != nil || !bytes.Equal(res.Data, want[i]) {
					t.Errorf("%+v: a fresh cached decode differs from the streamed render (%v)", o, err)
				}
			}
			for _, e := range []struct {
				engine *cachingEngine
				order  func(i int) int
			}{
				{forward, func(i int) int { return i }},
				{backward, func(i int) int { return len(opts) - 1 - i }},
			} {
				for k := range opts {
					i := e.order(k)
					o := opts[i]
					o.Source = "one source"
					res, err := e.engine.Render(ctx, src, o)
					if err != nil {
						t.Fatalf("%+v: %v", o, err)
					}
					if !bytes.Equal(res.Data, want[i]) {
						t.Errorf("%+v: reused decode gives other bytes", o)
					}
				}
			}
			if name != "webp" && forward.hits.Load() == 0 {
				t.Errorf("no render reused a decode (%d decodes)", forward.decodeCount())
			}
		})
	}
}

// The shrink rule: every box up to familyBox loads a progressive JPEG at
// familyBox's shrink, so a DPR 1–3 family of a 400 px slot shares one
// decode of a 5120×2880 JPEG; a baseline JPEG's boxes each shrink as far as
// they can. Neither depends on whether the decode cache is on: planFor
// reads the source and the options, no Engine and no Config.
func TestFamilyShrink(t *testing.T) {
	cases := []struct {
		box         int
		alg         Algorithm
		progressive int
		baseline    int
	}{
		{400, AlgorithmAuto, 4, 8},
		{800, AlgorithmAuto, 4, 4},
		{1200, AlgorithmAuto, 4, 4},
		{100, AlgorithmAuto, 4, 8},
		{1800, AlgorithmAuto, 2, 2},
		{0, AlgorithmAuto, 1, 1},
		{400, AlgorithmLanczos3, 2, 4},
		{400, AlgorithmThumbnail, 4, 8},
	}
	for _, c := range cases {
		o := Options{Box: c.box, Algorithm: c.alg, Format: FormatWebP}
		for _, progressive := range []bool{true, false} {
			s := decode.Source{Format: FormatJPEG,
				Header: decode.Header{Width: 5120, PageHeight: 2880, Pages: 1, PelBytes: 3, Progressive: progressive}}
			want := c.baseline
			if progressive {
				want = c.progressive
			}
			if got := planFor(s, o).load.Shrink; got != want {
				t.Errorf("box %d %s, progressive %v: shrink %d, want %d", c.box, c.alg, progressive, got, want)
			}
		}
	}
}

// Concurrent renders of different variants of one new source decode it
// once; the ones that wait leave the caller's gate while they wait.
func TestConcurrentVariantsDecodeOnce(t *testing.T) {
	ce := newCachingEngine(t, 128<<20)
	src := texturedJPEG(t, 2400, 1350, 1)
	boxes := []int{400, 800, 1200, 300, 600, 900}
	joined := make(chan struct{})
	ce.beforeDecode = func() {
		// Hold the decode until every other render waits for it.
		select {
		case <-joined:
		case <-time.After(30 * time.Second):
		}
	}
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for ce.hits.Load() < int64(len(boxes)-1) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		close(joined)
	}()
	gates := make([]*countingGate, len(boxes))
	errs := make([]error, len(boxes))
	results := make([]Result, len(boxes))
	var wg sync.WaitGroup
	for i, box := range boxes {
		gates[i] = &countingGate{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = ce.Render(context.Background(), src, Options{Box: box, Format: FormatWebP, Source: "new photo", Gate: gates[i]})
		}()
	}
	wg.Wait()
	if n := ce.decodeCount(); n != 1 {
		t.Errorf("%d decodes, want 1", n)
	}
	left := 0
	for i, box := range boxes {
		if errs[i] != nil {
			t.Fatalf("box %d: %v", box, errs[i])
		}
		if p := inspect(t, results[i].Data); max(p.w, p.h) != box {
			t.Errorf("box %d: %d×%d", box, p.w, p.h)
		}
		g := gates[i]
		if g.leaves != g.enters {
			t.Errorf("box %d left the gate %d times, entered %d", box, g.leaves, g.enters)
		}
		left += g.leaves
	}
	if left != len(boxes)-1 {
		t.Errorf("%d waits left the gate, want %d", left, len(boxes)-1)
	}
}

type countingGate struct{ leaves, enters int }

func (g *countingGate) Leave()                        { g.leaves++ }
func (g *countingGate) Enter(_ context.Context) error { g.enters++; return nil }

// A gate that refuses re-entry (the queue is full) fails the render with
// the gate's error, which the caller classifies.
func TestGateRefusalAfterWaiting(t *testing.T) {
	ce := newCachingEngine(t, 128<<20)
	src := texturedJPEG(t, 1200, 800, 2)
	release := make(chan struct{})
	decoding := make(chan struct{}, 1)
	ce.beforeDecode = func() {
		select {
		case decoding <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	}
	leader := make(chan error, 1)
	go func() {
		_, err := ce.Render(context.Background(), src, Options{Box: 100, Source: "s"})
		leader <- err
	}()
	// The second render must find the first one decoding, or it would
	// lead itself and never wait.
	select {
	case <-decoding:
	case <-time.After(30 * time.Second):
		t.Fatal("the first render never started decoding")
	}
	full := errors.New("queue full")
	gate := &refusingGate{err: full, left: make(chan struct{})}
	go func() {
		select {
		case <-gate.left:
		case <-time.After(30 * time.Second):
		}
		close(release)
	}()
	_, err := ce.Render(context.Background(), src, Options{Box: 200, Source: "s", Gate: gate})
	if !errors.Is(err, full) || KindOf(err) != KindCanceled {
		t.Errorf("got %v, want the gate's error as canceled", err)
	}
	if err := <-leader; err != nil {
		t.Errorf("leader: %v", err)
	}
}

type refusingGate struct {
	err  error
	left chan struct{}
}

func (g *refusingGate) Leave()                        { close(g.left) }
func (g *refusingGate) Enter(_ context.Context) error { return g.err }

// The byte budget: a decode over it is never kept, older decodes make room
// for newer ones, and the size reported never exceeds it.
func TestDecodeCacheBudget(t *testing.T) {
	ctx := context.Background()
	a, b := texturedJPEG(t, 1000, 600, 3), texturedJPEG(t, 1000, 600, 4)
	const decoded = 1000 * 600 * 3 // box ≤ familyBox: no shrink for 1000 px
	t.Run("over budget", func(t *testing.T) {
		ce := newCachingEngine(t, decoded-1)
		for range 3 {
			res, err := ce.Render(ctx, a, Options{Box: 300, Format: FormatWebP, Source: "a"})
			if err != nil || res.Width != 300 {
				t.Fatalf("%v, %d px", err, res.Width)
			}
		}
		if ce.DecodeCacheBytes() != 0 || ce.largest.Load() != 0 || ce.hits.Load() != 0 {
			t.Errorf("kept %d bytes (largest %d), %d hits", ce.DecodeCacheBytes(), ce.largest.Load(), ce.hits.Load())
		}
	})
	t.Run("room for one", func(t *testing.T) {
		ce := newCachingEngine(t, decoded+decoded/2)
		for _, s := range []struct {
			src         []byte
			id          string
			wantDecodes int64
		}{{a, "a", 1}, {a, "a", 1}, {b, "b", 2}, {b, "b", 2}, {a, "a", 3}} {
			if _, err := ce.Render(ctx, s.src, Options{Box: 300, Format: FormatWebP, Source: s.id}); err != nil {
				t.Fatal(err)
			}
			if n := ce.decodeCount(); n != s.wantDecodes {
				t.Errorf("after %s: %d decodes, want %d", s.id, n, s.wantDecodes)
			}
		}
		if got := ce.DecodeCacheBytes(); got != decoded {
			t.Errorf("holds %d bytes, want %d", got, decoded)
		}
		if l := ce.largest.Load(); l > decoded+decoded/2 {
			t.Errorf("reported %d bytes, over the budget", l)
		}
	})
}

// A decode that fails is never kept: every render tries again, and
// renders waiting for it get its error.
func TestFailedDecodesAreNotKept(t *testing.T) {
	ce := newCachingEngine(t, 128<<20)
	rocket := progressive(t, read(t, "rocket.jpg"))
	broken := rocket[:len(rocket)/2]
	for i := range 2 {
		_, err := ce.Render(context.Background(), broken, Options{Box: 100, Format: FormatWebP, Source: "broken"})
		if KindOf(err) != KindInvalidImage {
			t.Fatalf("render %d: %v, want invalid image", i, err)
		}
		if n := ce.decodeCount(); n != int64(i+1) {
			t.Errorf("render %d: %d decodes", i, n)
		}
	}
	if ce.DecodeCacheBytes() != 0 {
		t.Errorf("%d bytes kept", ce.DecodeCacheBytes())
	}
	// A waiter gets the leader's error.
	joined := make(chan struct{})
	ce.beforeDecode = func() {
		select {
		case <-joined:
		case <-time.After(30 * time.Second):
		}
	}
	hits := ce.hits.Load()
	errs := make(chan error, 2)
	for _, box := range []int{100, 200} {
		go func() {
			_, err := ce.Render(context.Background(), broken, Options{Box: box, Format: FormatWebP, Source: "broken"})
			errs <- err
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for ce.hits.Load() == hits && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(joined)
	for range 2 {
		if err := <-errs; KindOf(err) != KindInvalidImage {
			t.Errorf("%v, want invalid image", err)
		}
	}
	if n := ce.decodeCount(); n != 3 {
		t.Errorf("%d decodes, want 3", n)
	}
}

// A new source identity never reuses the old decode, even with the same
// dimensions and load.
func TestChangedSourceIsDecodedAgain(t *testing.T) {
	ce := newCachingEngine(t, 128<<20)
	before, after := texturedJPEG(t, 1000, 600, 5), texturedJPEG(t, 1000, 600, 6)
	o := Options{Box: 300, Format: FormatWebP}
	want, err := New(DefaultConfig()).Render(context.Background(), after, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Source = "photo.jpg@1"
	if _, err := ce.Render(context.Background(), before, o); err != nil {
		t.Fatal(err)
	}
	o.Source = "photo.jpg@2"
	got, err := ce.Render(context.Background(), after, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, want.Data) || ce.decodeCount() != 2 {
		t.Errorf("the edited source rendered from the old decode (%d decodes)", ce.decodeCount())
	}
}

// Kept, evicted, expired and shared decodes all end up freed: many
// sources through a small cache, then Close, leave the resident set where
// it was.
func TestDecodeCacheDoesNotLeak(t *testing.T) {
	ce := newCachingEngine(t, 3*1000*600*3)
	srcs := [][]byte{texturedJPEG(t, 1000, 600, 7), texturedJPEG(t, 1000, 600, 8)}
	run := func(round int) {
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("%d-%d", round, i/4) // four variants per source
				_, err := ce.Render(context.Background(), srcs[i%2], Options{Box: 100 + i, Format: FormatWebP, Source: id})
				if err != nil {
					t.Error(err)
				}
			}()
			if i%10 == 9 {
				ce.clock.Advance(DefaultConfig().DecodeCacheTTL) // some expire
			}
		}
		wg.Wait()
	}
	for r := range 3 {
		run(r)
	}
	ce.Close()
	before := residentBytes(t)
	for r := 3; r < 13; r++ {
		run(r)
	}
	ce.Close()
	grown := residentBytes(t) - before
	t.Logf("resident set grew by %d KB", grown>>10)
	// Each decode is 1.8 MB: 100 of them leaked would be 180 MB. Without a
	// leak the resident set still moves by up to ~28 MB between runs (40
	// concurrent renders spread over malloc arenas and libvips' thread
	// buffers, more on a loaded machine), so the bound sits well above
	// that noise and well below a third of the decodes leaking.
	if grown > 60<<20 {
		t.Errorf("400 renders of 100 sources grew the resident set by %d MB", grown>>20)
	}
}
