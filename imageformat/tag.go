package imageformat

// Tag is how a rendered image is kept in the result cache: its format's
// byte, then the image, so a hit knows its Content-Type without sniffing
// (and why Format values are never renumbered). Live renders (proxy) and
// warm (warm's cache sink) both store through it; Untag reads it back.
func Tag(f Format, image []byte) []byte {
	out := make([]byte, 1+len(image))
	out[0] = byte(f)
	copy(out[1:], image)
	return out
}

// TagBytes is how much of a value Tag puts before the image.
const TagBytes = 1

// Untag splits a value Tag made into the format and the image (a
// sub-slice, no copy).
func Untag(v []byte) (Format, []byte) { return Format(v[0]), v[1:] }
