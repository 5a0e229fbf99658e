package transform

import (
	"slices"
	"strconv"

	"image-proxy/imageformat"
	"image-proxy/transform/decode"
	"image-proxy/transform/internal/vips"
)

// Format is an image format we accept as a source or produce as output;
// imageformat owns the names, aliases, MIME types and which are encoded.
type Format = imageformat.Format

const (
	FormatUnknown = imageformat.Unknown
	FormatJPEG    = imageformat.JPEG
	FormatPNG     = imageformat.PNG
	FormatWebP    = imageformat.WebP
	FormatGIF     = imageformat.GIF
	FormatAVIF    = imageformat.AVIF
	FormatHEIF    = imageformat.HEIF
	FormatTIFF    = imageformat.TIFF
	FormatJXL     = imageformat.JXL
	FormatSVG     = imageformat.SVG
	formatCount   = imageformat.Count
)

// formatSpec is everything the package knows about one format. A format
// is one record in formats; nothing else in the package names formats
// one by one for sniffing, loading, the libvips allow-list or encoding.
type formatSpec struct {
	// magic recognises the format from the first bytes of a file. Stages
	// run in order, so a signature at byte 0 is decisive: a JPEG or TIFF
	// whose bytes 4-8 happen to read "ftyp" is not taken for AVIF.
	magic      func(b []byte) bool
	sniffStage sniffStage

	// load is the format's loader; only the decode layer calls it.
	load decode.Loader
	// operations are the libvips loader and saver nicknames that stay
	// callable; every other loader and saver is blocked at startup.
	operations []string

	save saver // nil when the format is never encoded
	// quality is the operator's quality setting for a lossy encoder; nil
	// when the format has none (PNG is lossless and has a compression
	// level instead, GIF has neither).
	quality func(Config) int
	// settings writes the Config fields that change this format's encoded
	// bytes, for its fingerprint (config.go); nil when it is never encoded.
	settings func(Config) string

	animated bool // several frames survive loading and encoding
}

type sniffStage uint8

const (
	sniffSignature sniffStage = iota // fixed bytes at the start
	sniffBox                         // a brand in an ISOBMFF ftyp box
	sniffText                        // a text document, tried last
	sniffStages
)

// formats is read-only: indexed by Format, never written after
// initialisation.
var formats = [formatCount]formatSpec{
	FormatUnknown: {},
	FormatJPEG: {
		magic: isJPEG, load: loadJPEG,
		operations: []string{"jpegload_buffer", "jpegsave_buffer"},
		save:       saveJPEG,
		quality:    func(c Config) int { return c.JPEGQuality },
		settings:   func(c Config) string { return "j" + strconv.Itoa(c.JPEGQuality) },
	},
	FormatPNG: {
		magic: isPNG, load: loadPNG,
		operations: []string{"pngload_buffer", "pngsave_buffer"},
		save:       savePNG,
		settings:   func(c Config) string { return "p" + strconv.Itoa(c.PNGCompression) },
	},
	FormatWebP: {
		magic: isWebP, load: loadWebP,
		operations: []string{"webpload_buffer", "webpsave_buffer"},
		save:       saveWebP,
		quality:    func(c Config) int { return c.WebPQuality },
		settings:   func(c Config) string { return "w" + strconv.Itoa(c.WebPQuality) + "." + strconv.Itoa(c.WebPEffort) },
		animated:   true,
	},
	FormatGIF: {
		magic: isGIF, load: loadGIF,
		operations: []string{"gifload_buffer", "gifsave_buffer"},
		save:       saveGIF,
		settings:   func(Config) string { return "g" }, // no setting yet: a name, so the join stays readable
		animated:   true,
	},
	FormatAVIF: {
		magic: isAVIF, sniffStage: sniffBox, load: loadHEIF,
		operations: []string{"heifload_buffer", "heifsave_buffer"},
		save:       saveAVIF,
		quality:    func(c Config) int { return c.AVIFQuality },
		settings:   func(c Config) string { return "a" + strconv.Itoa(c.AVIFQuality) + "." + strconv.Itoa(c.AVIFSpeed) },
	},
	FormatHEIF: {
		magic: isHEIF, sniffStage: sniffBox, load: loadHEIF,
		operations: []string{"heifload_buffer"},
	},
	FormatTIFF: {
		magic: isTIFF, load: loadTIFF,
		operations: []string{"tiffload_buffer"},
	},
	FormatJXL: {
		magic: isJXL, load: loadJXL,
		operations: []string{"jxlload_buffer"},
	},
	FormatSVG: {
		magic: isSVG, sniffStage: sniffText, load: loadSVG,
		// svgload is marked untrusted; listing it re-enables it, which is
		// safe because loadSVG only ever feeds it from memory.
		operations: []string{"svgload_buffer"},
	},
}

func spec(f Format) *formatSpec {
	if f < formatCount {
		return &formats[f]
	}
	return &formats[FormatUnknown]
}

// ParseFormat resolves an output format's name or alias, case-insensitively.
func ParseFormat(name string) (Format, bool) { return imageformat.Parse(name) }

// Outputs lists the formats a render can produce, in Format order.
func Outputs() []Format { return imageformat.Outputs() }

// OutputNames lists every name ParseFormat accepts, in the contract's order.
func OutputNames() []string { return imageformat.OutputNames() }

// allowedOperations is the libvips allow-list: every operation a record
// names, and libvips' own format, in which decodes are persisted
// (persisted.go; only ever our own bytes, from our own tiers).
func allowedOperations() []string {
	ops := []string{"vipsload", "vipssave"}
	for f := range formatCount {
		for _, op := range spec(f).operations {
			if !slices.Contains(ops, op) {
				ops = append(ops, op)
			}
		}
	}
	return ops
}

// Every loader reads sequentially, so libvips streams the decode through
// the pipeline instead of holding the whole decoded image, and fails on
// truncated or corrupt data rather than filling it with grey.
const (
	loadAccess = vips.AccessSequential
	loadFailOn = vips.FailOnError
)

func loadJPEG(src []byte, p decode.Load) (*vips.Image, error) {
	return vips.NewJpegloadBuffer(src, &vips.JpegloadBufferOptions{Shrink: max(1, p.Shrink), Access: loadAccess, FailOn: loadFailOn})
}

func loadPNG(src []byte, _ decode.Load) (*vips.Image, error) {
	return vips.NewPngloadBuffer(src, &vips.PngloadBufferOptions{Access: loadAccess, FailOn: loadFailOn})
}

func loadWebP(src []byte, p decode.Load) (*vips.Image, error) {
	return vips.NewWebploadBuffer(src, &vips.WebploadBufferOptions{N: p.Pages, Scale: p.ScaleOrOne(), Access: loadAccess, FailOn: loadFailOn})
}

func loadGIF(src []byte, p decode.Load) (*vips.Image, error) {
	return vips.NewGifloadBuffer(src, &vips.GifloadBufferOptions{N: p.Pages, Access: loadAccess, FailOn: loadFailOn})
}

func loadHEIF(src []byte, _ decode.Load) (*vips.Image, error) {
	return vips.NewHeifloadBuffer(src, &vips.HeifloadBufferOptions{N: 1, Access: loadAccess, FailOn: loadFailOn})
}

func loadTIFF(src []byte, _ decode.Load) (*vips.Image, error) {
	return vips.NewTiffloadBuffer(src, &vips.TiffloadBufferOptions{N: 1, Access: loadAccess, FailOn: loadFailOn})
}

func loadJXL(src []byte, _ decode.Load) (*vips.Image, error) {
	return vips.NewJxlloadBuffer(src, &vips.JxlloadBufferOptions{Access: loadAccess, FailOn: loadFailOn})
}

// loadSVG is always from memory: from a path, librsvg would resolve
// references to files beside it.
func loadSVG(src []byte, p decode.Load) (*vips.Image, error) {
	return vips.NewSvgloadBuffer(src, &vips.SvgloadBufferOptions{Dpi: 72, Scale: p.ScaleOrOne(), Access: loadAccess, FailOn: loadFailOn})
}
