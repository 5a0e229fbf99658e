package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"image-proxy/transform"
	"image-proxy/warm"
)

// warmUsage is the first line of `image-proxy warm -h` and of every flag error.
const warmUsage = "usage: image-proxy warm [--sizes 360,720] [--formats webp,avif] [--dpr 1,2] [--force] [--out DIR] [--watch] [PATH...]"

// warmFlags is the command line of `image-proxy warm`.
type warmFlags struct {
	spec  warm.Spec
	out   string
	watch bool
	paths []string // relative to the root; none: all of it
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
	f := warmFlags{spec: s.Warm.Spec(s.Proxy.MaxBox)}
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
	fs.Func("dpr", "device pixel ratios, comma-separated (default 1)", func(v string) (err error) {
		f.spec.DPRs, err = warm.ParseDPRs(v)
		return err
	})
	fs.BoolVar(&f.spec.Force, "force", false, "render even variants that are stored and intact")
	fs.StringVar(&f.out, "out", "", "write static files and manifest.json under this directory instead of into the cache")
	fs.BoolVar(&f.watch, "watch", false, "keep running and warm new and changed files")
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
	skip, err := warmTarget(s, f)
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy warm:", err)
		return 2
	}
	paths, err := warm.Paths(s.Origin.Local.RootPath, f.paths, skip)
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
	w, err := newWarmer(p, f, h)
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy warm:", err)
		return 1
	}
	return warmAndWatch(ctx, w, paths, skip, s, f, stdout, stderr, h)
}

// newWarmer is the warmer of the command line: into the cache, or static
// files under --out.
func newWarmer(p parts, f warmFlags, h warmHooks) (*warm.Warmer, error) {
	sink := warm.NewCacheSink(p.store)
	if f.out != "" {
		var err error
		if sink, err = warm.NewExportSink(f.out, p.root); err != nil {
			return nil, err
		}
	}
	return warm.New(p.warm, sink, f.spec, warm.OnStored(h.onStored), warm.OnWatching(h.watching)), nil
}

// warmTarget checks where the results would go before anything starts
// (warm's rules), and returns the directories the walk must leave out.
func warmTarget(s settings, f warmFlags) ([]string, error) {
	root := s.Origin.Local.RootPath
	if err := warm.CheckRoot(root); err != nil {
		return nil, err
	}
	if f.out != "" && warm.InsideRoot(f.out, root) {
		return nil, fmt.Errorf("--out %s: %w", f.out, warm.ErrOutInsideRoot)
	}
	if f.out == "" && !warm.Persistent(s.Cache) {
		return nil, warm.ErrNoResultTier
	}
	return warm.Skip(s.Cache), nil
}

// warmAndWatch warms paths, writes the manifest of an export, prints the
// summary and, with --watch, goes on with new and changed files.
func warmAndWatch(ctx context.Context, w *warm.Warmer, paths, skip []string, s settings, f warmFlags, stdout, stderr io.Writer, h warmHooks) int {
	prog := newProgress(stderr, len(paths), h.every)
	w.Run(ctx, paths, s.Proxy.Slots(), prog.add)
	prog.finish()
	if err := w.Flush(); err != nil {
		fmt.Fprintln(stderr, "image-proxy warm: manifest:", err)
		return 1
	}
	interrupted := ctx.Err() != nil && !f.watch
	prog.summary(stdout, interrupted)
	code := prog.status(interrupted)
	if !f.watch || ctx.Err() != nil {
		return code
	}
	quiet := h.quiet
	if quiet == 0 {
		quiet = warm.DefaultQuiet
	}
	fmt.Fprintf(stdout, "watching %s for new and changed files (Ctrl-C stops)\n", s.Origin.Local.RootPath)
	err := w.Watch(ctx, s.Origin.Local.RootPath, skip, quiet, s.Proxy.Slots(), func(r warm.Result) {
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
	w := warm.New(p.warm, warm.NewCacheSink(p.store), s.Warm.Spec(s.Proxy.MaxBox)).Background(p.srv.Limiter())
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
