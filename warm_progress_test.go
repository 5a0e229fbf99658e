package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"image-proxy/warm"
)

// TestProgressWithoutTotal: a bucket's listing has no total; the lines and
// the summary leave it out instead of printing -1.
func TestProgressWithoutTotal(t *testing.T) {
	for _, c := range []struct {
		total       int
		line, intrp string
	}{
		{-1, "warm: 2 sources, 3 variants rendered", "interrupted: the sources not listed yet are not done"},
		{5, "warm: 2/5 sources, 3 variants rendered", "interrupted: 3 of 5 sources not done"},
	} {
		var lines, summary strings.Builder
		p := newProgress(&lines, c.total, time.Nanosecond) // a line after every result
		p.add(warm.Result{Rel: "a.jpg", Rendered: 3})
		p.add(warm.Result{Rel: "b.jpg", Err: errors.New("broken")})
		p.finish()
		p.summary(&summary, true)
		if !strings.Contains(lines.String(), c.line) || strings.Contains(lines.String(), "-1") {
			t.Errorf("total %d: lines %q, want %q", c.total, lines.String(), c.line)
		}
		if !strings.Contains(summary.String(), c.intrp) || !strings.Contains(summary.String(), "failed b.jpg: broken") || p.status(true) != 1 {
			t.Errorf("total %d: summary %q, want %q", c.total, summary.String(), c.intrp)
		}
	}
}
