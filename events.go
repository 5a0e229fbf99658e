package main

import (
	"context"
	"errors"
	"log/slog"

	"image-proxy/cache"
	"image-proxy/events"
	"image-proxy/metrics"
	"image-proxy/warm"
)

// errEventsWithoutS3 refuses an events token on a server without a bucket:
// there would be nothing for the events to name.
var errEventsWithoutS3 = errors.New("invalid setting IMAGE_PROXY_EVENTS_TOKEN: S3 events need a bucket; set IMAGE_PROXY_S3_BUCKET (or leave the token empty)")

// checkEvents is the events' rule across sections of the settings.
func checkEvents(s settings) error {
	if s.Proxy.Hooks.EventsToken != "" && !s.Origin.S3.Enabled() {
		return errEventsWithoutS3
	}
	return nil
}

// serveEvents builds the receiver of POST /events/s3 when its token is
// set, hands it to the server and starts its workers; the returned stop
// cancels them and waits until they have stopped. An upload warms the
// configured variants into the persistent result tiers, below live
// requests as IMAGE_PROXY_WARM_ON_CHANGE does; a deletion purges.
func serveEvents(s settings, p parts, log *slog.Logger) func() {
	if s.Proxy.Hooks.EventsToken == "" {
		return func() {}
	}
	scope := events.Scope{Bucket: s.Origin.S3.Bucket, Prefix: s.Origin.S3.Prefix, Own: []string{s.Cache.ResultPrefix}}
	d := events.Deps{
		Forget: p.srv.Sources().Forget,
		Warm:   eventWarm(s, p),
		Purge: func(ctx context.Context, rel string) error {
			return purgeErr(p.srv.Purge(ctx, rel, metrics.PurgeEvent))
		},
		Metrics: p.m,
		Log:     log,
	}
	r := events.NewReceiver(scope, d)
	p.srv.UseEvents(r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, p.cfg.Slots())
	}()
	log.Info("taking S3 events at POST /events/s3", "bucket", scope.Bucket, "prefix", scope.Prefix, "warm_tiers", p.store.Tiers())
	return func() {
		cancel()
		<-done
	}
}

// eventWarm is what an upload warms: the configured variants into the
// persistent tiers. Without one, an upload only drops the old identity.
func eventWarm(s settings, p parts) func(context.Context, string) error {
	if !warm.Persistent(s.Cache) {
		return func(context.Context, string) error { return nil }
	}
	w := warm.New(p.warm, warm.NewCacheSink(p.store), s.Warm.Spec(s.Proxy.MaxBox)).Background(p.srv.Limiter())
	return func(ctx context.Context, rel string) error {
		r := w.Source(ctx, rel)
		if r.Failed() {
			return r.Err
		}
		return nil
	}
}

// purgeErr joins the tiers' purge failures.
func purgeErr(ps []cache.Purged) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Err)
	}
	return errors.Join(errs...)
}
