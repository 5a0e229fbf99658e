package transform

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
)

// A failure after the header loaded is the client's (422) only when the
// source itself does not decode; otherwise it is ours (500), with libvips'
// text kept for the log and out of the public message.

// rawSource is src as the decode layer sees it, its header not read (it
// may not read at all).
func rawSource(src []byte, f Format) decode.Source {
	return decode.Source{Format: f, Loader: spec(f).load, Bytes: src}
}

func TestLibvipsFailureOnValidFileIsInternal(t *testing.T) {
	src := orientedSource(t, FormatJPEG, 1600, 1000, 6)
	// What Render did before rotating in memory: autorot straight on the
	// sequential decode, which libvips refuses with "out of order read".
	im, err := load(src, FormatJPEG, decode.Load{Pages: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	err = im.Autorot(nil)
	if err == nil {
		_, err = New(DefaultConfig()).encode(im, FormatJPEG, 0)
	}
	if err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("the sequential rotation did not fail as libvips does: %v", err)
	}

	got := broken(rawSource(src, FormatJPEG), decode.Load{Pages: 1}, "orient", err)
	var te *Error
	if !errors.As(got, &te) || te.Kind != KindInternal {
		t.Fatalf("kind %v, want KindInternal: %v", KindOf(got), got)
	}
	if te.Err == nil || !strings.Contains(te.Err.Error(), "out of order") {
		t.Errorf("libvips' text is not kept for the log: %v", te.Err)
	}
}

func TestRenderFailureOnValidFileIsInternal(t *testing.T) {
	// No encoder for TIFF: a failure after every decode succeeded.
	_, err := New(DefaultConfig()).Render(context.Background(), read(t, "rocket.jpg"), Options{Box: 100, Format: FormatTIFF})
	var te *Error
	if !errors.As(err, &te) || te.Kind != KindInternal {
		t.Fatalf("kind %v, want KindInternal: %v", KindOf(err), err)
	}
	if !strings.Contains(te.Err.Error(), "encode") {
		t.Errorf("the log text does not name the step: %v", te.Err)
	}
}

func TestLazyDecodeFailureIsInvalid(t *testing.T) {
	jpeg := orientedSource(t, FormatJPEG, 1600, 1000, 6)
	png := read(t, "astronaut.png")
	cases := []struct {
		name string
		src  []byte
		in   Format
	}{
		{"truncated rotated jpeg", jpeg[:len(jpeg)*2/3], FormatJPEG},
		{"truncated png", png[:len(png)/2], FormatPNG},
		{"png with a damaged IDAT", damageIDAT(t, png), FormatPNG},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The header reads fine: the damage shows only once pixels are
			// decoded, after the steps have started.
			head, err := load(c.src, c.in, decode.Load{Pages: 1})
			if err != nil {
				t.Fatalf("header does not load: %v", err)
			}
			head.Close()
			for _, box := range []int{64, 1000, 0} {
				_, err := New(DefaultConfig()).Render(context.Background(), c.src, Options{Box: box, Format: FormatJPEG})
				if KindOf(err) != KindInvalidImage {
					t.Errorf("box %d: kind %v, want KindInvalidImage: %v", box, KindOf(err), err)
				}
			}
		})
	}
}

// damageIDAT flips bytes in the middle of the first IDAT chunk's data and
// leaves its CRC as it was.
func damageIDAT(t testing.TB, png []byte) []byte {
	t.Helper()
	b := append([]byte{}, png...)
	for at := 8; at+8 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[at:]))
		if string(b[at+4:at+8]) == "IDAT" {
			for i := at + 8 + n/2; i < at+8+n/2+16; i++ {
				b[i] ^= 0x5a
			}
			return b
		}
		at += 12 + n
	}
	t.Fatal("no IDAT")
	return nil
}

func TestBrokenNeedsTheSourceToDecode(t *testing.T) {
	// The same libvips text is ours or the client's depending on the file.
	libvipsErr := errors.New("vips_region_prepare: out of order read")
	valid := read(t, "rocket.jpg")
	if k := KindOf(broken(rawSource(valid, FormatJPEG), decode.Load{Pages: 1, Shrink: 8}, "resize", libvipsErr)); k != KindInternal {
		t.Errorf("valid source: kind %v, want KindInternal", k)
	}
	if k := KindOf(broken(rawSource(valid[:len(valid)/2], FormatJPEG), decode.Load{Pages: 1, Shrink: 8}, "resize", libvipsErr)); k != KindInvalidImage {
		t.Errorf("truncated source: kind %v, want KindInvalidImage", k)
	}
	if k := KindOf(broken(rawSource(bytes.Repeat([]byte{0xff}, 64), FormatJPEG), decode.Load{Pages: 1}, "load", libvipsErr)); k != KindInvalidImage {
		t.Errorf("garbage: kind %v, want KindInvalidImage", k)
	}
}

// Animations are not rotated, whatever their EXIF says: the frames stay a
// strip of the source's shape.
func TestAnimationNotRotated(t *testing.T) {
	src := read(t, "astronaut-animated.webp")
	head, err := load(src, FormatWebP, decode.Load{Pages: 1})
	if err != nil {
		t.Fatal(err)
	}
	w, h := head.Width(), head.Height()
	head.Close()
	im, err := vips.NewWebploadBuffer(src, &vips.WebploadBufferOptions{N: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := im.SetOrientation(6); err != nil {
		t.Fatal(err)
	}
	tagged, err := im.WebpsaveBuffer(&vips.WebpsaveBufferOptions{Q: 90})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(tagged, []byte("EXIF")) {
		t.Fatal("the fixture has no EXIF chunk")
	}
	for _, out := range []Format{FormatWebP, FormatGIF, FormatJPEG} {
		res, err := New(DefaultConfig()).Render(context.Background(), tagged, Options{Format: out})
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if res.Width != w || res.Height != h {
			t.Errorf("%s: %dx%d, want %dx%d as stored", out, res.Width, res.Height, w, h)
		}
	}
}
