// Command image-proxy serves images from a directory and transforms them on
// the fly. main reads the settings once, builds every part in order, serves,
// and drains on SIGTERM.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

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
	case "warm":
		return warmCommand(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "image-proxy %s (libvips %s)\n", version, transform.Version())
		return 0
	case "sign":
		return sign(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "usage: image-proxy [serve|warm|version|sign '/path?query']\n")
		return 2
	}

	s, err := loadSettings(os.LookupEnv, ".env")
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy:", err)
		return 2
	}
	log := newLogger(s.Log, stderr)
	tp, stopTracing, err := startTracing(".env")
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy: tracing:", err)
		return 2
	}
	defer stopTracing(log)
	if err := runServer(s, log, tp); err != nil {
		log.Error("image-proxy stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(l logSettings, w io.Writer) *slog.Logger {
	level, _ := l.level()
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(l.Format, "json") {
		return slog.New(traceHandler{slog.NewJSONHandler(w, opts)})
	}
	return slog.New(traceHandler{slog.NewTextHandler(w, opts)})
}
