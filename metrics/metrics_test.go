package metrics

import (
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The contract's metric table: name → type and label names.
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
	"image_proxy_transforms_total":                 {dto.MetricType_COUNTER, "format,result"},
	"image_proxy_transform_duration_seconds":       {dto.MetricType_HISTOGRAM, "format"},
	"image_proxy_transforms_in_flight":             {dto.MetricType_GAUGE, ""},
	"image_proxy_transform_queue_rejections_total": {dto.MetricType_COUNTER, ""},
	"image_proxy_fallback_requests_total":          {dto.MetricType_COUNTER, "result"},
}

func TestContractMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, func() (int64, int64) { return 123, 4 })
	// Vectors only appear once they have a child.
	m.HTTPRequests.WithLabelValues("200", KindTransform).Inc()
	m.HTTPDuration.WithLabelValues(KindTransform).Observe(0.1)
	m.CacheRequests.WithLabelValues(TierMemory, "hit").Inc()
	m.CacheSizeBytes.WithLabelValues(TierMemory).Set(1)
	m.CacheItems.WithLabelValues(TierMemory).Set(1)
	m.CacheEvictions.WithLabelValues(TierDisk).Inc()
	m.Transforms.WithLabelValues("webp", "ok").Inc()
	m.TransformDuration.WithLabelValues("webp").Observe(0.2)
	m.FallbackRequests.WithLabelValues(FallbackOK).Inc()

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, f := range families {
		got[f.GetName()] = f
	}
	for name, want := range contract {
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
	for _, std := range []string{"go_goroutines", "process_resident_memory_bytes", "image_proxy_libvips_memory_bytes", "image_proxy_libvips_open_files"} {
		if _, ok := got[std]; !ok {
			t.Errorf("%s missing", std)
		}
	}
	if v := got["image_proxy_libvips_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); v != 123 {
		t.Errorf("libvips memory gauge %v", v)
	}
}

func TestHandlerServesTextFormat(t *testing.T) {
	m := New(prometheus.NewRegistry(), nil)
	m.QueueRejections.Inc()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "image_proxy_transform_queue_rejections_total 1") {
		t.Fatalf("%s", rec.Body.String())
	}
}

func TestHistogramBucketsSpanImageWork(t *testing.T) {
	if durationBuckets[0] > 0.001 || durationBuckets[len(durationBuckets)-1] < 30 {
		t.Errorf("buckets %v do not span 1 ms to tens of seconds", durationBuckets)
	}
}
