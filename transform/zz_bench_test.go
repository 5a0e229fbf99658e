package transform

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var seq int

func BenchmarkZZShrink(b *testing.B) {
	e := New(func() Config { c := DefaultConfig(); c.DecodeCacheSize = 0; return c }())
	kept := New(DefaultConfig())
	for _, name := range []string{"volna-baseline-5120x2880.jpg", "volna-5120x2880.jpg"} {
		src := corpus(b, name)
		in := Sniff(src)
		h, _ := readHeader(src, in)
		for _, shrink := range []int{4, 8} {
			b.Run(name[:9]+"/stream-s"+strconv.Itoa(shrink), func(b *testing.B) {
				c0 := cpuNow()
				for b.Loop() {
					p := newPlan(in, h, Options{Box: 400, Format: FormatWebP})
					p.load.shrink = shrink
					img, err := load(src, in, p.load)
					if err != nil {
						b.Fatal(err)
					}
					if err := p.process(context.Background(), src, img); err != nil {
						b.Fatal(err)
					}
					if _, err := e.finish(context.Background(), src, img, p); err != nil {
						b.Fatal(err)
					}
					img.Close()
				}
				b.ReportMetric(float64(cpuNow()-c0)/float64(b.N)/1e6, "cpu-ms/op")
			})
			b.Run(name[:9]+"/kept-s"+strconv.Itoa(shrink), func(b *testing.B) {
				c0 := cpuNow()
				for b.Loop() {
					seq++
					p := newPlan(in, h, Options{Box: 400, Format: FormatWebP})
					p.load.shrink = shrink
					if _, err := kept.renderReused(context.Background(), src, in, p, Options{Box: 400, Format: FormatWebP, Source: strconv.Itoa(seq)}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuNow()-c0)/float64(b.N)/1e6, "cpu-ms/op")
			})
		}
	}
}
