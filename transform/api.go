// Package transform turns source image bytes into a resized, re-encoded
// image. It is the only package that talks to libvips; it knows nothing of
// HTTP, caches or metrics.
package transform

import (
	"time"

	"image-proxy/imageformat"
	"image-proxy/transform/decode"
)

// Algorithm selects the resampling route (imageformat owns the names).
type Algorithm = imageformat.Algorithm

const (
	AlgorithmAuto      = imageformat.AlgorithmAuto
	AlgorithmLanczos3  = imageformat.AlgorithmLanczos3
	AlgorithmThumbnail = imageformat.AlgorithmThumbnail
)

// ParseAlgorithm accepts the contract's names, case-insensitively.
func ParseAlgorithm(s string) (Algorithm, bool) { return imageformat.ParseAlgorithm(s) }

// The shape of an output (imageformat owns the names, so the request
// grammar can name them without libvips).
type (
	Fit        = imageformat.Fit
	Gravity    = imageformat.Gravity
	Focus      = imageformat.Focus
	Background = imageformat.Background
)

const (
	FitContain = imageformat.FitContain
	FitCover   = imageformat.FitCover
	FitFill    = imageformat.FitFill
	FitPad     = imageformat.FitPad

	GravitySmart   = imageformat.GravitySmart
	GravityEntropy = imageformat.GravityEntropy
)

func equalFold(a, b string) bool { return imageformat.EqualFold(a, b) }

// Options describe one output variant. They are already normalised by the
// caller: Box is the effective box (size × dpr, capped), Format is either a
// concrete encodable format or FormatUnknown meaning "the source's default".
//
// Box, Width and Height bound the output together: it fits inside every
// bound given (Box on both sides), aspect ratio kept, never enlarged. Width
// and Height are of the upright image, after EXIF orientation.
//
// Fit cover, fill and pad (which need Width and Height, and ignore Box)
// make the output exactly Width × Height instead: cover crops what
// overflows (Gravity or Focus choose what stays), fill stretches, pad
// extends the canvas with Background around the contained picture. Cover
// and fill never enlarge: the box is scaled down by one factor to what
// the source allows. Everything is in upright coordinates.
type Options struct {
	Box        int // 0 = keep the source dimensions (format-only transform)
	Width      int // 0 = no bound on the width
	Height     int // 0 = no bound on the height
	Fit        Fit
	Gravity    Gravity    // cover: which part stays; pad: where the picture sits
	Focus      Focus      // cover: the point the crop centres on, as far as the edges allow
	Background Background // pad's canvas and what alpha is flattened onto for JPEG; unset: white
	Blur       float64    // Gaussian sigma in output pixels; 0 = none
	Format     Format
	Algorithm  Algorithm
	Quality    int // 1-100 replaces the format's configured quality; 0 = the setting
	// Source is an opaque identity of the source bytes, different whenever
	// they may differ; renders of one Source share its decode through the
	// decode cache. Empty: the decode is not shared.
	Source string
	// Gate, when set, is the caller's bound on concurrent renders, held
	// while Render runs (see Gate).
	Gate Gate
	// Decodes, when set, keeps decodes of the source beyond the process
	// (persisted.go): a render whose Load is a kept one renders from it,
	// byte for byte as from the source. nil: every render decodes.
	Decodes DecodeStore
}

// Gate bounds how many renders work at once (the caller's slots). The
// caller holds it when it calls Render; Render leaves it while waiting for
// another render's decode of the same source and enters again before it
// works, so a waiting render does not keep a slot idle.
type Gate = decode.Gate

// Observer receives the decode cache's events; nil fields are skipped.
// It is how a caller turns them into metrics.
type Observer = decode.Observer

// Result is an encoded image.
type Result struct {
	Data   []byte
	Format Format
	Width  int
	Height int // of one frame
	Frames int
	// Elapsed is what this result cost inside RenderMany: its own resize
	// and encode, measured, plus an equal share of the header read and of
	// the decode it shared with the other options at its load. The shares
	// add up to the call's time, so a caller recording per-variant
	// durations neither loses nor counts twice the decode. Render leaves
	// it 0: its caller times the call.
	Elapsed time.Duration
}
