// Package transform turns source image bytes into a resized, re-encoded
// image. It is the only package that talks to libvips; it knows nothing of
// HTTP, caches or metrics.
package transform

import (
	"errors"
	"fmt"
)

// Format is an image format we accept as a source or produce as output.
type Format uint8

const (
	FormatUnknown Format = iota
	FormatJPEG
	FormatPNG
	FormatWebP
	FormatGIF
	FormatAVIF
	FormatHEIF
	FormatTIFF
	FormatJXL
	FormatSVG
)

var formatNames = [...]string{"unknown", "jpeg", "png", "webp", "gif", "avif", "heif", "tiff", "jxl", "svg"}

var formatMIME = [...]string{
	"application/octet-stream", "image/jpeg", "image/png", "image/webp", "image/gif",
	"image/avif", "image/heif", "image/tiff", "image/jxl", "image/svg+xml",
}

// String is the short lower-case name, also used as a metrics label.
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "unknown"
}

// MIME is the Content-Type of a body in this format.
func (f Format) MIME() string {
	if int(f) < len(formatMIME) {
		return formatMIME[f]
	}
	return formatMIME[0]
}

// CanEncode reports whether f is one of the output formats of the contract.
func (f Format) CanEncode() bool {
	switch f {
	case FormatJPEG, FormatPNG, FormatWebP, FormatGIF, FormatAVIF:
		return true
	}
	return false
}

// Algorithm selects the resampling route.
type Algorithm uint8

const (
	// AlgorithmAuto: shrink-on-load as far as the target allows, then lanczos3.
	AlgorithmAuto Algorithm = iota
	// AlgorithmLanczos3: keep a 2x margin before the final lanczos3 pass (best quality).
	AlgorithmLanczos3
	// AlgorithmThumbnail: the fastest route (maximal shrink-on-load, cheap kernel).
	AlgorithmThumbnail
)

var algorithmNames = [...]string{"auto", "lanczos3", "thumbnail"}

func (a Algorithm) String() string {
	if int(a) < len(algorithmNames) {
		return algorithmNames[a]
	}
	return "auto"
}

// ParseAlgorithm accepts the contract's names, case-insensitively.
func ParseAlgorithm(s string) (Algorithm, bool) {
	for i, n := range algorithmNames {
		if equalFold(s, n) {
			return Algorithm(i), true
		}
	}
	return AlgorithmAuto, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// Options describe one output variant. They are already normalised by the
// caller: Box is the effective box (size × dpr, capped), Format is either a
// concrete encodable format or FormatUnknown meaning "the source's default".
type Options struct {
	Box       int // 0 = keep the source dimensions (format-only transform)
	Format    Format
	Algorithm Algorithm
}

// Result is an encoded image.
type Result struct {
	Data   []byte
	Format Format
	Width  int
	Height int // of one frame
	Frames int
}

// Config holds the encoder and safety settings.
type Config struct {
	JPEGQuality     int   // 0-100
	WebPQuality     int   // 0-100
	WebPEffort      int   // 0-6
	AVIFQuality     int   // 0-100
	AVIFSpeed       int   // 1-10, higher = faster
	PNGCompression  int   // 0-9
	MaxSourcePixels int64 // width × height × frames
}

// DefaultConfig returns the contract's defaults.
func DefaultConfig() Config {
	return Config{JPEGQuality: 75, WebPQuality: 80, WebPEffort: 4, AVIFQuality: 85, AVIFSpeed: 6, PNGCompression: 6, MaxSourcePixels: 50_000_000}
}

// Fingerprint is a stable string of every setting that changes output
// bytes; it belongs in every cache key and ETag.
func (c Config) Fingerprint() string {
	return fmt.Sprintf("j%d.w%d.%d.a%d.%d.p%d.v1", c.JPEGQuality, c.WebPQuality, c.WebPEffort, c.AVIFQuality, c.AVIFSpeed, c.PNGCompression)
}

// ErrorKind classifies a failure so the HTTP layer can map it to a status.
type ErrorKind uint8

const (
	KindInternal     ErrorKind = iota
	KindUnsupported            // not an image type we handle
	KindInvalidImage           // corrupt, truncated, unreadable header
	KindTooLarge               // over MaxSourcePixels
	KindCanceled               // context done before or between steps
)

// Error is the only error type Render returns. Msg is safe to show a client;
// Err (possibly libvips text) is for logs only.
type Error struct {
	Kind ErrorKind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of err, KindInternal when it is not an *Error.
func KindOf(err error) ErrorKind {
	var te *Error
	if errors.As(err, &te) {
		return te.Kind
	}
	return KindInternal
}
