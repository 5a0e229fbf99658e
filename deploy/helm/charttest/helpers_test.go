package charttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"image-proxy/deploy/helm/charttest/render"
)

// types are the Go types rendered objects decode into, by apiVersion and
// kind: an object of another kind, or a field its type does not have, fails.
var types = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"v1/PersistentVolumeClaim":                func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/Ingress":            func() any { return &networkingv1.Ingress{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

// rendered is one `helm template`: every object, decoded strictly.
type rendered struct {
	docs    []render.Doc
	objects map[string]any // by Doc.ID()
}

func renderChart(t *testing.T, valueFiles []string, sets ...string) rendered {
	t.Helper()
	out, err := render.Template(valueFiles, sets...)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := render.Split(out)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{docs: docs, objects: map[string]any{}}
	for _, d := range docs {
		mk, ok := types[d.APIVersion+"/"+d.Kind]
		if !ok {
			t.Fatalf("%s: %s/%s is not a type this test knows", d.ID(), d.APIVersion, d.Kind)
		}
		obj := mk()
		if err := yaml.UnmarshalStrict(d.Raw, obj); err != nil {
			t.Fatalf("%s does not decode strictly into %T: %v\n%s", d.ID(), obj, err, d.Raw)
		}
		r.objects[d.ID()] = obj
	}
	return r
}

func get[T any](t *testing.T, r rendered, id string) T {
	t.Helper()
	obj, ok := r.objects[id]
	if !ok {
		t.Fatalf("no %s rendered (have %v)", id, r.ids())
	}
	return obj.(T)
}

func (r rendered) ids() []string {
	var ids []string
	for _, d := range r.docs {
		ids = append(ids, d.ID())
	}
	return ids
}

func (r rendered) has(id string) bool { _, ok := r.objects[id]; return ok }

// setting is a line of deploy/helm/settings.json, which the root package's
// TestChartSchema generates from the binary's own settings.
type setting struct {
	Name, Type, Default, Role, From string
}

func settings(t *testing.T) map[string]setting {
	t.Helper()
	var f struct{ Settings []setting }
	if err := json.Unmarshal(readFile(t, filepath.Join(render.Root(), "deploy", "helm", "settings.json")), &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]setting{}
	for _, s := range f.Settings {
		out[s.Name] = s
	}
	if len(out) < 50 {
		t.Fatalf("settings.json lists %d settings: regenerate it with make chart-schema", len(out))
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// container is the Deployment's image-proxy container.
func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Deployment has %d containers, want 1", n)
	}
	return d.Spec.Template.Spec.Containers[0]
}

// env is the container's environment as the process sees it: ConfigMap
// and Secret keys first, then env, which wins.
func env(t *testing.T, r rendered, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			for k, v := range get[*corev1.ConfigMap](t, r, "ConfigMap/"+from.ConfigMapRef.Name).Data {
				out[k] = v
			}
		case from.SecretRef != nil && r.has("Secret/"+from.SecretRef.Name):
			for k, v := range get[*corev1.Secret](t, r, "Secret/"+from.SecretRef.Name).Data {
				out[k] = string(v)
			}
		}
	}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

// port is the port of a host:port setting.
func port(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
