package proxy

import (
	"context"
	"errors"
	"fmt"

	"image-proxy/metrics"
	"image-proxy/transform"
)

// kind is what went wrong, as far as a client is concerned.
type kind uint8

const (
	kindInternal kind = iota
	kindBadRequest
	kindNotFound
	kindMethod
	kindUnsupported
	kindUnprocessable
	kindTooManyPixels
	kindSourceTooBig
	kindOverloaded
	kindBadGateway
	kindGatewayTimeout
	kindUpstreamTooBig
	kindStorageError
	kindStorageTimeout
	kindForbidden
	kindUnauthorized
	kindBodyTooLarge
)

// outcome is the one table from error kind to status, public message and
// the result label a failed fetch of an original is counted under.
var outcome = [...]struct {
	status int
	msg    string
	label  string
}{
	kindInternal:       {500, "The image could not be processed.", metrics.FallbackError},
	kindBadRequest:     {400, "The request is malformed.", metrics.FallbackError},
	kindNotFound:       {404, "No image exists at this path.", metrics.FallbackNotFound},
	kindMethod:         {405, "Only GET and HEAD are allowed.", metrics.FallbackError},
	kindUnsupported:    {415, "The file is not an image type this server handles.", metrics.FallbackError},
	kindUnprocessable:  {422, "The image is corrupt or truncated and cannot be transformed.", metrics.FallbackError},
	kindTooManyPixels:  {422, "The image has more than %d pixels (width × height × frames).", metrics.FallbackError},
	kindSourceTooBig:   {422, "The source image is larger than this server transforms.", metrics.FallbackError},
	kindOverloaded:     {503, "The server is busy; retry shortly.", metrics.FallbackError},
	kindBadGateway:     {502, "The fallback upstream did not return a usable image.", metrics.FallbackError},
	kindGatewayTimeout: {504, "The fallback upstream did not answer in time.", metrics.FallbackTimeout},
	kindUpstreamTooBig: {502, "The fallback upstream's image is larger than this server accepts.", metrics.FallbackTooLarge},
	kindStorageError:   {502, "The image store did not return the image.", metrics.FallbackError},
	kindStorageTimeout: {504, "The image store did not answer in time.", metrics.FallbackTimeout},
	kindForbidden:      {403, "This URL needs a valid signature (sig).", metrics.FallbackError},
	kindUnauthorized:   {401, "A valid bearer token is required.", metrics.FallbackError},
	kindBodyTooLarge:   {413, "The request body is larger than this server accepts.", metrics.FallbackError},
}

// fromTransform maps the engine's kinds onto ours.
var fromTransform = [...]kind{
	transform.KindInternal:     kindInternal,
	transform.KindUnsupported:  kindUnsupported,
	transform.KindInvalidImage: kindUnprocessable,
	transform.KindTooLarge:     kindTooManyPixels,
	transform.KindCanceled:     kindOverloaded,
}

// problem is an error with a kind. msg, when set, replaces the default public
// message; err is for logs only.
type problem struct {
	kind kind
	msg  string
	err  error
}

func (p *problem) Error() string {
	s := outcome[p.kind].msg
	if p.msg != "" {
		s = p.msg
	}
	if p.err != nil {
		s += " (" + p.err.Error() + ")"
	}
	return s
}

func (p *problem) Unwrap() error { return p.err }

func fail(k kind, msg string, err error) error { return &problem{kind: k, msg: msg, err: err} }

// kindOf finds the kind of any error; msg is a replacement public message.
func kindOf(err error) (k kind, msg string) {
	var pe *paramError
	var pr *problem
	var te *transform.Error
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		return rf.kind, rf.msg
	case errors.As(err, &pe):
		return kindBadRequest, pe.msg
	case errors.As(err, &pr):
		return pr.kind, pr.msg
	case errors.As(err, &te) && int(te.Kind) < len(fromTransform):
		k = fromTransform[te.Kind]
		if k == kindTooManyPixels {
			msg = fmt.Sprintf(outcome[k].msg, te.Limit)
		}
		return k, msg
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kindOverloaded, ""
	}
	return kindInternal, ""
}

// classify maps any error to a status and a message safe to show a client:
// one sentence, never a path or libvips text.
func classify(err error) (int, string) {
	k, msg := kindOf(err)
	if msg == "" {
		msg = outcome[k].msg
	}
	return outcome[k].status, msg
}

// fallbackResult is the result label of one upstream fetch.
func fallbackResult(err error) string {
	if err == nil {
		return metrics.FallbackOK
	}
	k, _ := kindOf(err)
	return outcome[k].label
}
