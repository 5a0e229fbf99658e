// Package transform turns source image bytes into a resized, re-encoded
// image. It is the only package that talks to libvips; it knows nothing of
// HTTP, caches or metrics.
package transform

import (
	"errors"
	"time"
)

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

// UnmarshalText lets an Algorithm be a setting. The error is a
// *SettingError without a Name: only the caller knows where the text came
// from.
func (a *Algorithm) UnmarshalText(text []byte) error {
	v, ok := ParseAlgorithm(string(text))
	if !ok {
		return &SettingError{Value: string(text), Allowed: "lanczos3, thumbnail or auto"}
	}
	*a = v
	return nil
}

// MarshalText writes the name UnmarshalText reads.
func (a Algorithm) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// equalFold folds ASCII only: strings.EqualFold would also take the
// Kelvin sign for a "k".
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
//
// Box, Width and Height bound the output together: it fits inside every
// bound given (Box on both sides), aspect ratio kept, never enlarged. Width
// and Height are of the upright image, after EXIF orientation.
type Options struct {
	Box       int // 0 = keep the source dimensions (format-only transform)
	Width     int // 0 = no bound on the width
	Height    int // 0 = no bound on the height
	Format    Format
	Algorithm Algorithm
	Quality   int // 1-100 replaces the format's configured quality; 0 = the setting
	// Source is an opaque identity of the source bytes, different whenever
	// they may differ; renders of one Source share its decode through the
	// decode cache. Empty: the decode is not shared.
	Source string
	// Gate, when set, is the caller's bound on concurrent renders, held
	// while Render runs (see Gate).
	Gate Gate
}

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

// ErrorKind classifies a failure; the HTTP layer owns what each kind means
// to a client.
type ErrorKind uint8

const (
	KindInternal     ErrorKind = iota
	KindUnsupported            // not an image type we handle
	KindInvalidImage           // corrupt, truncated, unreadable header
	KindTooLarge               // over MaxSourcePixels
	KindCanceled               // context done before or between steps
)

var kindNames = [...]string{"internal", "unsupported", "invalid image", "too large", "canceled"}

// String names the kind for logs.
func (k ErrorKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "internal"
}

// Error is the only error type Render returns. It carries no text for
// clients: Err (possibly libvips' words) is for logs.
type Error struct {
	Kind  ErrorKind
	Err   error
	Limit int64 // KindTooLarge: the pixel limit the source exceeds
}

// Error is a log text: the kind, then the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Kind.String() + ": " + e.Err.Error()
	}
	return e.Kind.String()
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
