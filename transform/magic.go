package transform

import "bytes"

// Sniff decides the source type from its first bytes (4 KB is plenty)
// against the allow-list. Everything else — PDF, CSV, PPM, BMP, HTML, text —
// is FormatUnknown and never reaches a libvips loader.
func Sniff(b []byte) Format {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return FormatJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return FormatWebP
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return FormatGIF
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")),
		bytes.HasPrefix(b, []byte("II+\x00")), bytes.HasPrefix(b, []byte("MM\x00+")):
		return FormatTIFF
	case bytes.HasPrefix(b, []byte{0xFF, 0x0A}),
		bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n")):
		return FormatJXL
	case len(b) >= 16 && string(b[4:8]) == "ftyp":
		return sniffISOBMFF(b)
	}
	return sniffSVG(b)
}

// sniffISOBMFF reads the ftyp box: the major brand and the compatible
// brands say AVIF or HEIF; MP4, QuickTime and the rest are not images.
func sniffISOBMFF(b []byte) Format {
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

// sniffSVG accepts an XML document whose root element is <svg>: optional
// BOM and whitespace, then any number of XML declarations, comments,
// processing instructions and an svg DOCTYPE before it. An HTML page with
// an inline <svg> is not an SVG.
func sniffSVG(b []byte) Format {
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
				return FormatUnknown
			}
			decl := b[:end]
			if !bytes.Contains(bytes.ToLower(decl[:min(len(decl), 64)]), []byte("svg")) {
				return FormatUnknown
			}
			if i := bytes.IndexByte(decl, '['); i >= 0 {
				b = after(b, "]")
				b = after(b, ">")
			} else {
				b = b[end+1:]
			}
		case bytes.HasPrefix(b, []byte("<svg")):
			if len(b) == 4 {
				return FormatSVG
			}
			switch b[4] {
			case ' ', '\t', '\r', '\n', '>', '/':
				return FormatSVG
			}
			return FormatUnknown
		default:
			return FormatUnknown
		}
		if b == nil {
			return FormatUnknown
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
