package metrics

import (
	"maps"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"image-proxy/imageformat"
)

// The contract's metric table (shared/docs/CONTRACT.md) plus our own
// additions: name → type and label names.
var contract = map[string]struct {
	typ    dto.MetricType
	labels string
}{
	"image_proxy_http_requests_total":              {dto.MetricType_COUNTER, "code,kind"},
	"image_proxy_http_request_duration_seconds":    {dto.MetricType_HISTOGRAM, "kind"},
	"image_proxy_cache_requests_total":             {dto.MetricType_COUNTER, "result,tier"},
	"image_proxy_cache_size_bytes":                 {dto.MetricType_GAUGE, "tier"},
	"image_proxy_cache_items":                      {dto.MetricType_GAUGE, "tier"},
	"image_proxy_cache_evictions_total":            {dto.MetricType_COUNTER, "tier"},
	"image_proxy_transforms_total":                 {dto.MetricType_COUNTER, "format,result,work"},
	"image_proxy_transform_duration_seconds":       {dto.MetricType_HISTOGRAM, "format,work"},
	"image_proxy_transforms_in_flight":             {dto.MetricType_GAUGE, ""},
	"image_proxy_transform_queue_rejections_total": {dto.MetricType_COUNTER, ""},
	"image_proxy_fallback_requests_total":          {dto.MetricType_COUNTER, "result"},
}

var ours = map[string]struct {
	typ    dto.MetricType
	labels string
}{
	"image_proxy_cache_corrupt_entries_total":    {dto.MetricType_COUNTER, ""},
	"image_proxy_cache_leases_total":             {dto.MetricType_COUNTER, "result"},
	"image_proxy_transform_queue_waiting":        {dto.MetricType_GAUGE, ""},
	"image_proxy_libvips_memory_bytes":           {dto.MetricType_GAUGE, ""},
	"image_proxy_libvips_open_files":             {dto.MetricType_GAUGE, ""},
	"image_proxy_refusals_total":                 {dto.MetricType_COUNTER, "reason"},
	"image_proxy_stat_cache_lookups_total":       {dto.MetricType_COUNTER, "result"},
	"image_proxy_s3_stat_cache_lookups_total":    {dto.MetricType_COUNTER, "result"},
	"image_proxy_events_total":                   {dto.MetricType_COUNTER, "kind,outcome"},
	"image_proxy_purges_total":                   {dto.MetricType_COUNTER, "trigger"},
	"image_proxy_purged_entries_total":           {dto.MetricType_COUNTER, "tier"},
	"image_proxy_stat_cache_watched_directories": {dto.MetricType_GAUGE, ""},
	"image_proxy_decode_cache_requests_total":    {dto.MetricType_COUNTER, "result"},
	"image_proxy_decode_cache_size_bytes":        {dto.MetricType_GAUGE, ""},
	"image_proxy_stored_decodes_total":           {dto.MetricType_COUNTER, "result"},
	// Failed disk-tier writes (the tier backs off and keeps serving).
	"image_proxy_cache_disk_write_failures_total": {dto.MetricType_COUNTER, "reason"},
}

// touched builds the collectors and gives every vector one child, since
// vectors only appear in the output once they have one.
func touched(t *testing.T, vips VipsStats) (*Metrics, map[string]*dto.MetricFamily) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg, vips)
	m.HTTPRequests.WithLabelValues("200", KindTransform).Inc()
	m.HTTPDuration.WithLabelValues(KindTransform).Observe(0.1)
	m.CacheRequests.WithLabelValues(TierMemory, "hit").Inc()
	m.CacheSizeBytes.WithLabelValues(TierMemory).Set(1)
	m.CacheItems.WithLabelValues(TierMemory).Set(1)
	m.CacheEvictions.WithLabelValues(TierDisk).Inc()
	m.Transforms.WithLabelValues("webp", "ok", WorkLive).Inc()
	m.TransformDuration.WithLabelValues("webp", WorkLive).Observe(0.2)
	m.FallbackRequests.WithLabelValues(FallbackOK).Inc()
	return m, gather(t, reg)
}

func gather(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, f := range families {
		got[f.GetName()] = f
	}
	return got
}

func TestContractMetrics(t *testing.T) {
	_, got := touched(t, func() (int64, int64) { return 123, 4 })
	check := func(table map[string]struct {
		typ    dto.MetricType
		labels string
	}) {
		for name, want := range table {
			f, ok := got[name]
			if !ok {
				t.Errorf("%s is not exported", name)
				continue
			}
			if f.GetType() != want.typ {
				t.Errorf("%s is a %v, want %v", name, f.GetType(), want.typ)
			}
			var labels []string
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
			sort.Strings(labels)
			if strings.Join(labels, ",") != want.labels {
				t.Errorf("%s labels %v, want %s", name, labels, want.labels)
			}
		}
	}
	check(contract)
	check(ours)
	// "plus the standard Go and process collectors"
	for _, std := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := got[std]; !ok {
			t.Errorf("%s missing", std)
		}
	}
	// Nothing else under our prefix: a new metric belongs in the tables above
	// and in docs/operations.md.
	for name := range got {
		if _, c := contract[name]; strings.HasPrefix(name, "image_proxy_") && !c {
			if _, o := ours[name]; !o {
				t.Errorf("%s is exported but not listed in this test (and so probably not documented)", name)
			}
		}
	}
}

func TestLibvipsGaugesReadAtScrapeTime(t *testing.T) {
	var mem atomic.Int64
	mem.Store(123)
	reg := prometheus.NewRegistry()
	New(reg, func() (int64, int64) { return mem.Load(), 4 })
	if v := gather(t, reg)["image_proxy_libvips_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); v != 123 {
		t.Errorf("libvips memory %v, want 123", v)
	}
	mem.Store(456)
	got := gather(t, reg)
	if v := got["image_proxy_libvips_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); v != 456 {
		t.Errorf("libvips memory %v after a change, want 456: the gauge must read libvips on each scrape", v)
	}
	if v := got["image_proxy_libvips_open_files"].GetMetric()[0].GetGauge().GetValue(); v != 4 {
		t.Errorf("libvips open files %v, want 4", v)
	}
}

func TestNilVipsOmitsLibvipsGauges(t *testing.T) {
	_, got := touched(t, nil)
	for _, name := range []string{"image_proxy_libvips_memory_bytes", "image_proxy_libvips_open_files"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s exported without a libvips stats function", name)
		}
	}
	if _, ok := got["image_proxy_http_requests_total"]; !ok {
		t.Error("the other collectors must still be there")
	}
}

// No global state: nothing lands on the default registry, and two instances
// on two registries do not collide.
func TestNoDefaultRegistry(t *testing.T) {
	New(prometheus.NewRegistry(), nil)
	New(prometheus.NewRegistry(), func() (int64, int64) { return 0, 0 })
	for name := range gather(t, prometheus.DefaultGatherer) {
		if strings.HasPrefix(name, "image_proxy_") {
			t.Errorf("%s registered on the default registry", name)
		}
	}
}

func TestLintClean(t *testing.T) {
	m, _ := touched(t, func() (int64, int64) { return 1, 1 })
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "image_proxy_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	for name, f := range gather(t, m.Registry) {
		if strings.HasPrefix(name, "image_proxy_") && len(f.GetHelp()) < 10 {
			t.Errorf("%s: help text %q says too little for an operator", name, f.GetHelp())
		}
	}
}

// Label values come from the documented fixed sets.
func TestLabelValueConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"kind", []string{KindPassthrough, KindTransform, KindError, KindConvert, KindBulk, KindJSON}, []string{"passthrough", "transform", "error", "convert", "bulk", "json"}},
		{"tier", []string{TierMemory, TierDisk, TierS3}, []string{"memory", "disk", "s3"}},
		{"tier set", Tiers, []string{"memory", "disk", "s3"}},
		{"cache result", []string{CacheHit, CacheMiss}, []string{"hit", "miss"}},
		{"lease result", LeaseResults, []string{"won", "shared", "bypassed"}},
		{"transform result", []string{TransformOK, TransformError}, []string{"ok", "error"}},
		{"work", []string{WorkLive, WorkWarm}, []string{"live", "warm"}},
		{"work set", Works, []string{"live", "warm"}},
		{"stat cache result", StatCacheResults, []string{"hit", "stat"}},
		{"fallback result", []string{FallbackOK, FallbackNotFound, FallbackError, FallbackTooLarge, FallbackTimeout},
			[]string{"ok", "not_found", "error", "too_large", "timeout"}},
		{"refusal reason", RefusalReasons,
			[]string{"unknown_preset", "quality_not_allowed", "size_not_allowed", "signature_missing", "signature_invalid"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s values %v, the contract says %v", c.name, c.got, c.want)
		}
	}
}

// labelSets spells the series of a vector as sorted "name=value" lists, one
// per combination of the values given for each label.
func labelSets(labels map[string][]string) []string {
	sets := [][]string{nil}
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		var next [][]string
		for _, set := range sets {
			for _, v := range labels[name] {
				next = append(next, append(slices.Clone(set), name+"="+v))
			}
		}
		sets = next
	}
	out := make([]string, len(sets))
	for i, set := range sets {
		out[i] = strings.Join(set, ",")
	}
	return out
}

func seriesOf(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		var pairs []string
		for _, l := range m.GetLabel() {
			pairs = append(pairs, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(pairs)
		out = append(out, strings.Join(pairs, ","))
	}
	sort.Strings(out)
	return out
}

// Every series of a bounded label set exists at 0 before anything is
// counted, so rate(), ratios in alerts and dashboards see 0 instead of
// nothing. Written out here rather than taken from the package's lists, so
// that dropping a value there fails.
func TestSeriesExistAtStart(t *testing.T) {
	kinds := []string{"passthrough", "transform", "error", "convert", "bulk", "events", "purge", "json"}
	tiers := []string{"memory", "disk", "s3"}
	// The format label follows the format table, not a list of its own:
	// a format the table can encode must have its series, whatever
	// metrics' own code says.
	var formats []string
	for _, f := range imageformat.Outputs() {
		formats = append(formats, f.String())
	}
	works := []string{"live", "warm"}
	var codes []string
	for kind, cs := range map[string][]string{
		"passthrough": {"200", "206", "304", "416"},
		"transform":   {"200", "304"},
		"error":       {"400", "401", "403", "404", "405", "413", "415", "422", "500", "502", "503", "504"},
		"convert":     {"200"},
		"bulk":        {"200"},
		"events":      {"200"},
		"purge":       {"200", "502"},
		"json":        {"200", "304"},
	} {
		codes = append(codes, labelSets(map[string][]string{"code": cs, "kind": {kind}})...)
	}
	want := map[string][]string{
		"image_proxy_http_requests_total":              codes,
		"image_proxy_http_request_duration_seconds":    labelSets(map[string][]string{"kind": kinds}),
		"image_proxy_cache_requests_total":             labelSets(map[string][]string{"tier": tiers, "result": {"hit", "miss"}}),
		"image_proxy_cache_size_bytes":                 labelSets(map[string][]string{"tier": tiers}),
		"image_proxy_cache_items":                      labelSets(map[string][]string{"tier": tiers}),
		"image_proxy_cache_evictions_total":            labelSets(map[string][]string{"tier": tiers}),
		"image_proxy_cache_corrupt_entries_total":      {""},
		"image_proxy_cache_leases_total":               labelSets(map[string][]string{"result": {"won", "shared", "bypassed"}}),
		"image_proxy_cache_disk_write_failures_total":  labelSets(map[string][]string{"reason": {"full", "error"}}),
		"image_proxy_transforms_total":                 labelSets(map[string][]string{"format": formats, "result": {"ok", "error"}, "work": works}),
		"image_proxy_transform_duration_seconds":       labelSets(map[string][]string{"format": formats, "work": works}),
		"image_proxy_transforms_in_flight":             {""},
		"image_proxy_transform_queue_rejections_total": {""},
		"image_proxy_transform_queue_waiting":          {""},
		"image_proxy_fallback_requests_total":          labelSets(map[string][]string{"result": {"ok", "not_found", "error", "too_large", "timeout"}}),
		"image_proxy_libvips_memory_bytes":             {""},
		"image_proxy_libvips_open_files":               {""},
		"image_proxy_refusals_total": labelSets(map[string][]string{"reason": {"unknown_preset", "quality_not_allowed",
			"size_not_allowed", "signature_missing", "signature_invalid"}}),
		"image_proxy_stat_cache_lookups_total":    labelSets(map[string][]string{"result": {"hit", "stat"}}),
		"image_proxy_s3_stat_cache_lookups_total": labelSets(map[string][]string{"result": {"hit", "head"}}),
		"image_proxy_events_total": labelSets(map[string][]string{"kind": {"created", "removed", "other"},
			"outcome": {"done", "failed", "ignored", "duplicate", "dropped"}}),
		"image_proxy_purges_total":                   labelSets(map[string][]string{"trigger": {"request", "event"}}),
		"image_proxy_purged_entries_total":           labelSets(map[string][]string{"tier": tiers}),
		"image_proxy_stat_cache_watched_directories": {""},
		"image_proxy_decode_cache_requests_total":    labelSets(map[string][]string{"result": {"hit", "miss"}}),
		"image_proxy_decode_cache_size_bytes":        {""},
		"image_proxy_stored_decodes_total":           labelSets(map[string][]string{"result": {"hit", "miss", "rejected", "stored", "dropped", "failed"}}),
	}
	reg := prometheus.NewRegistry()
	New(reg, func() (int64, int64) { return 0, 0 })
	got := gather(t, reg)
	for name, series := range want {
		f, ok := got[name]
		if !ok {
			t.Errorf("%s is absent until first counted", name)
			continue
		}
		sort.Strings(series)
		if have := seriesOf(f); !slices.Equal(have, series) {
			t.Errorf("%s at start has series\n  %v\nwant\n  %v", name, have, series)
		}
		for _, m := range f.GetMetric() {
			if v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount()); v != 0 {
				t.Errorf("%s{%v} starts at %v, want 0", name, m.GetLabel(), v)
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; strings.HasPrefix(name, "image_proxy_") && !ok {
			t.Errorf("%s is exported but not in this test's table", name)
		}
	}
}

func TestHandlerServesTextFormat(t *testing.T) {
	m := New(prometheus.NewRegistry(), nil)
	m.QueueRejections.Inc()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the Prometheus text format", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE image_proxy_transform_queue_rejections_total counter",
		"image_proxy_transform_queue_rejections_total 1",
		"image_proxy_transforms_in_flight 0",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestHistogramBucketsSpanImageWork(t *testing.T) {
	if !slices.IsSorted(durationBuckets) {
		t.Errorf("buckets %v are not ascending", durationBuckets)
	}
	if durationBuckets[0] > 0.001 || durationBuckets[len(durationBuckets)-1] < 30 {
		t.Errorf("buckets %v do not span 1 ms to tens of seconds", durationBuckets)
	}
	// Both histograms use them (a 5 s p99 alert needs a bound at 5 s).
	_, got := touched(t, nil)
	for _, name := range []string{"image_proxy_http_request_duration_seconds", "image_proxy_transform_duration_seconds"} {
		var bounds []float64
		for _, b := range got[name].GetMetric()[0].GetHistogram().GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
		}
		if !slices.Equal(bounds, durationBuckets) || !slices.Contains(bounds, 5) {
			t.Errorf("%s buckets %v, want %v", name, bounds, durationBuckets)
		}
	}
}
