package deploy

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"image-proxy/metrics"
)

type query struct {
	panel, expr string
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // rows may nest panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(read(t, "grafana/image-proxy.json"), &d); err != nil {
		t.Fatalf("grafana/image-proxy.json: %v", err)
	}
	return d
}

func walkPanels(ps []panel, f func(panel)) {
	for _, p := range ps {
		f(p)
		walkPanels(p.Panels, f)
	}
}

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	walkPanels(loadDashboard(t).Panels, func(p panel) {
		for _, tg := range p.Targets {
			qs = append(qs, query{p.Title, tg.Expr})
		}
	})
	return qs
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// exported returns every series name image-proxy exposes: the collectors
// metrics.New registers (read from their descriptors, so vectors count
// before they have children), with _bucket/_sum/_count for histograms, plus
// the Go and process collectors' families and Prometheus' own `up`.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, func() (int64, int64) { return 0, 0 })
	names := map[string]bool{"up": true}
	add := func(name string, histogram bool) {
		names[name] = true
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}

	v := reflect.ValueOf(m).Elem()
	collectorType := reflect.TypeFor[prometheus.Collector]()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Type() == reflect.TypeFor[*prometheus.Registry]() || !f.Type().Implements(collectorType) || f.IsNil() {
			continue
		}
		c := f.Interface().(prometheus.Collector)
		histogram := strings.Contains(f.Type().String(), "Histogram")
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if sm := fqName.FindStringSubmatch(d.String()); sm != nil {
				add(sm[1], histogram)
			}
		}
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		add(fam.GetName(), fam.GetType() == dto.MetricType_HISTOGRAM)
		if fam.GetType() == dto.MetricType_SUMMARY {
			names[fam.GetName()+"_sum"], names[fam.GetName()+"_count"] = true, true
		}
	}
	// Sanity: the reflection above saw the vectors.
	for _, must := range []string{"image_proxy_http_requests_total", "image_proxy_transform_duration_seconds_bucket", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		if !names[must] {
			t.Fatalf("metric discovery is broken: %s not found in %v", must, names)
		}
	}
	return names
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title (provisioning keys on the uid)")
	}
	hasDSVar := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDSVar = true
		}
	}
	walkPanels(d.Panels, func(p panel) {
		if len(p.Targets) > 0 && (p.Datasource == nil || (p.Datasource.UID != "${datasource}" && p.Datasource.UID != "prometheus")) {
			t.Errorf("panel %q: datasource must be ${datasource} or the provisioned uid \"prometheus\"", p.Title)
		}
		if p.Datasource != nil && p.Datasource.UID == "${datasource}" && !hasDSVar {
			t.Errorf("panel %q uses ${datasource}, which the dashboard does not define", p.Title)
		}
	})

	names := exported(t)
	queried := map[string]bool{}
	qs := dashboardQueries(t)
	if len(qs) < 10 {
		t.Fatalf("only %d queries", len(qs))
	}
	for _, q := range qs {
		ms := metricNames(q.expr)
		if len(ms) == 0 {
			t.Errorf("panel %q: no metric in %q", q.panel, q.expr)
		}
		for _, n := range ms {
			queried[n] = true
			if !names[n] {
				t.Errorf("panel %q queries %s, which image-proxy does not export", q.panel, n)
			}
		}
	}
	// What the dashboard must show.
	for what, metric := range map[string]string{
		"request rate by kind and code": "image_proxy_http_requests_total",
		"latency percentiles":           "image_proxy_http_request_duration_seconds_bucket",
		"cache hit ratio per tier":      "image_proxy_cache_requests_total",
		"transform time per format":     "image_proxy_transform_duration_seconds_bucket",
		"queue rejections":              "image_proxy_transform_queue_rejections_total",
		"process RSS":                   "process_resident_memory_bytes",
		"Go heap":                       "go_memstats_heap_inuse_bytes",
		"libvips memory":                "image_proxy_libvips_memory_bytes",
	} {
		if !queried[metric] {
			t.Errorf("dashboard does not show %s (%s)", what, metric)
		}
	}
}

func TestAlertsUseRealMetrics(t *testing.T) {
	names := exported(t)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "alerts.yml", &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, n := range metricNames(r.Expr) {
				if !names[n] {
					t.Errorf("alert %s uses %s, which image-proxy does not export", r.Alert, n)
				}
			}
		}
	}
}

func TestMetricNamesIgnoresLabelValues(t *testing.T) {
	got := metricNames(`sum by (le) (rate(image_proxy_x_bucket{job="go_fake",kind="up"}[5m])) / up`)
	if strings.Join(got, ",") != "image_proxy_x_bucket,up" {
		t.Errorf("metricNames = %v", got)
	}
}

var (
	selector = regexp.MustCompile(`(image_proxy_[a-zA-Z0-9_]+)\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
)

// exportedLabels is, for each image-proxy family (histograms under their
// _bucket, _sum and _count names), each label and the values its series
// have at start (metrics.New creates every series of the fixed sets).
func exportedLabels(t *testing.T) map[string]map[string][]string {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics.New(reg, func() (int64, int64) { return 0, 0 })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]string{}
	for _, fam := range families {
		labels := map[string][]string{}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = append(labels[l.GetName()], l.GetValue())
			}
		}
		out[fam.GetName()] = labels
		if fam.GetType() == dto.MetricType_HISTOGRAM {
			out[fam.GetName()+"_sum"], out[fam.GetName()+"_count"] = labels, labels
			bucket := map[string][]string{"le": nil} // any bound
			for k, v := range labels {
				bucket[k] = v
			}
			out[fam.GetName()+"_bucket"] = bucket
		}
	}
	return out
}

// A matcher on a label a metric does not have, or on a value it never
// takes, selects nothing: an alert on it never fires and a panel stays
// empty without any error. Every selector of the alerts and the dashboard
// names labels image-proxy exports (or the scrape adds) and values they
// take.
func TestSelectorsUseRealLabels(t *testing.T) {
	labels := exportedLabels(t)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "alerts.yml", &rules)
	qs := dashboardQueries(t)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"alert " + r.Alert, r.Expr})
		}
	}
	checked := 0
	for _, q := range qs {
		for _, sel := range selector.FindAllStringSubmatch(q.expr, -1) {
			for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
				checked++
				if msg := checkMatcher(labels[sel[1]], m[1], m[2], m[3]); msg != "" {
					t.Errorf("%s: %s{%s%s%q}: %s", q.panel, sel[1], m[1], m[2], m[3], msg)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d matchers found: the selector pattern is broken", checked)
	}
}

// checkMatcher says what is wrong with one matcher, or "".
func checkMatcher(labels map[string][]string, name, op, value string) string {
	if name == "job" || name == "instance" {
		return "" // added by the scrape
	}
	values, ok := labels[name]
	if !ok {
		return "the metric has no such label"
	}
	if values == nil || op == "!=" || op == "!~" {
		return ""
	}
	re, err := regexp.Compile("^(?:" + value + ")$")
	if op == "=" {
		re, err = regexp.Compile("^" + regexp.QuoteMeta(value) + "$")
	}
	if err != nil {
		return err.Error()
	}
	for _, v := range values {
		if re.MatchString(v) {
			return ""
		}
	}
	return "no series takes that value"
}

func TestCheckMatcher(t *testing.T) {
	labels := map[string][]string{"work": {"live", "warm"}, "code": {"200", "503"}, "le": nil}
	for _, c := range []struct {
		name, op, value string
		bad             bool
	}{
		{"work", "=", "live", false},
		{"work", "=", "lives", true},
		{"work", "=", "liv.", true},
		{"format", "=", "webp", true},
		{"code", "=~", "5..", false},
		{"code", "=~", "4..", true},
		{"code", "=~", "5(", true},
		{"code", "!=", "999", false},
		{"le", "=", "5", false},
		{"instance", "=", "a:8000", false},
	} {
		if got := checkMatcher(labels, c.name, c.op, c.value); (got != "") != c.bad {
			t.Errorf("%s%s%q: %q, want bad=%v", c.name, c.op, c.value, got, c.bad)
		}
	}
}
