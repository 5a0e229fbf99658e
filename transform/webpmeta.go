package transform

import "encoding/binary"

// stripWebPMetadata removes EXIF and XMP chunks from an encoded WebP.
// libvips 8.14's webpsave writes a fresh EXIF block (resolution,
// orientation) even when asked to strip, so we drop it from the container.
func stripWebPMetadata(b []byte) []byte {
	if len(b) < 30 || string(b[12:16]) != "VP8X" {
		return b // simple WebP: no metadata chunks possible
	}
	out := make([]byte, 0, len(b))
	out = append(out, b[:12]...)
	for i := 12; i+8 <= len(b); {
		size := int(binary.LittleEndian.Uint32(b[i+4:]))
		end := i + 8 + size + size&1 // chunks are padded to even length
		if size < 0 || end > len(b) {
			return b // malformed: leave it as libvips wrote it
		}
		switch string(b[i : i+4]) {
		case "EXIF", "XMP ":
		default:
			out = append(out, b[i:end]...)
		}
		i = end
	}
	out[20] &^= 0x08 | 0x04 // VP8X flags: no EXIF, no XMP
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}
