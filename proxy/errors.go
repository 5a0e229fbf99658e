package proxy

import (
	"context"
	"errors"
	"fmt"

	"image-proxy/fault"
	"image-proxy/transform"
)

// paramError is a bad parameter of the HTTP layer's own (a /convert
// field, a bulk body): its text is the public message. The request
// grammar's errors are fault errors.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

// fromTransform maps the engine's kinds onto ours.
var fromTransform = [...]fault.Kind{
	transform.KindInternal:     fault.Internal,
	transform.KindUnsupported:  fault.Unsupported,
	transform.KindInvalidImage: fault.Unprocessable,
	transform.KindTooLarge:     fault.TooManyPixels,
	transform.KindCanceled:     fault.Overloaded,
}

// kindOf finds the kind of any error; msg is a replacement public message.
func kindOf(err error) (k fault.Kind, msg string) {
	var pe *paramError
	var pr *fault.Error
	var te *transform.Error
	switch {
	case errors.As(err, &pe):
		return fault.BadRequest, pe.msg
	case errors.As(err, &pr):
		return pr.Kind, pr.Msg
	case errors.As(err, &te) && int(te.Kind) < len(fromTransform):
		k = fromTransform[te.Kind]
		if k == fault.TooManyPixels {
			msg = fmt.Sprintf(k.Outcome().Msg, te.Limit)
		}
		return k, msg
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fault.Overloaded, ""
	}
	return fault.Internal, ""
}

// classify maps any error to a status and a message safe to show a client:
// one sentence, never a path or libvips text.
func classify(err error) (int, string) {
	k, msg := kindOf(err)
	if msg == "" {
		msg = k.Outcome().Msg
	}
	return k.Outcome().Status, msg
}
