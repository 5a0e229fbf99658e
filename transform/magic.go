package transform

import "bytes"

// Sniff decides the source type from its first bytes (4 KB is plenty)
// against the allow-list. Everything else — PDF, CSV, PPM, BMP, HTML, text —
// is FormatUnknown and never reaches a libvips loader.
func Sniff(b []byte) Format {
	for stage := range sniffStages {
		for f := range formatCount {
			if s := spec(f); s.magic != nil && s.sniffStage == stage && s.magic(b) {
				return f
			}
		}
	}
	return FormatUnknown
}

func isJPEG(b []byte) bool { return len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }

func isPNG(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }

func isWebP(b []byte) bool {
	return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
}

func isGIF(b []byte) bool {
	return bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a"))
}

func isTIFF(b []byte) bool {
	return bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")) ||
		bytes.HasPrefix(b, []byte("II+\x00")) || bytes.HasPrefix(b, []byte("MM\x00+"))
}

// isJXL accepts a bare codestream and the ISOBMFF-style container.
func isJXL(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xFF, 0x0A}) ||
		bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n"))
}

func isAVIF(b []byte) bool { return heifBrand(b) == FormatAVIF }

func isHEIF(b []byte) bool { return heifBrand(b) == FormatHEIF }

func hasFtypBox(b []byte) bool { return len(b) >= 16 && string(b[4:8]) == "ftyp" }

// heifBrand reads the ftyp box: the major brand and the compatible brands
// say AVIF or HEIF; MP4, QuickTime and the rest are not images.
func heifBrand(b []byte) Format {
	if !hasFtypBox(b) {
		return FormatUnknown
	}
	size := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if size < 16 || size > len(b) {
		size = len(b)
	}
	heif := false
	check := func(brand string) Format {
		switch brand {
		case "avif", "avis":
			return FormatAVIF
		case "heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs", "mif1", "msf1":
			heif = true
		}
		return FormatUnknown
	}
	if f := check(string(b[8:12])); f != FormatUnknown {
		return f
	}
	for i := 16; i+4 <= size; i += 4 {
		if f := check(string(b[i : i+4])); f != FormatUnknown {
			return f
		}
	}
	if heif {
		return FormatHEIF
	}
	return FormatUnknown
}

// isSVG accepts an XML document whose root element is <svg>: optional
// BOM and whitespace, then any number of XML declarations, comments,
// processing instructions and an svg DOCTYPE before it. An HTML page with
// an inline <svg> is not an SVG.
func isSVG(b []byte) bool {
	if hasFtypBox(b) {
		// An ISOBMFF file without an image brand is a video, whatever
		// text it carries.
		return false
	}
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			b = after(b, "?>")
		case bytes.HasPrefix(b, []byte("<!--")):
			b = after(b, "-->")
		case hasPrefixFold(b, "<!doctype"):
			end := bytes.IndexByte(b, '>')
			if end < 0 {
				return false
			}
			decl := b[:end]
			if !bytes.Contains(bytes.ToLower(decl[:min(len(decl), 64)]), []byte("svg")) {
				return false
			}
			if i := bytes.IndexByte(decl, '['); i >= 0 {
				b = after(b, "]")
				b = after(b, ">")
			} else {
				b = b[end+1:]
			}
		case bytes.HasPrefix(b, []byte("<svg")):
			if len(b) == 4 {
				return true
			}
			switch b[4] {
			case ' ', '\t', '\r', '\n', '>', '/':
				return true
			}
			return false
		default:
			return false
		}
		if b == nil {
			return false
		}
	}
}

// after returns what follows the first sep, or nil when there is none.
func after(b []byte, sep string) []byte {
	i := bytes.Index(b, []byte(sep))
	if i < 0 {
		return nil
	}
	return b[i+len(sep):]
}

// hasPrefixFold compares case-insensitively; prefix must be lower case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && equalFold(string(b[:len(prefix)]), prefix)
}
