package charttest

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"image-proxy/deploy/helm/charttest/render"
)

// TestChartFilesAreTheProjects: the chart carries deploy/alerts.yml and the
// Grafana dashboard byte for byte (`make chart-files` copies them), and
// renders them unchanged into the PrometheusRule and the dashboard
// ConfigMap, with the sidecar's label and the job the rules select.
func TestChartFilesAreTheProjects(t *testing.T) {
	root := render.Root()
	for src, dst := range map[string]string{
		"deploy/alerts.yml":               "files/alerts.yml",
		"deploy/grafana/image-proxy.json": "files/image-proxy.json",
	} {
		if !bytes.Equal(readFile(t, filepath.Join(root, src)), readFile(t, filepath.Join(render.Chart(), dst))) {
			t.Errorf("chart's %s differs from %s: run `make chart-files`", dst, src)
		}
	}
	r := renderChart(t, []string{"testdata/everything.yaml"})

	var alerts struct{ Groups []monitoringv1.RuleGroup }
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(root, "deploy", "alerts.yml")), &alerts); err != nil {
		t.Fatal(err)
	}
	rule := get[*monitoringv1.PrometheusRule](t, r, "PrometheusRule/image-proxy")
	if len(alerts.Groups) == 0 || !reflect.DeepEqual(rule.Spec.Groups, alerts.Groups) {
		t.Error("the PrometheusRule's groups are not deploy/alerts.yml's")
	}

	dash := get[*corev1.ConfigMap](t, r, "ConfigMap/image-proxy-dashboard")
	if dash.Data["image-proxy.json"] != string(bytes.TrimRight(readFile(t, filepath.Join(root, "deploy", "grafana", "image-proxy.json")), "\n")) {
		t.Error("the dashboard ConfigMap does not hold deploy/grafana/image-proxy.json")
	}
	if dash.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard labels %v: Grafana's sidecar looks for grafana_dashboard: \"1\"", dash.Labels)
	}

	// The alerts select job="image-proxy": the ServiceMonitor takes the
	// job from a Service label whose value is that.
	sm := get[*monitoringv1.ServiceMonitor](t, r, "ServiceMonitor/image-proxy")
	svc := get[*corev1.Service](t, r, "Service/image-proxy")
	if sm.Spec.JobLabel == "" || svc.Labels[sm.Spec.JobLabel] != "image-proxy" {
		t.Errorf("ServiceMonitor jobLabel %q gives job %q, the alerts select job=\"image-proxy\"", sm.Spec.JobLabel, svc.Labels[sm.Spec.JobLabel])
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v: want /metrics on the http port", sm.Spec.Endpoints)
	}
}

// TestSettingsChangeRollsPods: a changed setting or secret changes the
// pod template (its checksum annotations), so the Deployment rolls.
func TestSettingsChangeRollsPods(t *testing.T) {
	annotations := func(sets ...string) map[string]string {
		d := get[*appsv1.Deployment](t, renderChart(t, nil, sets...), "Deployment/image-proxy")
		return d.Spec.Template.Annotations
	}
	base := annotations()
	for _, c := range []struct{ set, key string }{
		{"settings.IMAGE_PROXY_JPEG_QUALITY=80", "checksum/config"},
		{"secrets.values.IMAGE_PROXY_SIGNING_KEY=0123456789abcdef0123456789abcdef", "checksum/secret"},
	} {
		if got := annotations(c.set); got[c.key] == "" || got[c.key] == base[c.key] {
			t.Errorf("--set %s: %s %q, before %q: the pods would not roll", c.set, c.key, got[c.key], base[c.key])
		}
	}
}

// TestKustomizeMatchesChart: kustomize build of the committed base and
// production overlay gives exactly the chart's objects, with its default
// values and with the fleet's.
func TestKustomizeMatchesChart(t *testing.T) {
	for _, c := range []struct {
		dir    string
		values []string
	}{
		{"base", nil},
		{"overlays/production", []string{render.FleetValues()}},
	} {
		t.Run(c.dir, func(t *testing.T) {
			k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
			res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(render.Root(), "deploy", "kustomize", c.dir))
			if err != nil {
				t.Fatalf("kustomize build: %v", err)
			}
			got := map[string]any{}
			for _, r := range res.Resources() {
				j, err := r.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				got[r.GetKind()+"/"+r.GetName()] = normal(t, j)
			}
			want := map[string]any{}
			for _, d := range renderChart(t, c.values).docs {
				j, err := yaml.YAMLToJSON(d.Raw)
				if err != nil {
					t.Fatal(err)
				}
				want[d.ID()] = normal(t, j)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("deploy/kustomize/%s does not build to the chart's objects (%v vs %v): run `make kustomize`", c.dir, sortedKeys(got), sortedKeys(want))
				for id := range want {
					if !reflect.DeepEqual(got[id], want[id]) {
						t.Logf("%s differs:\nkustomize: %v\nchart:     %v", id, got[id], want[id])
					}
				}
			}
		})
	}
}

// normal is a JSON object as encoding/json decodes it, numbers as float64,
// so two encoders' output compares by value.
func normal(t *testing.T, j []byte) any {
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func sortedKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
