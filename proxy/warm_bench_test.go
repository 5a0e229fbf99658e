package proxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"image-proxy/cache"
	"image-proxy/request"
	"image-proxy/transform"
	"image-proxy/warm"
)

// Warm benchmarks use BENCH_SOURCE (a path; default: the corpus's
// 5120×2880 baseline JPEG in ../../shared/corpus) and skip without it.
// They are measurements, not tests.

func warmBenchRoot(b *testing.B) string {
	name := os.Getenv("BENCH_SOURCE")
	if name == "" {
		name = "../../shared/corpus/volna-baseline-5120x2880.jpg"
	}
	src, err := os.ReadFile(name)
	if err != nil {
		b.Skip("source not available: ", err)
	}
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "photo.jpg"), src, 0o644); err != nil {
		b.Fatal(err)
	}
	return root
}

// warmBenchSpec is 8 variants: the default widths × WebP and JPEG.
var warmBenchSpec = warm.Spec{Sizes: []int{360, 720, 1200, 2200}, DPRs: []float64{1},
	Formats: []transform.Format{transform.FormatWebP, transform.FormatJPEG}, Force: true}

// BenchmarkWarmOneDecode: one op is every variant of the source stored in
// the disk tier, by warm (one read, one decode per distinct load) and by
// the server's render path once per variant (a read each; decodes shared
// through the decode cache as for a new photo), on one goroutine.
func BenchmarkWarmOneDecode(b *testing.B) {
	root := warmBenchRoot(b)
	env := newWarmEnv(b, root, diskTiers(b.TempDir()))
	ctx := context.Background()
	b.Run("warm", func(b *testing.B) {
		w := env.cacheWarmer(warmBenchSpec)
		for b.Loop() {
			if r := w.Source(ctx, "photo.jpg"); r.Err != nil || r.Rendered != 8 {
				b.Fatalf("%+v", r)
			}
		}
	})
	b.Run("separate", func(b *testing.B) { renderEach(b, env) })
	// The same without the decode cache: every variant decodes the source.
	off := transform.DefaultConfig()
	off.DecodeCacheSize = 0
	b.Run("separate-no-decode-cache", func(b *testing.B) { renderEach(b, newWarmEnvWith(b, root, diskTiers(b.TempDir()), off)) })
}

// renderEach stores every variant of warmBenchSpec through the server's
// render path, one after another.
func renderEach(b *testing.B, env *warmEnv) {
	ctx := context.Background()
	o, src, err := env.sources.Stat(ctx, "photo.jpg")
	if err != nil {
		b.Fatal(err)
	}
	base := o.Identity + "#" + strconv.FormatInt(time.Now().UnixNano(), 10)
	for n := 0; b.Loop(); n++ {
		// A new identity in the variants each time, as for a new photo: the
		// decode cache shares decodes between its variants, never across
		// loops. The source is read as what it is (o), which the read
		// checks.
		identity := base + "#" + strconv.Itoa(n)
		for _, q := range warmURLs(warmBenchSpec) {
			req, err := request.Parse(request.RawQuery(q), "", env.cfg.MaxBox)
			if err != nil {
				b.Fatal(err)
			}
			variant := env.variants.Of(identity, req, "")
			v, err := env.renderSource(ctx, src, o, variant)
			if err != nil {
				b.Fatal(err)
			}
			env.store.Put(ctx, cache.SourceKey(o.Rel, variant.Key()), v)
		}
	}
}

// BenchmarkLiveBesideWarm measures what background warming costs live
// requests: one client sends cold transforms (400-599 px WebP of the
// source, so nothing is cached or coalesced) one after another, alone and
// while a background warmer re-renders the source's 8 variants without
// pause. It reports the median and p90 live latency of each.
func BenchmarkLiveBesideWarm(b *testing.B) {
	root := warmBenchRoot(b)
	for _, withWarm := range []bool{false, true} {
		name := "alone"
		if withWarm {
			name = "beside-warm"
		}
		b.Run(name, func(b *testing.B) {
			env := newWarmEnv(b, root, diskTiers(b.TempDir()))
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			warmed := 0
			if withWarm {
				w := env.cacheWarmer(warmBenchSpec).Background(env.Limiter())
				wg.Go(func() {
					for ctx.Err() == nil {
						if r := w.Source(ctx, "photo.jpg"); r.Err == nil {
							warmed++
						}
					}
				})
			}
			var lat []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				resp, _ := env.get(b, fmt.Sprintf("/photo.jpg?size=%d&format=webp", 400+i%200))
				lat = append(lat, time.Since(start))
				if resp.StatusCode != 200 {
					b.Fatal(resp.StatusCode)
				}
				i++
			}
			cancel()
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
			b.ReportMetric(float64(warmed), "warm-sources")
		})
	}
}
