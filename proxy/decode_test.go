package proxy

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/gif"
	_ "image/jpeg"
	"image/png"
	"testing"

	"golang.org/x/image/webp"
)

// imageInfo is what tests check on a response body, decoded with Go's own
// decoders so the check does not trust libvips to judge libvips.
type imageInfo struct {
	format        string
	width, height int
	alpha         bool // the colour model can carry alpha
	frames        int
}

func decodeInfo(t testing.TB, body []byte) imageInfo {
	t.Helper()
	switch {
	case len(body) > 12 && string(body[4:12]) == "ftypavif":
		w, h := avifSize(t, body)
		return imageInfo{format: "avif", width: w, height: h, frames: 1}
	case len(body) > 12 && string(body[0:4]) == "RIFF" && string(body[8:12]) == "WEBP":
		if bytes.Contains(body[:min(len(body), 64)], []byte("ANIM")) {
			// x/image/webp does not decode animations; read the canvas size
			// from the VP8X chunk and count ANMF frames.
			w := 1 + (int(body[24]) | int(body[25])<<8 | int(body[26])<<16)
			h := 1 + (int(body[27]) | int(body[28])<<8 | int(body[29])<<16)
			return imageInfo{format: "webp", width: w, height: h, alpha: body[20]&0x10 != 0, frames: bytes.Count(body, []byte("ANMF"))}
		}
		cfg, err := webp.DecodeConfig(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("decode webp: %v", err)
		}
		return imageInfo{format: "webp", width: cfg.Width, height: cfg.Height, alpha: body[15] == 'X' && body[20]&0x10 != 0, frames: 1}
	case bytes.HasPrefix(body, []byte("GIF8")):
		g, err := gif.DecodeAll(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("decode gif: %v", err)
		}
		return imageInfo{format: "gif", width: g.Config.Width, height: g.Config.Height, alpha: true, frames: len(g.Image)}
	case bytes.HasPrefix(body, []byte("\x89PNG")) && len(body) > 26:
		// Go's decoder returns RGBA even for opaque PNGs: read the colour type.
		ct := body[25]
		hasAlpha := ct == 4 || ct == 6 || bytes.Contains(body, []byte("tRNS"))
		cfg, err := png.DecodeConfig(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("decode png: %v", err)
		}
		return imageInfo{format: "png", width: cfg.Width, height: cfg.Height, alpha: hasAlpha, frames: 1}
	}
	img, format, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("decode: %v (%d bytes, starts %q)", err, len(body), body[:min(len(body), 16)])
	}
	b := img.Bounds()
	alpha := false
	switch img.(type) {
	case *image.NRGBA, *image.NRGBA64:
		alpha = true
	}
	return imageInfo{format: format, width: b.Dx(), height: b.Dy(), alpha: alpha, frames: 1}
}

// avifSize reads the ispe (image spatial extent) property of an AVIF.
func avifSize(t testing.TB, body []byte) (int, int) {
	t.Helper()
	i := bytes.Index(body, []byte("ispe"))
	if i < 0 || i+16 > len(body) {
		t.Fatal("avif without ispe box")
	}
	return int(binary.BigEndian.Uint32(body[i+8:])), int(binary.BigEndian.Uint32(body[i+12:]))
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
