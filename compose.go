package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/origin"
	"image-proxy/proxy"
	"image-proxy/transform"
	"image-proxy/warm"
)

// runServer is the composition root: every part is built here, in order,
// and nowhere else.
func runServer(s settings, log *slog.Logger, tp trace.TracerProvider) error {
	if err := transform.Startup(log); err != nil {
		return err
	}
	defer transform.Shutdown()
	p, closeAll, err := build(s, log, tp)
	if err != nil {
		return err
	}
	defer closeAll()
	cfg, o := p.cfg, s.Origin
	log.Info("image-proxy starting", "version", version, "libvips", transform.Version(),
		"bind", cfg.BindAddress, "root", o.Local.RootPath, "strip_path", cfg.StripPath,
		"fallback", o.Fallback.URL != "", "s3", o.S3, "s3_result_prefix", s.Cache.ResultPrefix, "sources", p.sources, "tiers", p.tiers, "cache", s.Cache.Enabled, "disk_cache", s.Cache.DiskEnabled,
		"cache_memory_bytes", s.Cache.MemorySize, "cache_disk_bytes", s.Cache.DiskSize, "decode_cache_bytes", s.Transform.DecodeCacheSize,
		"concurrency", cfg.Slots(), "max_size", cfg.MaxBox, "resize_algorithm", cfg.Algorithm.String(), "controls", cfg.Controls, "warm_on_change", s.Warm.OnChange, "hooks", cfg.Hooks)
	stopWarm := warmOnChange(s, p, log)
	defer stopWarm()
	stopEvents, err := serveEvents(s, p, log)
	if err != nil {
		return err
	}
	defer stopEvents()
	return serveUntilSignal(p.srv, cfg.BindAddress, s.ShutdownTimeout, log)
}

// parts are what serve and warm share: the server with its sources, cache
// and engine, the store over the cache's persistent tiers, and what a
// warmer is built from.
type parts struct {
	srv            *proxy.Server
	store          *cache.Store
	m              *metrics.Metrics
	cfg            proxy.Config
	warm           warm.Deps     // the server's (traced) chain, variants and renderer
	root           string        // the local origin's directory: exports must lie outside it
	client         *minio.Client // the one client of the bucket; nil without one
	s3             *origin.S3    // the bucket's originals, for listings; nil without one
	tiers, sources int
}

// build makes every part in order (transform.Startup has run); closeAll
// releases them.
func build(s settings, log *slog.Logger, tp trace.TracerProvider) (parts, func(), error) {
	m := metrics.New(prometheus.NewRegistry(), transform.MemStats)
	tiers, err := cache.LocalTiers(s.Cache, m, log)
	if err != nil {
		return parts{}, nil, err
	}
	// One client, so one connection pool, for every user of the bucket:
	// the source and the result tier.
	var client *minio.Client
	if s.Origin.S3.Enabled() {
		if client, err = origin.NewS3Client(s.Origin.S3); err != nil {
			return parts{}, nil, err
		}
	}
	if s3 := s.Origin.S3; s.Cache.ResultPrefix != "" && s.Cache.Enabled {
		tiers = append(tiers, cache.NewS3Tier(client, s3.Bucket, s.Cache.ResultPrefix, s3.Timeout, renderLease, m, log))
	}
	c := cache.New(cache.Traced(tiers, tp), m)
	var s3src *origin.S3
	if s.Origin.S3.Enabled() {
		s3src = origin.NewS3(client, s.Origin.S3, origin.WithS3Metrics(m))
	}
	sources, closeLocal, err := originSources(s.Origin, s3src, c, m, log, tp)
	if err != nil {
		c.Close()
		return parts{}, nil, err
	}
	engine := transform.NewObserved(s.Transform, decodeObserver(m))
	closeAll := func() { closeLocal(); c.Close(); engine.Close() }

	cfg := s.Proxy
	cfg.Encoders, cfg.Version, cfg.LibvipsVersion = s.Transform.Fingerprints(), version, transform.Version()
	store := cache.NewStore(tiers)
	deps := proxy.Deps{Sources: sources, Engine: engine, Cache: c, Metrics: m, Log: log, Tracing: tp}
	if s.Transform.IntermediateSize > 0 {
		// Decodes persist in the tiers that outlive the process, if any.
		deps.Decodes = store
	}
	srv, err := proxy.New(cfg, deps)
	if err != nil {
		closeAll()
		return parts{}, nil, err
	}
	wd := warm.Deps{Sources: srv.Sources(), Variants: cfg.Variants(), Renderer: srv.WarmRenderer(), MaxSourceBytes: cfg.MaxSourceBytes}
	return parts{srv: srv, store: store, m: m, cfg: cfg, warm: wd, root: s.Origin.Local.RootPath,
		client: client, s3: s3src, tiers: len(tiers), sources: len(sources)}, closeAll, nil
}

// decodeObserver records the decode cache's events in m.
func decodeObserver(m *metrics.Metrics) transform.Observer {
	return transform.Observer{
		DecodeLookup: func(hit bool) {
			r := metrics.CacheMiss
			if hit {
				r = metrics.CacheHit
			}
			m.DecodeCacheRequests.WithLabelValues(r).Inc()
		},
		DecodeBytes: func(n int64) { m.DecodeCacheSizeBytes.Set(float64(n)) },
		StoredDecode: func(used bool) {
			if !used {
				m.StoredDecodes.WithLabelValues(metrics.StoredDecodeRejected).Inc()
			}
		},
	}
}

// renderLease bounds how long replicas wait for one another's render of a
// variant: longer than a slow render (a 50 MP AVIF takes seconds), short
// enough that a dead holder delays its waiters only that long.
const renderLease = 30 * time.Second

// originSources is the chain originals come from, in order: the root
// directory (left out in S3-only deployments without one), the bucket
// (s3; nil without one), the fallback upstream.
func originSources(o origin.Config, s3 *origin.S3, c cache.Cache, m *metrics.Metrics, log *slog.Logger, tp trace.TracerProvider) (origin.Chain, func(), error) {
	var chain origin.Chain
	closeLocal := func() {}
	if _, err := os.Stat(o.Local.RootPath); err == nil || !o.S3.Enabled() {
		local, err := origin.OpenLocal(o.Local.RootPath, origin.WithStatCache(o.Local.StatCacheMaxAge, log, m))
		if err != nil {
			return nil, nil, err
		}
		chain, closeLocal = append(chain, local), func() { local.Close() }
	}
	if s3 != nil {
		chain = append(chain, s3)
	}
	if o.Fallback.URL != "" {
		fb, err := origin.NewFallback(o.Fallback, version, c, m, tp)
		if err != nil {
			return nil, nil, err
		}
		chain = append(chain, fb)
	}
	return chain, closeLocal, nil
}

// serveUntilSignal listens until SIGINT or SIGTERM, then drains: open
// requests first, then renders nobody waits for any more, which libvips
// must not be shut down under.
func serveUntilSignal(srv *proxy.Server, bind string, drain time.Duration, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.App().Listen(bind) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain_timeout", drain.String())
	deadline := time.Now().Add(drain)
	if err := srv.App().ShutdownWithTimeout(drain); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	dctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Drain(dctx); err != nil {
		log.Warn("renders still running at the end of the drain time", "err", err)
	}
	return nil
}
