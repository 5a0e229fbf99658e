package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"image-proxy/warm"
)

// progress counts a warm run's results and shows them: a bar with count,
// rate and ETA when stderr is a terminal, a plain line every `every`
// otherwise (a log file, CI). A bucket's listing has no total (-1): the
// bar is then a spinner with the count and rate, and the lines leave the
// total out.
type progress struct {
	out   io.Writer
	bar   *progressbar.ProgressBar // nil unless stderr is a terminal
	every time.Duration
	start time.Time
	last  time.Time

	total, done                 int // total -1: not known
	rendered, skipped, notImage int
	failed                      []warm.Result
}

func newProgress(stderr io.Writer, total int, every time.Duration) *progress {
	if every == 0 {
		every = 5 * time.Second
	}
	p := &progress{out: stderr, every: every, start: time.Now(), total: total}
	p.last = p.start
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("warm"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("sources"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// add counts one source's result (Run calls it from one goroutine at a time).
func (p *progress) add(r warm.Result) {
	p.done++
	p.rendered += r.Rendered
	p.skipped += r.Skipped
	switch {
	case r.NotImage:
		p.notImage++
	case r.Failed():
		p.failed = append(p.failed, r)
	}
	if p.bar != nil {
		p.bar.Add(1)
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		count := fmt.Sprintf("%d/%d", p.done, p.total)
		if p.total < 0 {
			count = fmt.Sprint(p.done)
		}
		fmt.Fprintf(p.out, "warm: %s sources, %d variants rendered, %d skipped, %d failed, %.1f sources/s\n",
			count, p.rendered, p.skipped, len(p.failed), float64(p.done)/now.Sub(p.start).Seconds())
	}
}

// finish ends the bar, so the summary starts on a clean line.
func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// summary prints the totals and every failure with its reason.
func (p *progress) summary(w io.Writer, interrupted bool) {
	elapsed := time.Since(p.start).Round(time.Millisecond)
	fmt.Fprintf(w, "warm: %d sources in %s: %d variants rendered, %d skipped (already stored), %d failed",
		p.done, elapsed, p.rendered, p.skipped, len(p.failed))
	if p.notImage > 0 {
		fmt.Fprintf(w, ", %d files not images", p.notImage)
	}
	fmt.Fprintln(w)
	for _, r := range p.failed {
		fmt.Fprintf(w, "failed %s: %s\n", r.Rel, oneLine(r.Err))
	}
	switch {
	case interrupted && p.total < 0:
		fmt.Fprintln(w, "interrupted: the sources not listed yet are not done; what was stored is whole, run again to finish")
	case interrupted:
		fmt.Fprintf(w, "interrupted: %d of %d sources not done; what was stored is whole, run again to finish\n", p.total-p.done, p.total)
	}
}

// status is the exit status: 1 when anything failed or was left undone.
func (p *progress) status(interrupted bool) int {
	if interrupted || len(p.failed) > 0 {
		return 1
	}
	return 0
}

// oneLine is err's text on one line: libvips ends its messages with newlines.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
