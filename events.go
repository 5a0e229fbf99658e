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
// configured variants, below live requests as IMAGE_PROXY_WARM_ON_CHANGE
// does; a deletion purges them.
func serveEvents(s settings, p parts, log *slog.Logger) (func(), error) {
	if s.Proxy.Hooks.EventsToken == "" {
		return func() {}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	work, err := newEventWork(ctx, s, p)
	if err != nil {
		cancel()
		return nil, err
	}
	scope := events.Scope{Bucket: s.Origin.S3.Bucket, Prefix: s.Origin.S3.Prefix,
		Own: []string{s.Cache.ResultPrefix, s.Warm.EventsExportPrefix}}
	r := events.NewReceiver(scope, events.Deps{
		Forget: p.srv.Sources().Forget,
		Warm:   work.warm,
		Purge: func(ctx context.Context, rel string) error {
			return errors.Join(purgeErr(p.srv.Purge(ctx, rel, metrics.PurgeEvent)), work.remove(ctx, rel))
		},
		Metrics: p.m,
		Log:     log,
	})
	p.srv.UseEvents(r)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, p.cfg.Slots())
	}()
	log.Info("taking S3 events at POST /events/s3", "bucket", scope.Bucket, "prefix", scope.Prefix,
		"warm_tiers", p.store.Tiers(), "export_prefix", s.Warm.EventsExportPrefix)
	return func() {
		cancel()
		<-done
	}, nil
}

// eventWork is what an event does beyond dropping an identity: an upload
// is warmed into the persistent result tiers and, with
// IMAGE_PROXY_EVENTS_EXPORT_PREFIX, exported into the bucket from the same
// render; a deletion removes the export's files. Without a persistent tier
// or an export, an upload only drops the identity.
type eventWork struct {
	warmer *warm.Warmer     // nil: nothing to warm into
	export *warm.ExportSink // nil: no export
}

func newEventWork(ctx context.Context, s settings, p parts) (eventWork, error) {
	var w eventWork
	var sinks []warm.Sink
	if warm.Persistent(s.Cache) {
		sinks = append(sinks, warm.NewCacheSink(p.store))
	}
	if prefix := s.Warm.EventsExportPrefix; prefix != "" {
		export, err := warm.NewS3ExportSink(ctx, warm.S3Export{Client: p.client, Bucket: s.Origin.S3.Bucket, Prefix: prefix,
			CacheControl: s.Proxy.CacheControl, Timeout: s.Origin.S3.Timeout})
		if err != nil {
			return w, err
		}
		w.export, sinks = export, append(sinks, export)
	}
	if len(sinks) > 0 {
		spec := s.Warm.Spec(s.Proxy.MaxBox, s.Proxy.Controls)
		w.warmer = warm.New(p.warm, warm.Both(sinks...), spec).Background(p.srv.Limiter())
	}
	return w, nil
}

// warm renders rel's variants not stored yet, then writes the export's
// manifest (conditionally: replicas keep each other's sources).
func (w eventWork) warm(ctx context.Context, rel string) error {
	if w.warmer == nil {
		return nil
	}
	var err error
	if r := w.warmer.Source(ctx, rel); r.Failed() {
		err = r.Err
	}
	return errors.Join(err, w.warmer.Flush())
}

// remove deletes the export's files of rel and its manifest entry.
func (w eventWork) remove(ctx context.Context, rel string) error {
	if w.export == nil {
		return nil
	}
	_, err := w.export.Remove(ctx, rel)
	return errors.Join(err, w.export.Flush())
}

// purgeErr joins the tiers' purge failures.
func purgeErr(ps []cache.Purged) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Err)
	}
	return errors.Join(errs...)
}
