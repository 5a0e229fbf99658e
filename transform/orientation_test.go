package transform

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"testing"

	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
)

// The fixtures here are built in the test: an upright picture with a marker
// over its top-left corner is stored as each EXIF orientation would store
// it (pixels inversely transformed, the tag set), in each source format.
// Rendering must give the upright picture back: the right dimensions and
// the marker in the top-left corner, whatever the box and output format.

var (
	markerRGB = [3]uint8{255, 220, 0}
	groundRGB = [3]uint8{20, 40, 160}
)

// Fractions of the upright picture the marker covers, from the top left.
const markerW, markerH = 0.5, 0.4

// uprightPixels is the w×h RGB picture every orientation must come back to.
func uprightPixels(w, h int) []byte {
	px := make([]byte, 0, w*h*3)
	for y := range h {
		for x := range w {
			c := groundRGB
			if float64(x) < markerW*float64(w) && float64(y) < markerH*float64(h) {
				c = markerRGB
			}
			px = append(px, c[:]...)
		}
	}
	return px
}

// storedPixels is what a file tagged with orientation o holds so that it
// displays as up (w×h): the mapping from displayed to stored coordinates is
// written out from the EXIF definitions, independently of libvips.
func storedPixels(up []byte, w, h, o int) (px []byte, sw, sh int) {
	sw, sh = w, h
	if o >= 5 {
		sw, sh = h, w
	}
	px = make([]byte, len(up))
	for dy := range h {
		for dx := range w {
			var sx, sy int
			switch o {
			case 1:
				sx, sy = dx, dy
			case 2: // stored column 0 is shown on the right
				sx, sy = w-1-dx, dy
			case 3: // upside down
				sx, sy = w-1-dx, h-1-dy
			case 4: // stored row 0 is shown at the bottom
				sx, sy = dx, h-1-dy
			case 5: // row 0 shown as the left column, column 0 as the top row
				sx, sy = dy, dx
			case 6: // row 0 shown as the right column, column 0 as the top row
				sx, sy = dy, w-1-dx
			case 7: // row 0 shown as the right column, column 0 as the bottom row
				sx, sy = h-1-dy, w-1-dx
			case 8: // row 0 shown as the left column, column 0 as the bottom row
				sx, sy = h-1-dy, dx
			}
			copy(px[(sy*sw+sx)*3:][:3], up[(dy*w+dx)*3:][:3])
		}
	}
	return px, sw, sh
}

// orientedSource encodes the w×h upright picture as format f with
// orientation o, each format the way its files carry orientation.
func orientedSource(t testing.TB, f Format, w, h, o int) []byte {
	t.Helper()
	px, sw, sh := storedPixels(uprightPixels(w, h), w, h, o)
	if f == FormatTIFF {
		// tiffsave is blocked in this process, and TIFF is simple to write.
		return tiffRGB(px, sw, sh, o)
	}
	im, err := vips.NewImageFromMemory(px, sw, sh, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := im.SetOrientation(o); err != nil {
		t.Fatal(err)
	}
	var b []byte
	switch f {
	case FormatJPEG:
		b, err = im.JpegsaveBuffer(&vips.JpegsaveBufferOptions{Q: 95})
	case FormatWebP:
		b, err = im.WebpsaveBuffer(&vips.WebpsaveBufferOptions{Q: 95})
	case FormatPNG:
		// pngsave writes an eXIf chunk only from existing exif-data.
		if b, err = im.PngsaveBuffer(nil); err == nil {
			b = withPNGExif(t, b, o)
		}
	case FormatAVIF:
		// heifsave keeps the EXIF orientation but writes no irot/imir, and
		// HEIF readers (libheif among them) go by irot/imir alone. Files
		// from cameras carry both, which is what "upright exactly once" is
		// about.
		b, err = im.HeifsaveBuffer(&vips.HeifsaveBufferOptions{Compression: vips.HeifCompressionAv1, Q: 90, Bitdepth: 8, Effort: 1})
		if err == nil {
			b = withHEIFTransform(t, b, o)
		}
	default:
		t.Fatalf("no fixture writer for %s", f)
	}
	if err != nil {
		t.Fatalf("%s orientation %d: %v", f, o, err)
	}
	return b
}

// exifOrientation is a minimal EXIF block (big-endian TIFF structure, as
// PNG's eXIf holds it) with only the Orientation tag.
func exifOrientation(o int) []byte {
	b := []byte("MM\x00\x2a\x00\x00\x00\x08")
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, 0x0112)
	b = binary.BigEndian.AppendUint16(b, 3) // SHORT
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(o))
	b = append(b, 0, 0)
	return binary.BigEndian.AppendUint32(b, 0)
}

// withPNGExif inserts an eXIf chunk right after IHDR.
func withPNGExif(t testing.TB, b []byte, o int) []byte {
	t.Helper()
	const afterIHDR = 8 + 4 + 4 + 13 + 4
	if len(b) < afterIHDR || string(b[12:16]) != "IHDR" {
		t.Fatal("not a PNG starting with IHDR")
	}
	data := exifOrientation(o)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	return append(append(append([]byte{}, b[:afterIHDR]...), chunk...), b[afterIHDR:]...)
}

// tiffRGB is an uncompressed little-endian RGB TIFF with an Orientation tag.
func tiffRGB(px []byte, w, h, o int) []byte {
	type entry struct {
		tag, typ uint16
		value    uint32
	}
	const short, long = 3, 4
	const entries = 11
	bpsAt := uint32(8 + 2 + entries*12 + 4)
	dataAt := bpsAt + 6
	ifd := []entry{
		{256, long, uint32(w)},
		{257, long, uint32(h)},
		{258, short, bpsAt}, // three values: stored elsewhere
		{259, short, 1},     // no compression
		{262, short, 2},     // RGB
		{273, long, dataAt},
		{274, short, uint32(o)},
		{277, short, 3},
		{278, long, uint32(h)},
		{279, long, uint32(len(px))},
		{284, short, 1}, // chunky
	}
	le := binary.LittleEndian
	b := []byte("II\x2a\x00")
	b = le.AppendUint32(b, 8)
	b = le.AppendUint16(b, entries)
	for _, e := range ifd {
		b = le.AppendUint16(b, e.tag)
		b = le.AppendUint16(b, e.typ)
		count := uint32(1)
		if e.tag == 258 {
			count = 3
		}
		b = le.AppendUint32(b, count)
		if e.typ == short && count == 1 {
			b = le.AppendUint16(b, uint16(e.value))
			b = append(b, 0, 0)
		} else {
			b = le.AppendUint32(b, e.value)
		}
	}
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, 8)
	b = le.AppendUint16(b, 8)
	b = le.AppendUint16(b, 8)
	return append(b, px...)
}

// heifTransforms are the HEIF transformative properties, applied in this
// order, that show the pixels of EXIF orientation o upright: irot turns
// anticlockwise by quarter turns; imir exchanges top and bottom (axis 0,
// EXIF's 4) or left and right (axis 1, EXIF's 2), as ISO/IEC 23008-12:2022
// 6.5.12 words it.
var heifTransforms = [9]struct{ irot, imir int }{
	1: {0, -1}, 2: {0, 1}, 3: {2, -1}, 4: {0, 0},
	5: {3, 1}, 6: {3, -1}, 7: {3, 0}, 8: {1, -1},
}

type isoBox struct {
	typ  string
	full []byte // header included
}

func isoBoxes(t testing.TB, b []byte) []isoBox {
	t.Helper()
	var out []isoBox
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatal("truncated box")
		}
		n := int(binary.BigEndian.Uint32(b))
		if n < 8 || n > len(b) {
			t.Fatalf("box size %d unsupported here", n)
		}
		out = append(out, isoBox{string(b[4:8]), b[:n]})
		b = b[n:]
	}
	return out
}

func mkBox(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// withHEIFTransform gives the primary item of a heifsave AVIF the irot and
// imir properties of orientation o. The meta box grows, so the item
// locations (absolute offsets into mdat, which follows) move by as much.
func withHEIFTransform(t testing.TB, b []byte, o int) []byte {
	t.Helper()
	tr := heifTransforms[o]
	var props [][]byte
	if tr.irot != 0 {
		props = append(props, mkBox("irot", []byte{byte(tr.irot)}))
	}
	if tr.imir >= 0 {
		props = append(props, mkBox("imir", []byte{byte(tr.imir)}))
	}
	if len(props) == 0 {
		return b
	}
	top := isoBoxes(t, b)
	var out [][]byte
	metaSeen := false
	for _, tb := range top {
		switch tb.typ {
		case "mdat":
			if !metaSeen {
				t.Fatal("mdat before meta")
			}
		case "meta":
			metaSeen = true
			meta := rebuildMeta(t, tb.full, props)
			delta := len(meta) - len(tb.full)
			out = append(out, shiftIloc(t, meta, delta))
			continue
		}
		out = append(out, tb.full)
	}
	return bytes.Join(out, nil)
}

func rebuildMeta(t testing.TB, meta []byte, props [][]byte) []byte {
	t.Helper()
	head := meta[8:12] // version and flags
	primary := -1
	var kids [][]byte
	for _, k := range isoBoxes(t, meta[12:]) {
		switch k.typ {
		case "pitm":
			primary = int(binary.BigEndian.Uint16(k.full[12:]))
		case "iprp":
			var ipco, ipma []byte
			for _, p := range isoBoxes(t, k.full[8:]) {
				switch p.typ {
				case "ipco":
					ipco = p.full
				case "ipma":
					ipma = p.full
				}
			}
			if ipco == nil || ipma == nil || primary < 0 {
				t.Fatal("no ipco, ipma or pitm")
			}
			first := len(isoBoxes(t, ipco[8:])) + 1
			newIpco := mkBox("ipco", append([][]byte{ipco[8:]}, props...)...)
			k.full = mkBox("iprp", newIpco, addAssociations(t, ipma, primary, first, len(props)))
		}
		kids = append(kids, k.full)
	}
	return mkBox("meta", append([][]byte{head}, kids...)...)
}

// addAssociations appends essential associations to properties first…
// first+n-1 for item id (ipma version 0, 7-bit indices only).
func addAssociations(t testing.TB, ipma []byte, id, first, n int) []byte {
	t.Helper()
	if ipma[8] != 0 || ipma[11]&1 != 0 {
		t.Fatal("ipma version or flags unsupported here")
	}
	p := ipma[12:]
	count := int(binary.BigEndian.Uint32(p))
	out := append([]byte{}, ipma[8:16]...)
	p = p[4:]
	for range count {
		item, k := int(binary.BigEndian.Uint16(p)), int(p[2])
		assoc := append([]byte{}, p[3:3+k]...)
		p = p[3+k:]
		if item == id {
			for i := range n {
				assoc = append(assoc, 0x80|byte(first+i))
			}
		}
		out = binary.BigEndian.AppendUint16(out, uint16(item))
		out = append(out, byte(len(assoc)))
		out = append(out, assoc...)
	}
	return mkBox("ipma", out)
}

// shiftIloc moves every extent of the iloc inside meta by delta bytes
// (version 0 or 1, four-byte offsets, file-relative construction).
func shiftIloc(t testing.TB, meta []byte, delta int) []byte {
	t.Helper()
	meta = append([]byte{}, meta...)
	at := 12
	for _, k := range isoBoxes(t, meta[12:]) {
		if k.typ != "iloc" {
			at += len(k.full)
			continue
		}
		p := meta[at+8:]
		version := p[0]
		offSize, lenSize, baseSize := int(p[4]>>4), int(p[4]&15), int(p[5]>>4)
		idxSize := 0
		if version == 1 {
			idxSize = int(p[5] & 15)
		}
		if version > 1 || offSize != 4 {
			t.Fatalf("iloc version %d offset size %d unsupported here", version, offSize)
		}
		count := int(binary.BigEndian.Uint16(p[6:]))
		i := 8
		for range count {
			i += 2 // item id
			if version == 1 {
				if method := binary.BigEndian.Uint16(p[i:]) & 15; method != 0 {
					t.Fatalf("construction method %d unsupported here", method)
				}
				i += 2
			}
			i += 2 + baseSize // data reference index, base offset
			extents := int(binary.BigEndian.Uint16(p[i:]))
			i += 2
			for range extents {
				i += idxSize
				off := binary.BigEndian.Uint32(p[i:])
				binary.BigEndian.PutUint32(p[i:], uint32(int(off)+delta))
				i += offSize + lenSize
			}
		}
		return meta
	}
	t.Fatal("no iloc")
	return nil
}

// decodedOutput loads an output for sampling: random access (the samples are
// read in any order), 8-bit sRGB, flattened onto white.
func decodedOutput(t testing.TB, b []byte) *vips.Image {
	t.Helper()
	var im *vips.Image
	var err error
	switch f := Sniff(b); f {
	case FormatJPEG:
		im, err = vips.NewJpegloadBuffer(b, nil)
	case FormatPNG:
		im, err = vips.NewPngloadBuffer(b, nil)
	case FormatWebP:
		im, err = vips.NewWebploadBuffer(b, nil)
	case FormatGIF:
		im, err = vips.NewGifloadBuffer(b, nil)
	case FormatAVIF:
		im, err = vips.NewHeifloadBuffer(b, nil)
	default:
		t.Fatalf("output is %s", f)
	}
	if err != nil {
		t.Fatalf("output does not load: %v", err)
	}
	if err := toSRGB(im); err != nil {
		t.Fatal(err)
	}
	if im.HasAlpha() {
		if err := im.Flatten(&vips.FlattenOptions{Background: []float64{255, 255, 255}}); err != nil {
			t.Fatal(err)
		}
	}
	return im
}

// checkUpright asserts the marker covers the top-left corner and nothing
// else: one sample in the middle of each corner region, and, when the
// output is large enough for samples near the marker's edges to be exact,
// two that tell the marker's shape apart from its transpose.
func checkUpright(t testing.TB, im *vips.Image) {
	t.Helper()
	w, h := im.Width(), im.Height()
	type sample struct {
		fx, fy float64
		marker bool
	}
	samples := []sample{{0.25, 0.2, true}, {0.75, 0.2, false}, {0.25, 0.8, false}, {0.75, 0.8, false}}
	if min(w, h) >= 100 {
		samples = append(samples, sample{0.45, 0.1, true}, sample{0.1, 0.46, false})
	}
	for _, s := range samples {
		x, y := int(s.fx*float64(w)), int(s.fy*float64(h))
		c, err := im.Getpoint(x, y)
		if err != nil || len(c) < 3 {
			t.Fatalf("pixel (%d,%d): %v %v", x, y, c, err)
		}
		dm, dg := colourDistance(c, markerRGB), colourDistance(c, groundRGB)
		if isMarker := dm < dg; isMarker != s.marker || min(dm, dg) > 90 {
			want := "ground"
			if s.marker {
				want = "marker"
			}
			t.Errorf("pixel (%d,%d) of %dx%d is %v, want the %s colour", x, y, w, h, c, want)
		}
	}
}

func colourDistance(c []float64, ref [3]uint8) float64 {
	var d float64
	for i := range ref {
		d += (c[i] - float64(ref[i])) * (c[i] - float64(ref[i]))
	}
	return math.Sqrt(d)
}

// fittedSize is the upright output size for box (0 keeps the source size).
func fittedSize(w, h, box int) (int, int) {
	if box <= 0 || box >= max(w, h) {
		return w, h
	}
	s := float64(box) / float64(max(w, h))
	return max(1, int(math.Round(float64(w)*s))), max(1, int(math.Round(float64(h)*s)))
}

// renderUpright renders src into box as out and checks the result.
func renderUpright(t *testing.T, tr *Engine, src []byte, w, h, box int, out Format) {
	t.Helper()
	res, err := tr.Render(context.Background(), src, Options{Box: box, Format: out})
	if err != nil {
		t.Fatalf("box %d → %s: %v", box, out, err)
	}
	img := decodedOutput(t, res.Data)
	defer img.Close()
	ew, eh := fittedSize(w, h, box)
	if gw, gh := img.Width(), img.Height(); gw != ew || gh != eh || res.Width != ew || res.Height != eh {
		t.Fatalf("box %d → %s: %dx%d (result says %dx%d), want %dx%d", box, out, gw, gh, res.Width, res.Height, ew, eh)
	}
	checkUpright(t, img)
}

func TestOrientation(t *testing.T) {
	all := []Format{FormatJPEG, FormatPNG, FormatWebP, FormatAVIF, FormatGIF}
	sources := []struct {
		w, h    int
		formats []Format
		boxes   []int
		// outputs for the first box, then for the others
		first, rest []Format
	}{
		{300, 200, []Format{FormatJPEG, FormatPNG, FormatWebP, FormatAVIF, FormatTIFF},
			[]int{150, 16, 299, 300, 1000, 0}, all, all[:2]},
		// Large enough for shrink-on-load (JPEG, WebP) and for a rotation
		// of the sequential decode to read out of order. heifload decodes
		// whole images, so AVIF has nothing more to show at this size.
		{1600, 1000, []Format{FormatJPEG, FormatPNG, FormatWebP, FormatTIFF},
			[]int{400, 16, 1000, 1600}, all[:3], all[:1]},
	}
	tr := New(DefaultConfig())
	for _, s := range sources {
		for _, f := range s.formats {
			for o := 1; o <= 8; o++ {
				t.Run(fmt.Sprintf("%dx%d/%s/%d", s.w, s.h, f, o), func(t *testing.T) {
					t.Parallel()
					src := orientedSource(t, f, s.w, s.h, o)
					checkTagged(t, src, f, o)
					for i, box := range s.boxes {
						outs := s.rest
						if i == 0 {
							outs = s.first
						}
						for _, out := range outs {
							renderUpright(t, tr, src, s.w, s.h, box, out)
						}
					}
				})
			}
		}
	}
}

// checkTagged asserts a fixture carries its orientation where readers look
// for it, so that a fixture writer silently dropping it cannot pass.
func checkTagged(t *testing.T, src []byte, f Format, o int) {
	t.Helper()
	if f == FormatAVIF {
		if o > 1 && !bytes.Contains(src, []byte("irot")) && !bytes.Contains(src, []byte("imir")) {
			t.Fatal("no irot or imir written")
		}
		// The EXIF tag as well (heifsave writes little-endian EXIF), or
		// nothing could rotate the picture a second time.
		tag := []byte{0x12, 0x01, 3, 0, 1, 0, 0, 0, byte(o), 0}
		if !bytes.Contains(src, tag) {
			t.Fatal("no EXIF orientation written")
		}
		return
	}
	im, err := load(src, f, decode.Load{Pages: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if got := max(1, im.Orientation()); got != o {
		t.Fatalf("the %s fixture reads as orientation %d, want %d", f, got, o)
	}
}

// TestOrientationReportedSizes are the cases of the field report: 422 for
// these boxes before rotation moved after the shrink.
func TestOrientationReportedSizes(t *testing.T) {
	tr := New(DefaultConfig())
	for _, c := range []struct {
		w, h, o int
		boxes   []int
	}{
		{2560, 1600, 6, []int{300, 900, 1200, 2560, 3000}},
		{1411, 1411, 8, []int{300, 600, 1000, 1411}},
	} {
		t.Run(fmt.Sprintf("%dx%d/%d", c.w, c.h, c.o), func(t *testing.T) {
			src := orientedSource(t, FormatJPEG, c.w, c.h, c.o)
			for _, box := range c.boxes {
				renderUpright(t, tr, src, c.w, c.h, box, FormatJPEG)
			}
		})
	}
}
