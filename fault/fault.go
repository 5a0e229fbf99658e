// Package fault is what went wrong, as far as a client is concerned: an
// error kind, and the one table from kind to HTTP status, public message
// and the result label a failed fetch of an original is counted under.
// Every package that can fail a request (the request grammar, the origins,
// the HTTP layer) returns these; only the HTTP layer turns them into
// responses. It imports neither an HTTP framework nor libvips.
package fault

import (
	"errors"

	"image-proxy/metrics"
)

// Kind is what went wrong.
type Kind uint8

const (
	Internal Kind = iota
	BadRequest
	NotFound
	Method
	Unsupported
	Unprocessable
	TooManyPixels
	SourceTooBig
	Overloaded
	BadGateway
	GatewayTimeout
	UpstreamTooBig
	StorageError
	StorageTimeout
	Forbidden
	Unauthorized
	BodyTooLarge
)

// Outcome is what a kind means to a client and to the metrics.
type Outcome struct {
	Status int    // HTTP status
	Msg    string // public message; TooManyPixels' has a %d for the limit
	Label  string // result label of a failed fetch of an original
}

var outcomes = [...]Outcome{
	Internal:       {500, "The image could not be processed.", metrics.FallbackError},
	BadRequest:     {400, "The request is malformed.", metrics.FallbackError},
	NotFound:       {404, "No image exists at this path.", metrics.FallbackNotFound},
	Method:         {405, "Only GET and HEAD are allowed.", metrics.FallbackError},
	Unsupported:    {415, "The file is not an image type this server handles.", metrics.FallbackError},
	Unprocessable:  {422, "The image is corrupt or truncated and cannot be transformed.", metrics.FallbackError},
	TooManyPixels:  {422, "The image has more than %d pixels (width × height × frames).", metrics.FallbackError},
	SourceTooBig:   {422, "The source image is larger than this server transforms.", metrics.FallbackError},
	Overloaded:     {503, "The server is busy; retry shortly.", metrics.FallbackError},
	BadGateway:     {502, "The fallback upstream did not return a usable image.", metrics.FallbackError},
	GatewayTimeout: {504, "The fallback upstream did not answer in time.", metrics.FallbackTimeout},
	UpstreamTooBig: {502, "The fallback upstream's image is larger than this server accepts.", metrics.FallbackTooLarge},
	StorageError:   {502, "The image store did not return the image.", metrics.FallbackError},
	StorageTimeout: {504, "The image store did not answer in time.", metrics.FallbackTimeout},
	Forbidden:      {403, "This URL needs a valid signature (sig).", metrics.FallbackError},
	Unauthorized:   {401, "A valid bearer token is required.", metrics.FallbackError},
	BodyTooLarge:   {413, "The request body is larger than this server accepts.", metrics.FallbackError},
}

// Outcome is the table's row for k.
func (k Kind) Outcome() Outcome {
	if int(k) >= len(outcomes) {
		return outcomes[Internal]
	}
	return outcomes[k]
}

// Kinds lists every kind, for tests that walk the table.
func Kinds() []Kind {
	ks := make([]Kind, len(outcomes))
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// Error is an error with a kind. Msg, when set, replaces the kind's public
// message; Err is for logs only.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	s := e.Kind.Outcome().Msg
	if e.Msg != "" {
		s = e.Msg
	}
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// New is an error of kind k; msg replaces the public message when set, err
// is kept for logs.
func New(k Kind, msg string, err error) error { return &Error{Kind: k, Msg: msg, Err: err} }

// As finds the *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
