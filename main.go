// Command image-proxy serves images from a directory and transforms them on
// the fly. main reads the settings once, builds every part in order, serves,
// and drains on SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/proxy"
	"image-proxy/transform"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
	case "version":
		fmt.Fprintf(stdout, "image-proxy %s (libvips %s)\n", version, transform.Version())
		return 0
	default:
		fmt.Fprintf(stderr, "usage: image-proxy [serve|version]\n")
		return 2
	}

	s, err := loadSettings(os.LookupEnv, ".env")
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy:", err)
		return 2
	}
	log := newLogger(s, stderr)
	if err := serve(s, log); err != nil {
		log.Error("image-proxy stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(s settings, w io.Writer) *slog.Logger {
	level, _ := s.logLevel()
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(s.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(s settings, log *slog.Logger) error {
	if err := transform.Startup(log); err != nil {
		return err
	}
	defer transform.Shutdown()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, transform.MemStats)

	tcfg := transform.Config{
		JPEGQuality: s.JPEGQuality, WebPQuality: s.WebPQuality, WebPEffort: s.WebPEffort,
		AVIFQuality: s.AVIFQuality, AVIFSpeed: s.AVIFSpeed, PNGCompression: s.PNGCompression,
		MaxSourcePixels: s.MaxSourcePixels,
	}
	if err := tcfg.Validate(); err != nil {
		return err
	}
	tiers, err := cache.LocalTiers(cache.Config{
		Enabled: s.EnableCache, MemorySize: s.CacheMemorySize, MaxItemSize: s.CacheMaxItemSize,
		DiskEnabled: s.EnableDiskCache, DiskSize: s.CacheDiskSize, DiskPath: s.CacheDiskPath,
	}, m, log)
	if err != nil {
		return err
	}
	c := cache.New(tiers, m)
	defer c.Close()

	local, err := proxy.OpenLocal(s.RootPath)
	if err != nil {
		return err
	}
	defer local.Close()
	sources := proxy.Chain{local}
	if s.FallbackURL != "" {
		fb, err := proxy.NewFallback(proxy.FallbackConfig{URL: s.FallbackURL, MaxBytes: s.FallbackMaxSize, Timeout: s.FallbackTimeout}, version, c, m)
		if err != nil {
			return err
		}
		sources = append(sources, fb)
	}

	algo, _ := transform.ParseAlgorithm(s.ResizeAlgorithm)
	srv, err := proxy.New(proxy.Config{
		RootPath: s.RootPath, StripPath: s.StripPath,
		CacheControl: s.CacheControl, ErrorCacheControl: s.ErrorCacheControl,
		MaxSize: s.MaxSize, MaxSourceBytes: s.MaxSourceBytes,
		Algorithm: algo, EncoderSettings: tcfg.Fingerprint(),
		Concurrency: s.Concurrency, QueueDepth: s.QueueDepth, QueueTimeout: s.QueueTimeout,
		ReadTimeout: s.ReadTimeout, WriteTimeout: s.WriteTimeout, IdleTimeout: s.IdleTimeout,
		MaxConns: s.MaxConnections, MaxHeader: s.MaxHeaderBytes,
		Version: version, LibvipsVersion: transform.Version(),
	}, proxy.Deps{Sources: sources, Renderer: transform.New(tcfg), Cache: c, Metrics: m, Log: log})
	if err != nil {
		return err
	}

	log.Info("image-proxy starting", "version", version, "libvips", transform.Version(),
		"bind", s.BindAddress, "root", s.RootPath, "strip_path", s.StripPath,
		"fallback", s.FallbackURL != "", "cache", s.EnableCache, "disk_cache", s.EnableDiskCache,
		"cache_memory_bytes", s.CacheMemorySize, "cache_disk_bytes", s.CacheDiskSize,
		"concurrency", s.Concurrency, "max_size", s.MaxSize, "resize_algorithm", algo.String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.App().Listen(s.BindAddress) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain_timeout", s.ShutdownTimeout.String())
	deadline := time.Now().Add(s.ShutdownTimeout)
	if err := srv.App().ShutdownWithTimeout(s.ShutdownTimeout); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Renders nobody waits for any more may still be running; libvips must
	// not be shut down under them.
	dctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Drain(dctx); err != nil {
		log.Warn("renders still running at the end of the drain time", "err", err)
	}
	return nil
}
