package transform

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strconv"

	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
)

// Persisted decodes (issue 27). Behind a CDN an origin sees the long
// tail: a source asked at one more width or format, minutes or days
// apart, on any replica, each time decoding the whole original again —
// for a progressive JPEG most of the render. The decode cache keeps a
// decode for seconds, in one process; a persisted decode keeps it in the
// caller's persistent result tiers (DecodeStore), where any replica finds
// it later.
//
// What is kept is the decode itself, exactly: the source loaded at the
// render's Load (the shrink-on-load plan.go chose from the source and the
// box), before any step, with its metadata, in libvips' own format. A
// render whose Load is a kept one renders from it the very pixels and
// metadata it would have decoded, so its output is byte for byte the
// direct render's: no key or ETag names a persisted decode, and neither
// the order of requests nor which replica kept what can change a byte.
//
// Which decodes are kept depends on the source and the Load alone
// (storesDecode): a still raster source of at least IntermediateMinBytes,
// loaded at a Load whose decode's longest side is at most
// IntermediateSize (a decode's bytes are its pixels: width × height ×
// bands, twice that at 16 bits).

// decodeRule names what a persisted decode is: the loaders' settings (the
// format table's) and what the pipeline reads from a decode. Change it
// whenever they change, so no render finds a decode made the old way.
const decodeRule = "d1"

// maxStoredDecodeSide bounds IMAGE_PROXY_INTERMEDIATE_SIZE.
const maxStoredDecodeSide = 8192

// DecodeStore keeps decodes beyond the process: the caller's persistent
// result tiers, under a key of its own naming the source's identity and
// the name the engine gives (a replaced source never finds an old decode).
// A render given one in Options renders from a kept decode of its Load,
// or decodes and hands the decode to Put.
type DecodeStore interface {
	// Get returns the kept decode called name: the tiers on this machine
	// first, then the shared ones, without waiting for a render anywhere.
	Get(ctx context.Context, name string) ([]byte, bool)
	// Put takes a decode to keep under name, after the render that made
	// it; it keeps it off the response's path, or drops it, and closes d
	// either way.
	Put(name string, d *Decoded)
}

// Decoded is a decode a render made, for a DecodeStore to keep.
type Decoded struct {
	img *vips.Image
	e   *Engine
}

// Bytes is the decode in libvips' format, then its CRC-32C: what
// DecodeStore.Get returns.
func (d *Decoded) Bytes() ([]byte, error) {
	v, err := d.e.files.Save(d.img)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint32(v, crc32.Checksum(v, castagnoli)), nil
}

// castagnoli's CRC has an instruction of its own: a few hundred
// microseconds for a 1280×720 decode. The tiers check their entries
// already; this check travels with the bytes wherever they were kept,
// because a .v cut short in its metadata still loads, without them.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// unframe is the .v in what Bytes returned, when its CRC holds.
func unframe(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, errors.New("kept decode too short")
	}
	v, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(v, castagnoli) != sum {
		return nil, errors.New("kept decode damaged: CRC mismatch")
	}
	return v, nil
}

// Close frees the decode's pixels (once the renders using them are done).
func (d *Decoded) Close() { d.img.Close() }

// storesDecode tells whether the decode of s at l is one a DecodeStore
// keeps: from s and l alone, so every replica agrees.
func (e *Engine) storesDecode(s decode.Source, l decode.Load) bool {
	side := e.cfg.IntermediateSize
	// WebP and SVG load at the output's own scale: their decodes are
	// never the same twice.
	if side == 0 || s.Animation() || l.Pages != 1 || l.Scale != 0 ||
		s.Format == FormatSVG || s.Format == FormatWebP || int64(len(s.Bytes)) < e.cfg.IntermediateMinBytes {
		return false
	}
	w, h := s.DecodedSize(l)
	return max(w, h) <= side
}

// decodeName is the name of the decode of a source at l in a DecodeStore:
// the rule, libvips' version (its loaders make the pixels) and the shrink.
func decodeName(l decode.Load) string {
	return decodeRule + "|" + Version() + "|" + strconv.Itoa(max(1, l.Shrink))
}

// decodeFor is the decoder's Decode of s at l, through opts' DecodeStore
// when it keeps that decode. made, when not nil, is the decode this
// render made, for keepDecode after the render.
func (e *Engine) decodeFor(ctx context.Context, s decode.Source, l decode.Load, opts Options) (*decode.Image, *vips.Image, error) {
	if opts.Decodes == nil || !e.storesDecode(s, l) {
		img, err := e.decoder.Decode(ctx, s, l, opts.Gate)
		return img, nil, err
	}
	st := e.stored(ctx, s, l, opts.Decodes)
	if !e.decoder.KeepsNow(s, l) {
		img, err := e.decoder.DecodeUnkept(ctx, s, l, opts.Gate, st)
		return img, nil, err
	}
	return e.decoder.DecodeStored(ctx, s, l, opts.Gate, st)
}

// stored is how the decoder reads the decode of s at l from st: a kept
// decode that does not load, or is not of that size and pixel type, is a
// miss, and the render decodes (and its Put replaces it).
func (e *Engine) stored(ctx context.Context, s decode.Source, l decode.Load, st DecodeStore) decode.Stored {
	return decode.Stored{Load: func() *vips.Image {
		data, ok := st.Get(ctx, decodeName(l))
		if !ok {
			return nil
		}
		var im *vips.Image
		v, err := unframe(data)
		if err == nil {
			im, err = e.files.Load(v)
		}
		if err == nil {
			err = s.Matches(im, l)
		}
		if err != nil {
			if im != nil {
				im.Close()
			}
			e.rejected()
			return nil
		}
		e.fromStore()
		return im
	}}
}

// keepDecode hands made, the decode of a render that succeeded, to the
// store; after a failure it is dropped.
func (e *Engine) keepDecode(made *vips.Image, l decode.Load, opts Options, err error) {
	if made == nil {
		return
	}
	if err != nil {
		made.Close()
		return
	}
	opts.Decodes.Put(decodeName(l), &Decoded{img: made, e: e})
}

// holdFor is the decoder's Hold of s at l for RenderMany, from st when it
// keeps that decode; made as in decodeFor.
func (e *Engine) holdFor(ctx context.Context, s decode.Source, l decode.Load, st DecodeStore) (*decode.Held, *vips.Image, error) {
	if st == nil || !e.storesDecode(s, l) {
		held, err := e.decoder.Hold(s, l)
		return held, nil, err
	}
	return e.decoder.HoldStored(s, l, e.stored(ctx, s, l, st))
}
