package decode

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"image-proxy/imageformat"
	"image-proxy/internal/testsupport/testclock"
	"image-proxy/transform/internal/vips"
	"image-proxy/transform/internal/vipsx"
)

// The decode layer's own tests: the cache's clock, budget and rules on
// real JPEGs and real libvips. What a render makes of a decode (bytes,
// shrink, errors) is tested through transform's Render and RenderMany.

func TestMain(m *testing.M) {
	vips.Startup(&vips.Config{ConcurrencyLevel: 1})
	code := m.Run()
	vips.Shutdown()
	os.Exit(code)
}

// loadJPEG is transform's JPEG loader, as its format table defines it.
func loadJPEG(src []byte, l Load) (*vips.Image, error) {
	return vips.NewJpegloadBuffer(src, &vips.JpegloadBufferOptions{Shrink: max(1, l.Shrink),
		Access: vips.AccessSequential, FailOn: vips.FailOnError})
}

// openJPEG is src with its header read, as transform's pipeline opens it.
func openJPEG(t *testing.T, src []byte, id string) Source {
	t.Helper()
	s := Source{Format: imageformat.JPEG, Loader: loadJPEG, ID: id, Bytes: src}
	h, err := s.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	s.Header = h
	return s
}

// photo is a w×h JPEG with detail at every scale; progressive re-encodes
// it in several scans.
func photo(t *testing.T, w, h int, progressive bool) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8((x*7 + y*13) ^ (x * y >> 5))
			img.Set(x, y, color.RGBA{v, uint8(x), uint8(y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if !progressive {
		return b.Bytes()
	}
	im, err := vips.NewJpegloadBuffer(b.Bytes(), nil)
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

// testDecoder has a cache of budget bytes on a fake clock, and counts its
// decodes and the size it last reported.
type testDecoder struct {
	*Decoder
	clock   *testclock.Clock
	decodes atomic.Int64
	latest  atomic.Int64
}

const ttl = 10 * time.Second

func newTestDecoder(t *testing.T, budget int64) *testDecoder {
	td := &testDecoder{clock: testclock.New(time.Unix(1_000_000, 0))}
	td.Decoder = New(Options{Budget: budget, TTL: ttl, Now: td.clock.Now,
		Decoding: func() { td.decodes.Add(1) },
		Observer: Observer{DecodeBytes: td.latest.Store}})
	t.Cleanup(td.Close)
	return td
}

// decode asks for s at l as a render does, and gives the image back.
func (td *testDecoder) decode(t *testing.T, s Source, l Load) {
	t.Helper()
	img, err := td.Decode(context.Background(), s, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	img.Close()
}

// Decodes older than the TTL are decoded again; the clock is the test's.
func TestDecodeCacheExpiry(t *testing.T) {
	td := newTestDecoder(t, 128<<20)
	s := openJPEG(t, photo(t, 1000, 600, true), "photo")
	l := Load{Pages: 1, Shrink: 2}
	td.decode(t, s, l)
	td.clock.Advance(ttl - time.Nanosecond)
	td.decode(t, s, l)
	if n := td.decodes.Load(); n != 1 {
		t.Fatalf("%d decodes within the TTL, want 1", n)
	}
	td.clock.Advance(time.Nanosecond)
	td.decode(t, s, l)
	if n := td.decodes.Load(); n != 2 {
		t.Fatalf("%d decodes after the TTL, want 2", n)
	}
	// With no render to notice, the sweep drops what expired.
	td.clock.Advance(ttl)
	td.cache.sweep()
	if n := td.Bytes(); n != 0 || td.latest.Load() != 0 {
		t.Errorf("%d bytes kept after expiry (observed %d)", n, td.latest.Load())
	}
}

// The header estimate can be low (a loader that adds a band): the kept
// size is checked again on the decoded image.
func TestKeptSizeIsCheckedOnTheDecode(t *testing.T) {
	td := newTestDecoder(t, 1000)
	src := photo(t, 1000, 600, true)
	d, err := td.cache.acquire(context.Background(), key{source: "x"}, nil, func() (*vips.Image, error) {
		im, err := loadJPEG(src, Load{Pages: 1, Shrink: 8})
		if err == nil {
			err = vipsx.HoldInMemory(im)
		}
		return im, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.img.Width() != 125 || td.Bytes() != 0 {
		t.Errorf("%d px wide, %d bytes kept", d.img.Width(), td.Bytes())
	}
	td.cache.release(d)
	if d.img != nil {
		t.Error("the last reference did not free the image")
	}
}

// Which decodes go through the cache: a named still whose loader does not
// scale, that fits the budget, and (for a baseline JPEG) whose load was
// asked for before. The headers are made up: keeps reads nothing else.
func TestKeeps(t *testing.T) {
	still := Header{Width: 1000, PageHeight: 600, Pages: 1, PelBytes: 3}
	progressive := still
	progressive.Progressive = true
	l := Load{Pages: 1, Shrink: 2}
	cases := []struct {
		name   string
		budget int64
		s      Source
		want   []bool // asked once, twice
	}{
		{"cache off", 0, Source{Format: imageformat.PNG, ID: "a", Header: still}, []bool{false}},
		{"no identity", 1 << 30, Source{Format: imageformat.PNG, Header: still}, []bool{false, false}},
		{"png", 1 << 30, Source{Format: imageformat.PNG, ID: "a", Header: still}, []bool{true, true}},
		{"webp loads at a scale", 1 << 30, Source{Format: imageformat.WebP, ID: "a", Header: still}, []bool{false, false}},
		{"svg loads at a scale", 1 << 30, Source{Format: imageformat.SVG, ID: "a", Header: still}, []bool{false, false}},
		{"animation", 1 << 30, Source{Format: imageformat.GIF, Animated: true, ID: "a",
			Header: Header{Width: 100, PageHeight: 100, Pages: 3, PelBytes: 4}}, []bool{false, false}},
		{"pages that are no animation", 1 << 30, Source{Format: imageformat.TIFF, ID: "a",
			Header: Header{Width: 100, PageHeight: 100, Pages: 3, PelBytes: 4}}, []bool{true}},
		{"over the budget", 500*300*3 - 1, Source{Format: imageformat.JPEG, ID: "a", Header: progressive}, []bool{false, false}},
		{"at the budget", 500 * 300 * 3, Source{Format: imageformat.JPEG, ID: "a", Header: progressive}, []bool{true}},
		{"odd sides round up", 500*300*3 - 1, Source{Format: imageformat.JPEG, ID: "a", Header: Header{
			Width: 999, PageHeight: 599, Pages: 1, PelBytes: 3, Progressive: true}}, []bool{false}},
		{"progressive jpeg", 1 << 30, Source{Format: imageformat.JPEG, ID: "a", Header: progressive}, []bool{true, true}},
		{"baseline jpeg", 1 << 30, Source{Format: imageformat.JPEG, ID: "a", Header: still}, []bool{false, true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New(Options{Budget: c.budget, TTL: ttl})
			defer d.Close()
			for i, want := range c.want {
				if got := d.keeps(c.s, l); got != want {
					t.Errorf("asked %d times: keeps %v, want %v", i+1, got, want)
				}
			}
		})
	}
}
