package proxy

import (
	"context"
	"path/filepath"
	"testing"

	"image-proxy/transform"
	"image-proxy/warm"
)

// transformSeries reads every series of the transforms counter (keyed
// "format/result/work") and of the duration histogram ("format/work":
// sample count and sum), so that a test can say which moved and by how
// much and see any other move.
type transformSeries struct {
	counts map[string]float64
	hist   map[string]histogramSample
}

type histogramSample struct {
	count uint64
	sum   float64
}

func readTransformSeries(t *testing.T, ts *testServer) transformSeries {
	t.Helper()
	fams, err := ts.m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	s := transformSeries{counts: map[string]float64{}, hist: map[string]histogramSample{}}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch f.GetName() {
			case "image_proxy_transforms_total":
				s.counts[l["format"]+"/"+l["result"]+"/"+l["work"]] = m.GetCounter().GetValue()
			case "image_proxy_transform_duration_seconds":
				h := m.GetHistogram()
				s.hist[l["format"]+"/"+l["work"]] = histogramSample{h.GetSampleCount(), h.GetSampleSum()}
			}
		}
	}
	return s
}

// checkMoved fails unless, from before to after, each counter in counts
// moved by exactly its value, each histogram in renders observed exactly
// that many samples (with time in them), and nothing else moved.
func checkMoved(t *testing.T, before, after transformSeries, counts map[string]float64, renders map[string]uint64) {
	t.Helper()
	for k, want := range counts {
		if _, ok := after.counts[k]; !ok {
			t.Errorf("transforms{%s} is not exported", k)
		}
		if got := after.counts[k] - before.counts[k]; got != want {
			t.Errorf("transforms{%s} moved by %v, want %v", k, got, want)
		}
	}
	for k, v := range after.counts {
		if _, ok := counts[k]; !ok && v != before.counts[k] {
			t.Errorf("transforms{%s} moved by %v, want 0", k, v-before.counts[k])
		}
	}
	for k, want := range renders {
		got := after.hist[k].count - before.hist[k].count
		if got != want {
			t.Errorf("transform_duration{%s} observed %d renders, want %d", k, got, want)
		}
		if want > 0 && after.hist[k].sum <= before.hist[k].sum {
			t.Errorf("transform_duration{%s} observed no time for %d renders", k, want)
		}
	}
	for k, h := range after.hist {
		if _, ok := renders[k]; !ok && h.count != before.hist[k].count {
			t.Errorf("transform_duration{%s} observed %d renders, want 0", k, h.count-before.hist[k].count)
		}
	}
	if t.Failed() {
		t.Logf("after: %v", after.counts)
	}
}

// TestWarmCountsItsRenders warms one real JPEG with the real engine through
// each kind of warmer and reads the transform series: each format's
// work="warm" series moves by the variants rendered (100@2x and 200@1x are
// one render, stored under two keys), each render is timed, and
// work="live" does not move. A source that does not decode counts one
// error per variant.
func TestWarmCountsItsRenders(t *testing.T) {
	spec := warm.Spec{Sizes: []int{100, 200}, DPRs: []float64{1, 2},
		Formats: []transform.Format{transform.FormatWebP, transform.FormatPNG, transform.FormatJPEG}}
	ok := func(n float64) map[string]float64 {
		return map[string]float64{"webp/ok/warm": n, "png/ok/warm": n, "jpeg/ok/warm": n}
	}
	timed := map[string]uint64{"webp/warm": 3, "png/warm": 3, "jpeg/warm": 3}
	failed := map[string]float64{"webp/error/warm": 3, "png/error/warm": 3, "jpeg/error/warm": 3}
	good := photo(t, 900, 600, false)
	for _, c := range []struct {
		name     string
		src      []byte
		warmer   func(env *warmEnv) *warm.Warmer
		rendered int
		counts   map[string]float64
		renders  map[string]uint64
	}{
		{"into the cache", good, func(env *warmEnv) *warm.Warmer { return env.cacheWarmer(spec) }, 12, ok(3), timed},
		{"in the background (serve's on-change warm)", good, func(env *warmEnv) *warm.Warmer { return env.cacheWarmer(spec).Background(env.Limiter()) }, 12, ok(3), timed},
		{"static files", good, func(env *warmEnv) *warm.Warmer { return env.exportWarmer(t, t.TempDir(), spec) }, 12, ok(3), timed},
		{"a source that does not decode", good[:len(good)/3], func(env *warmEnv) *warm.Warmer { return env.cacheWarmer(spec) }, 0, failed, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "photo.jpg"), c.src)
			env := newWarmEnv(t, root, nil)
			before := readTransformSeries(t, env.testServer)
			r := c.warmer(env).Source(context.Background(), "photo.jpg")
			if r.Rendered != c.rendered || (r.Err == nil) != (c.rendered > 0) {
				t.Fatalf("warm: %d rendered, %v; want %d", r.Rendered, r.Err, c.rendered)
			}
			checkMoved(t, before, readTransformSeries(t, env.testServer), c.counts, c.renders)
			if v := gaugeValue(t, env.testServer, "image_proxy_transforms_in_flight"); v != 0 {
				t.Errorf("transforms in flight %v after the warm, want 0", v)
			}
		})
	}
}

// TestLiveRenderCountsAsLive: a GET that renders moves work="live" only; a
// hit of a warmed variant renders nothing and moves nothing.
func TestLiveRenderCountsAsLive(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "photo.jpg"), photo(t, 900, 600, false))
	env := newWarmEnv(t, root, diskTiers(t.TempDir())) // warm stores into the tiers that outlive the process
	spec := warm.Spec{Sizes: []int{100}, DPRs: []float64{1}, Formats: []transform.Format{transform.FormatWebP}}
	if r := env.cacheWarmer(spec).Source(context.Background(), "photo.jpg"); r.Err != nil || r.Rendered != 1 {
		t.Fatalf("warm: %+v", r)
	}
	for _, c := range []struct {
		target, status, format string
		width, height          int
		counts                 map[string]float64
		renders                map[string]uint64
	}{
		{"/photo.jpg?size=120&format=jpeg", "MISS", "jpeg", 120, 80, map[string]float64{"jpeg/ok/live": 1}, map[string]uint64{"jpeg/live": 1}},
		{"/photo.jpg?size=150&format=webp", "MISS", "webp", 150, 100, map[string]float64{"webp/ok/live": 1}, map[string]uint64{"webp/live": 1}},
		{"/photo.jpg?size=100&format=webp", "HIT-DISK", "webp", 100, 67, nil, nil},
	} {
		t.Run(c.target, func(t *testing.T) {
			before := readTransformSeries(t, env.testServer)
			resp, body := env.get(t, c.target)
			if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != c.status {
				t.Fatalf("%d %s, want 200 %s", resp.StatusCode, resp.Header.Get("X-Cache-Status"), c.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "image/"+c.format {
				t.Fatalf("Content-Type %s", ct)
			}
			if w, h := decodeSize(t, body, c.format); w != c.width || h != c.height {
				t.Errorf("%d×%d, want %d×%d", w, h, c.width, c.height)
			}
			checkMoved(t, before, readTransformSeries(t, env.testServer), c.counts, c.renders)
		})
	}
}

func gaugeValue(t *testing.T, ts *testServer, name string) float64 {
	t.Helper()
	fams, err := ts.m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not exported", name)
	return 0
}
