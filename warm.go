package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"image-proxy/transform"
	"image-proxy/warm"
)

// warmUsage is the first line of `image-proxy warm -h` and of every flag error.
const warmUsage = "usage: image-proxy warm [--sizes 360,720] [--formats webp,avif] [--dpr 1,2] [--presets thumb,hero] [--force] [--out DIR|s3://BUCKET/PREFIX/] [--watch] [PATH...]"

// warmFlags is the command line of `image-proxy warm`.
type warmFlags struct {
	spec  warm.Spec
	out   string
	watch bool
	paths []string // relative to the root (or IMAGE_PROXY_S3_PREFIX); none: all of it
}

// warmPlan is what a run reads and where it writes, checked before
// anything starts.
type warmPlan struct {
	s3       bool        // the originals are listed from the bucket, not walked
	paths    []string    // local: the files to warm; S3: the paths to list (S3Paths)
	skipDirs []string    // local: the directories walks and watches leave out
	skipKeys []string    // S3: the key prefixes listings leave out (results, exports)
	outS3    *warm.Place // --out s3://BUCKET/PREFIX/
}

// warmHooks let tests look into a run; production passes the zero value.
type warmHooks struct {
	quiet    time.Duration    // watch debounce; 0: warm.DefaultQuiet
	onStored func(rel string) // after each variant is stored
	watching func()           // once the watch is in place
	every    time.Duration    // progress line interval; 0: 5 s
}

// warmCommand is `image-proxy warm`: settings, then signals, then the run.
func warmCommand(args []string, stdout, stderr io.Writer) int {
	s, err := loadSettings(os.LookupEnv, ".env")
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runWarm(ctx, args, s, stdout, stderr, warmHooks{})
}

// parseWarmFlags reads the flags (before, between or after the paths),
// with the settings' lists as defaults. Errors are printed to stderr.
func parseWarmFlags(args []string, s settings, stderr io.Writer) (warmFlags, error) {
	f := warmFlags{spec: s.Warm.Spec(s.Proxy.MaxBox, s.Proxy.Controls)}
	fs := flag.NewFlagSet("warm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, warmUsage)
		fs.PrintDefaults()
	}
	fs.Func("sizes", "widths of the bounding box, comma-separated (default IMAGE_PROXY_WARM_SIZES="+s.Warm.Sizes+")", func(v string) (err error) {
		f.spec.Sizes, err = warm.ParseSizes(v, s.Proxy.MaxBox)
		return err
	})
	fs.Func("formats", "output formats, comma-separated (default IMAGE_PROXY_WARM_FORMATS="+s.Warm.Formats+")", func(v string) (err error) {
		f.spec.Formats, err = warm.ParseFormats(v)
		return err
	})
	fs.Func("dpr", "device pixel ratios, comma-separated (default IMAGE_PROXY_WARM_DPRS="+s.Warm.DPRs+")", func(v string) (err error) {
		f.spec.DPRs, err = warm.ParseDPRs(v)
		return err
	})
	fs.Func("presets", "presets to warm as ?preset=NAME asks for them, comma-separated (default IMAGE_PROXY_WARM_PRESETS="+s.Warm.Presets+")", func(v string) (err error) {
		f.spec.Presets, err = warm.ParsePresets(v, s.Proxy.Controls, s.Proxy.MaxBox)
		return err
	})
	fs.BoolVar(&f.spec.Force, "force", false, "render even variants that are stored and intact")
	fs.StringVar(&f.out, "out", "", "write static files and manifest.json under this directory, or under this prefix of a bucket (s3://BUCKET/PREFIX/), instead of into the cache")
	fs.BoolVar(&f.watch, "watch", false, "keep running and warm new and changed files (local root only)")
	for {
		if err := fs.Parse(args); err != nil {
			return f, err
		}
		if fs.NArg() == 0 {
			return f, nil
		}
		f.paths = append(f.paths, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// runWarm warms, reports and returns the exit status: 0 when every variant
// was rendered or skipped, 1 when any failed or the run was interrupted, 2
// for a bad command line or settings.
func runWarm(ctx context.Context, args []string, s settings, stdout, stderr io.Writer, h warmHooks) int {
	f, err := parseWarmFlags(args, s, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	plan, err := planWarm(s, f)
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy warm:", err)
		return 2
	}
	log := newLogger(s.Log, stderr)
	if err := transform.Startup(log); err != nil {
		fmt.Fprintln(stderr, "image-proxy warm:", err)
		return 1
	}
	defer transform.Shutdown()
	p, closeAll, err := build(s, log, nil) // a one-off command: no traces
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy warm:", err)
		return 1
	}
	defer closeAll()
	w, err := newWarmer(ctx, s, p, f, plan, h)
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy warm:", err)
		return 1
	}
	return warmAndWatch(ctx, w, p, plan, s, f, stdout, stderr, h)
}

// newWarmer is the warmer of the command line: into the cache, or static
// files under --out (a directory or a bucket's prefix).
func newWarmer(ctx context.Context, s settings, p parts, f warmFlags, plan warmPlan, h warmHooks) (*warm.Warmer, error) {
	sink := warm.NewCacheSink(p.store)
	var err error
	switch {
	case plan.outS3 != nil:
		sink, err = warm.NewS3ExportSink(ctx, warm.S3Export{Client: p.client, Bucket: plan.outS3.Bucket, Prefix: plan.outS3.Prefix,
			CacheControl: s.Proxy.CacheControl, Timeout: s.Origin.S3.Timeout})
	case f.out != "":
		sink, err = warm.NewExportSink(f.out, p.root)
	}
	if err != nil {
		return nil, err
	}
	return warm.New(p.warm, sink, f.spec, warm.OnStored(h.onStored), warm.OnWatching(h.watching)), nil
}

// planWarm checks where the originals come from and where the results
// would go before anything starts (warm's rules). With a bucket configured
// the originals are listed from it; else the local root is walked.
func planWarm(s settings, f warmFlags) (warmPlan, error) {
	plan := warmPlan{s3: s.Origin.S3.Enabled()}
	root := s.Origin.Local.RootPath
	bucket, prefix, isS3, err := warm.ParseS3URL(f.out)
	switch {
	case err != nil:
		return plan, fmt.Errorf("--out %w", err)
	case isS3 && !plan.s3:
		return plan, fmt.Errorf("--out %s: an export into a bucket needs IMAGE_PROXY_S3_BUCKET (and its endpoint and keys): it is written through the same client", f.out)
	case isS3:
		originals, results := warm.Places(s.Origin.S3, s.Cache)
		if err := warm.CheckExportPrefix(bucket, prefix, originals, results); err != nil {
			return plan, fmt.Errorf("--out %s: %w", f.out, err)
		}
		plan.outS3 = &warm.Place{Bucket: bucket, Prefix: prefix}
	case f.out != "" && warm.InsideRoot(f.out, root):
		return plan, fmt.Errorf("--out %s: %w", f.out, warm.ErrOutInsideRoot)
	case f.out == "" && !warm.Persistent(s.Cache):
		return plan, warm.ErrNoResultTier
	}
	if !plan.s3 {
		if err := warm.CheckRoot(root); err != nil {
			return plan, err
		}
		plan.skipDirs = warm.Skip(s.Cache)
		plan.paths, err = warm.Paths(root, f.paths, plan.skipDirs)
		return plan, err
	}
	if f.watch {
		return plan, errors.New("--watch follows the local root (IMAGE_PROXY_ROOT_PATH); originals in a bucket are warmed as they are uploaded through S3 events")
	}
	plan.skipKeys = []string{s.Cache.ResultPrefix, s.Warm.EventsExportPrefix}
	if plan.outS3 != nil && plan.outS3.Bucket == s.Origin.S3.Bucket {
		plan.skipKeys = append(plan.skipKeys, plan.outS3.Prefix)
	}
	plan.paths, err = warm.S3Paths(f.paths, s.Origin.S3.Prefix, plan.skipKeys)
	return plan, err
}

// sources are the paths to warm, as a sequence read while the run goes:
// the walked files, or the bucket's listing; listErr is the listing's
// failure once the sequence has been read, and total the number of
// sources when known (-1 for a listing).
func (plan warmPlan) sources(ctx context.Context, p parts) (rels iter.Seq[string], listErr func() error, total int) {
	if !plan.s3 {
		return slices.Values(plan.paths), func() error { return nil }, len(plan.paths)
	}
	rels, listErr = warm.S3Sources(ctx, p.s3, plan.paths, plan.skipKeys)
	return rels, listErr, -1
}

// warmAndWatch warms the plan's sources, writes the manifest of an export,
// prints the summary and, with --watch, goes on with new and changed files.
func warmAndWatch(ctx context.Context, w *warm.Warmer, p parts, plan warmPlan, s settings, f warmFlags, stdout, stderr io.Writer, h warmHooks) int {
	rels, listErr, total := plan.sources(ctx, p)
	prog := newProgress(stderr, total, h.every)
	w.Run(ctx, rels, s.Proxy.Slots(), prog.add)
	prog.finish()
	if err := w.Flush(); err != nil {
		fmt.Fprintln(stderr, "image-proxy warm: manifest:", err)
		return 1
	}
	interrupted := ctx.Err() != nil && !f.watch
	prog.summary(stdout, interrupted)
	code := prog.status(interrupted)
	if err := listErr(); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stdout, "failed:", oneLine(err))
		code = 1
	}
	if !f.watch || ctx.Err() != nil {
		return code
	}
	quiet := h.quiet
	if quiet == 0 {
		quiet = warm.DefaultQuiet
	}
	fmt.Fprintf(stdout, "watching %s for new and changed files (Ctrl-C stops)\n", s.Origin.Local.RootPath)
	err := w.Watch(ctx, s.Origin.Local.RootPath, plan.skipDirs, quiet, s.Proxy.Slots(), func(r warm.Result) {
		printResult(stdout, r)
		if err := w.Flush(); err != nil {
			fmt.Fprintln(stderr, "image-proxy warm: manifest:", err)
		}
	})
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy warm: watch:", err)
		return 1
	}
	return code
}

// printResult is one line per source warmed by the watch.
func printResult(w io.Writer, r warm.Result) {
	switch {
	case r.NotImage:
	case r.Failed():
		fmt.Fprintf(w, "failed %s: %s\n", r.Rel, oneLine(r.Err))
	case r.Err == nil:
		fmt.Fprintf(w, "warmed %s: %d rendered, %d skipped\n", r.Rel, r.Rendered, r.Skipped)
	}
}

// warmOnChange warms new and changed files in the background of serve, at
// lower priority than live requests, when IMAGE_PROXY_WARM_ON_CHANGE is
// set. The returned stop cancels it and waits until it has stopped.
func warmOnChange(s settings, p parts, log *slog.Logger) func() {
	if !s.Warm.OnChange {
		return func() {}
	}
	w := warm.New(p.warm, warm.NewCacheSink(p.store), s.Warm.Spec(s.Proxy.MaxBox, s.Proxy.Controls)).Background(p.srv.Limiter())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := w.Watch(ctx, s.Origin.Local.RootPath, warm.Skip(s.Cache), warm.DefaultQuiet, 1, func(r warm.Result) {
			switch {
			case r.Failed():
				log.Warn("warm on change failed", "path", r.Rel, "err", oneLine(r.Err))
			case r.Rendered > 0:
				log.Info("warmed on change", "path", r.Rel, "rendered", r.Rendered, "skipped", r.Skipped)
			}
		})
		if err != nil {
			log.Error("warm on change stopped", "err", err)
		}
	}()
	log.Info("warming new and changed files in the background", "root", s.Origin.Local.RootPath, "tiers", strings.Join(p.store.Tiers(), ","))
	return func() {
		cancel()
		<-done
	}
}
