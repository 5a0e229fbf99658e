package warm

import (
	"context"
	"errors"

	"image-proxy/origin"
	"image-proxy/transform"
)

// Both keeps each variant in every one of sinks, from one render: the
// result tiers and an export, as S3 events do with
// IMAGE_PROXY_EVENTS_EXPORT_PREFIX. An item is skipped only when every
// sink holds it; otherwise it is rendered once and put into each.
func Both(sinks ...Sink) Sink { return both(sinks) }

type both []Sink

func (b both) Has(ctx context.Context, o origin.Original, it Item) bool {
	for _, s := range b {
		if !s.Has(ctx, o, it) {
			return false
		}
	}
	return true
}

func (b both) Put(ctx context.Context, o origin.Original, it Item, res transform.Result) error {
	var errs []error
	for _, s := range b {
		errs = append(errs, s.Put(ctx, o, it, res))
	}
	return errors.Join(errs...)
}

func (b both) Flush() error {
	var errs []error
	for _, s := range b {
		errs = append(errs, s.Flush())
	}
	return errors.Join(errs...)
}
