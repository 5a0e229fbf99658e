package proxy

import (
	"context"
	"errors"

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
	kindOverloaded
	kindBadGateway
	kindGatewayTimeout
	kindSourceTooBig
	kindUpstreamTooBig
)

// outcome is the one table from error kind to status and default message.
var outcome = [...]struct {
	status int
	msg    string
}{
	kindInternal:       {500, "The image could not be processed."},
	kindBadRequest:     {400, "The request is malformed."},
	kindNotFound:       {404, "No image exists at this path."},
	kindMethod:         {405, "Only GET and HEAD are allowed."},
	kindUnsupported:    {415, "The file is not an image type this server handles."},
	kindUnprocessable:  {422, "The image is corrupt or truncated and cannot be transformed."},
	kindOverloaded:     {503, "The server is busy; retry shortly."},
	kindBadGateway:     {502, "The fallback upstream did not return a usable image."},
	kindGatewayTimeout: {504, "The fallback upstream did not answer in time."},
	kindSourceTooBig:   {422, "The source image is larger than this server transforms."},
	kindUpstreamTooBig: {502, "The fallback upstream's image is larger than this server accepts."},
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

// classify maps any error to a status and a message safe to show a client:
// one sentence, never a path or libvips text.
func classify(err error) (int, string) {
	var pe *paramError
	var pr *problem
	var te *transform.Error
	switch {
	case errors.As(err, &pe):
		return 400, pe.msg
	case errors.As(err, &pr):
		o := outcome[pr.kind]
		if pr.msg != "" {
			return o.status, pr.msg
		}
		return o.status, o.msg
	case errors.As(err, &te):
		switch te.Kind {
		case transform.KindUnsupported:
			return 415, outcome[kindUnsupported].msg
		case transform.KindInvalidImage, transform.KindTooLarge:
			return 422, te.Msg
		case transform.KindCanceled:
			return 503, outcome[kindOverloaded].msg
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 503, outcome[kindOverloaded].msg
	}
	return 500, outcome[kindInternal].msg
}
