package proxy

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"image-proxy/fault"
	"image-proxy/metrics"
	"image-proxy/transform"
)

// metrics.New creates the series of fixed label sets at start so they exist
// at 0; a status or format this package can produce but those sets lack
// would again be absent until first counted.
func TestStartSeriesCoverHandlerLabels(t *testing.T) {
	errs := []error{&paramError{msg: "bad"}, context.Canceled, context.DeadlineExceeded, errors.New("unexpected")}
	for _, k := range fault.Kinds() {
		errs = append(errs, fault.New(k, "", nil))
	}
	// Beyond the declared kinds too: classify must map any kind somewhere.
	for k := range 32 {
		errs = append(errs, &transform.Error{Kind: transform.ErrorKind(k)})
	}
	for _, err := range errs {
		status, _ := classify(err)
		if code := strconv.Itoa(status); !slices.Contains(metrics.HTTPCodes[metrics.KindError], code) {
			t.Errorf("%v answers %s, which metrics.HTTPCodes[error] does not create at start", err, code)
		}
	}
	for f := range 256 {
		if format := transform.Format(f); format.CanEncode() && !slices.Contains(metrics.OutputFormats(), format.String()) {
			t.Errorf("output format %s is missing from metrics.OutputFormats()", format)
		}
	}
}
