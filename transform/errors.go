package transform

import (
	"context"
	"errors"
	"fmt"

	"image-proxy/transform/decode"
)

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

// How each failure becomes an Error; every stage reads these.

func unsupported() error {
	return &Error{Kind: KindUnsupported, Err: errors.New("no format on the allow-list matches the first bytes")}
}

func canceled(ctx context.Context) error {
	return &Error{Kind: KindCanceled, Err: context.Cause(ctx)}
}

func invalid(err error) error { return &Error{Kind: KindInvalidImage, Err: err} }

func internal(step string, err error) error {
	return &Error{Kind: KindInternal, Err: fmt.Errorf("%s: %w", step, err)}
}

// broken classifies a failure at step after the header loaded: the
// client's (invalid) only when s does not decode at l, ours otherwise.
func broken(s decode.Source, l decode.Load, step string, err error) error {
	return fromDecode(s.Failed(l, step, err))
}

// fromDecode turns the decode layer's error into Render's.
func fromDecode(err error) error {
	var de *decode.Error
	switch {
	case !errors.As(err, &de):
		return internal("decode", err)
	case de.Canceled:
		return &Error{Kind: KindCanceled, Err: de.Err}
	case de.Corrupt != nil:
		return invalid(fmt.Errorf("%s: %w (decoding the source: %v)", de.Step, de.Err, de.Corrupt))
	}
	return internal(de.Step, de.Err)
}
