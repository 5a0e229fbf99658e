package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/image/webp"

	"image-proxy/cache"
	"image-proxy/internal/testsupport/miniotest"
	"image-proxy/metrics"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
	"image-proxy/warm"
)

// photo encodes a w×h gradient as JPEG (or PNG), a real image for libvips.
func photo(t testing.TB, w, h int, asPNG bool) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if asPNG {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t testing.TB, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// warmEnv is a server over root whose tiers are memory plus those tiers
// makes (a disk, an S3 tier), and the store and warm dependencies main
// builds beside it.
type warmEnv struct {
	*testServer
	store *cache.Store
	cache cache.Cache
}

func newWarmEnv(t testing.TB, root string, tiers func(m *metrics.Metrics) []cache.Tier) *warmEnv {
	t.Helper()
	return newWarmEnvWith(t, root, tiers, transform.DefaultConfig())
}

// newWarmEnvWith is newWarmEnv with the engine's settings.
func newWarmEnvWith(t testing.TB, root string, tiers func(m *metrics.Metrics) []cache.Tier, tcfg transform.Config) *warmEnv {
	t.Helper()
	cfg := defaultTestConfig(root)
	m := metrics.New(prometheus.NewRegistry(), transform.MemStats)
	mem, err := cache.NewMemoryTier(64<<20, 1<<20, m)
	if err != nil {
		t.Fatal(err)
	}
	all := []cache.Tier{mem}
	if tiers != nil {
		all = append(all, tiers(m)...)
	}
	c := cache.New(all, m)
	t.Cleanup(func() { c.Close() })
	sources, _ := testSources(t, root, c, m)
	s, err := New(cfg, Deps{Sources: sources, Engine: transform.New(tcfg), Cache: c, Metrics: m, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &warmEnv{testServer: &testServer{Server: s, root: root, m: m}, store: cache.NewStore(all), cache: c}
}

// deps are the warmer's dependencies, as main's build gives them.
func (env *warmEnv) deps() warm.Deps {
	return warm.Deps{Sources: env.Sources(), Variants: env.cfg.Variants(), Renderer: env.WarmRenderer(), MaxSourceBytes: env.cfg.MaxSourceBytes}
}

// cacheWarmer warms spec into the env's persistent tiers, as `image-proxy
// warm` does.
func (env *warmEnv) cacheWarmer(spec warm.Spec, opts ...warm.Option) *warm.Warmer {
	return warm.New(env.deps(), warm.NewCacheSink(env.store), spec, opts...)
}

// exportWarmer writes spec's variants under dir, as `warm --out dir` does.
func (env *warmEnv) exportWarmer(t testing.TB, dir string, spec warm.Spec) *warm.Warmer {
	t.Helper()
	sink, err := warm.NewExportSink(dir, env.root)
	if err != nil {
		t.Fatal(err)
	}
	return warm.New(env.deps(), sink, spec)
}

// liveKeys are the cache keys live requests for spec's URLs compute for rel.
func (env *warmEnv) liveKeys(t testing.TB, o origin.Original, spec warm.Spec) []string {
	t.Helper()
	var keys []string
	for _, q := range warmURLs(spec) {
		req, err := request.Parse(request.RawQuery(q), "", env.cfg.MaxBox)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, cache.SourceKey(o.Rel, env.variants.Of(o.Identity, req, "").Key()))
	}
	return keys
}

func diskTiers(dir string) func(*metrics.Metrics) []cache.Tier {
	return func(m *metrics.Metrics) []cache.Tier { return []cache.Tier{cache.NewDiskTier(dir, 1<<30, m, nil)} }
}

// warmURLs are the query strings a spec stands for, as a visitor sends them.
func warmURLs(spec warm.Spec) []string {
	var qs []string
	for _, size := range spec.Sizes {
		for _, dpr := range spec.DPRs {
			for _, f := range spec.Formats {
				q := fmt.Sprintf("size=%d&format=%s", size, f)
				if dpr != 1 {
					q += fmt.Sprintf("&dpr=%g", dpr)
				}
				qs = append(qs, q)
			}
		}
	}
	return qs
}

// decodeSize decodes an image body and returns its dimensions.
func decodeSize(t testing.TB, body []byte, format string) (int, int) {
	t.Helper()
	var cfg image.Config
	var err error
	switch format {
	case "webp":
		cfg, err = webp.DecodeConfig(bytes.NewReader(body))
	default:
		cfg, _, err = image.DecodeConfig(bytes.NewReader(body))
	}
	if err != nil {
		t.Fatalf("decode %s: %v", format, err)
	}
	return cfg.Width, cfg.Height
}

// TestWarmThenServe: after a warm into the disk tier, a server over that
// disk (a new process, empty memory) answers every variant HIT-DISK with
// the ETag a server with no cache at all gives the same URL.
func TestWarmThenServe(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(root, "photos/wide.jpg"), photo(t, 900, 600, false))
	writeFile(t, filepath.Join(root, "logo.png"), photo(t, 300, 500, true))
	spec := warm.Spec{Sizes: []int{100, 250}, DPRs: []float64{1, 2}, Formats: []transform.Format{transform.FormatWebP, transform.FormatPNG}}

	warming := newWarmEnv(t, root, diskTiers(dir))
	w := warming.cacheWarmer(spec)
	rels, err := warm.Paths(root, nil, []string{dir})
	if err != nil || !slices.Equal(rels, []string{"logo.png", "photos/wide.jpg"}) {
		t.Fatalf("paths %v %v", rels, err)
	}
	var results []warm.Result
	w.Run(context.Background(), slices.Values(rels), 2, func(r warm.Result) { results = append(results, r) })
	for _, r := range results {
		if r.Err != nil || r.Rendered != 8 {
			t.Fatalf("%s: %d rendered, %v", r.Rel, r.Rendered, r.Err)
		}
	}
	warming.cache.Close()

	served := newWarmEnv(t, root, diskTiers(dir))
	live := newWarmEnv(t, root, nil)
	for _, rel := range rels {
		for _, q := range warmURLs(spec) {
			target := "/" + rel + "?" + q
			want, wantBody := live.get(t, target)
			resp, body := served.get(t, target)
			if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "HIT-DISK" {
				t.Errorf("%s: %d %s, want 200 HIT-DISK", target, resp.StatusCode, resp.Header.Get("X-Cache-Status"))
			}
			if resp.Header.Get("ETag") != want.Header.Get("ETag") || want.Header.Get("ETag") == "" {
				t.Errorf("%s: ETag %s, live %s", target, resp.Header.Get("ETag"), want.Header.Get("ETag"))
			}
			format := strings.TrimPrefix(resp.Header.Get("Content-Type"), "image/")
			gw, gh := decodeSize(t, body, format)
			lw, lh := decodeSize(t, wantBody, format)
			if gw != lw || gh != lh {
				t.Errorf("%s: warmed %dx%d, live %dx%d", target, gw, gh, lw, lh)
			}
			// The ETag is strong: the warmed bytes must be the live bytes.
			if !bytes.Equal(body, wantBody) {
				t.Errorf("%s: warmed %d bytes differ from the live %d", target, len(body), len(wantBody))
			}
		}
	}
	// A second run finds everything stored: nothing is read or rendered.
	again := newWarmEnv(t, root, diskTiers(dir))
	r := again.cacheWarmer(spec).Source(context.Background(), "photos/wide.jpg")
	if r.Err != nil || r.Rendered != 0 || r.Skipped != 8 {
		t.Errorf("second run: %+v", r)
	}
}

// TestWarmInterruptedLeavesWholeEntries cancels a warm after a few stored
// variants: every entry is then either absent or whole, and a second run
// renders exactly what is missing.
func TestWarmInterruptedLeavesWholeEntries(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	for i := range 4 {
		writeFile(t, filepath.Join(root, fmt.Sprintf("p%d.jpg", i)), photo(t, 800+40*i, 500, false))
	}
	spec := warm.Spec{Sizes: []int{120, 240, 480}, DPRs: []float64{1}, Formats: []transform.Format{transform.FormatWebP, transform.FormatJPEG}}
	env := newWarmEnv(t, root, diskTiers(dir))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stored := 0
	w := env.cacheWarmer(spec, warm.OnStored(func(string) {
		if stored++; stored == 3 {
			cancel()
		}
	}))
	rels, _ := warm.Paths(root, nil, nil)
	w.Run(ctx, slices.Values(rels), 1, func(warm.Result) {})
	env.cache.Close()
	if stored < 3 || stored >= 4*6 {
		t.Fatalf("%d variants stored before the interruption took effect", stored)
	}
	after := newWarmEnv(t, root, diskTiers(dir))
	hits := 0
	for _, rel := range rels {
		for _, q := range warmURLs(spec) {
			resp, body := after.get(t, "/"+rel+"?"+q)
			st := resp.Header.Get("X-Cache-Status")
			if resp.StatusCode != 200 || (st != "HIT-DISK" && st != "MISS") {
				t.Fatalf("%s?%s: %d %s", rel, q, resp.StatusCode, st)
			}
			if st == "HIT-DISK" {
				hits++
				decodeSize(t, body, strings.TrimPrefix(resp.Header.Get("Content-Type"), "image/"))
			}
		}
	}
	if hits != stored {
		t.Errorf("%d entries served from disk, %d stored", hits, stored)
	}
	if n := testutil.ToFloat64(after.m.CacheCorrupt); n != 0 {
		t.Errorf("%v damaged entries", n)
	}
}

// TestWarmWatchRewarmsChangedFiles: with a watch running, a file replaced
// in place and a file written into a new subdirectory both end up warmed
// under their new identities.
func TestWarmWatchRewarmsChangedFiles(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(root, "cat.jpg"), photo(t, 400, 300, false))
	spec := warm.Spec{Sizes: []int{100, 200}, DPRs: []float64{1}, Formats: []transform.Format{transform.FormatWebP}}
	env := newWarmEnv(t, root, diskTiers(dir))
	ready := make(chan struct{})
	w := env.cacheWarmer(spec, warm.OnWatching(func() { close(ready) }))
	results := make(chan warm.Result, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(ctx, root, []string{dir}, 20*time.Millisecond, 1, func(r warm.Result) { results <- r })
	}()
	receive(t, "the watch to start", ready)

	writeFile(t, filepath.Join(root, "cat.jpg"), photo(t, 300, 600, false))
	writeFile(t, filepath.Join(root, "new/dir/dog.png"), photo(t, 250, 250, true))
	warmed := map[string]bool{}
	for len(warmed) < 2 {
		r := receive(t, "a file to be warmed", results)
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Rel, r.Err)
		}
		if r.Rendered+r.Skipped == 2 {
			warmed[r.Rel] = true
		}
	}
	cancel()
	if err := receive(t, "the watch to stop", done); err != nil {
		t.Fatal(err)
	}
	for rel, size := range map[string][2]int{"cat.jpg": {100, 200}, "new/dir/dog.png": {200, 200}} {
		o, _, err := env.sources.Stat(context.Background(), rel)
		if err != nil {
			t.Fatal(err)
		}
		for i, key := range env.liveKeys(t, o, spec) {
			if !env.store.Has(context.Background(), key) {
				t.Errorf("%s?%s: not in the disk tier", rel, warmURLs(spec)[i])
			}
		}
		resp, body := env.get(t, "/"+rel+"?size=200&format=webp")
		if st := resp.Header.Get("X-Cache-Status"); st != "HIT-DISK" {
			t.Errorf("%s: %s, want HIT-DISK", rel, st)
		}
		if w, h := decodeSize(t, body, "webp"); w != size[0] || h != size[1] {
			t.Errorf("%s: %dx%d, want %dx%d (the new file)", rel, w, h, size[0], size[1])
		}
	}
}

// TestSpareWaitsForLiveRequests: background work does not start while
// every slot is held, and starts once one is free.
func TestSpareWaitsForLiveRequests(t *testing.T) {
	l := newLimiter(2, 8, hangGuard, prometheus.NewGauge(prometheus.GaugeOpts{Name: "w"}))
	r1, err := l.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := l.acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := l.Spare(ctx)
		got <- err
	}()
	cancel()
	if err := receive(t, "spare to give up", got); !errors.Is(err, context.Canceled) {
		t.Fatalf("spare with every slot busy: %v, want it to wait until cancelled", err)
	}
	go func() {
		_, err := l.Spare(context.Background())
		got <- err
	}()
	r1()
	if err := receive(t, "spare once a slot is free", got); err != nil {
		t.Fatal(err)
	}
	r2()
}

// TestWarmIntoS3: warmed into a real MinIO result tier, the variants are
// served HIT-S3 by a server that shares only the bucket, with the ETag a
// server without any cache gives the same URL.
func TestWarmIntoS3(t *testing.T) {
	srv := miniotest.Start(t)
	fx := newS3Fixture(t, srv, "")
	client, err := origin.NewS3Client(fx.cfg)
	if err != nil {
		t.Fatal(err)
	}
	s3Tiers := func(m *metrics.Metrics) []cache.Tier {
		return []cache.Tier{cache.NewS3Tier(client, fx.bucket, "results/", 5*time.Second, 0, m, nil)}
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a/b.jpg"), photo(t, 640, 480, false))
	spec := warm.Spec{Sizes: []int{160, 300}, DPRs: []float64{1, 2}, Formats: []transform.Format{transform.FormatWebP}}
	warming := newWarmEnv(t, root, s3Tiers)
	if r := warming.cacheWarmer(spec).Source(context.Background(), "a/b.jpg"); r.Err != nil || r.Rendered != 4 {
		t.Fatalf("%+v", r)
	}
	served, live := newWarmEnv(t, root, s3Tiers), newWarmEnv(t, root, nil)
	for _, q := range warmURLs(spec) {
		want, _ := live.get(t, "/a/b.jpg?"+q)
		resp, body := served.get(t, "/a/b.jpg?"+q)
		if st := resp.Header.Get("X-Cache-Status"); resp.StatusCode != 200 || st != "HIT-S3" {
			t.Errorf("%s: %d %s, want 200 HIT-S3", q, resp.StatusCode, st)
		}
		if resp.Header.Get("ETag") != want.Header.Get("ETag") {
			t.Errorf("%s: ETag %s, live %s", q, resp.Header.Get("ETag"), want.Header.Get("ETag"))
		}
		decodeSize(t, body, "webp")
	}
}
