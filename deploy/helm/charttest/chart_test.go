// Package charttest checks the Helm chart in deploy/helm/image-proxy
// without a cluster: helm lint and helm template (the pinned helm from
// `make helm`), every object decoded strictly into its Go type, the
// Deployment against the binary's own settings, the schema against bad
// values, and the Kustomize tree against the chart. Its own module, so
// Kubernetes' and the Prometheus Operator's modules stay out of the
// server's go.mod.
package charttest

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"image-proxy/deploy/helm/charttest/render"
)

type chartCase struct {
	name   string
	values []string // files; none = the chart's defaults
	// objects expected besides ServiceAccount, ConfigMap, Service, Deployment.
	extra []string
}

func cases() []chartCase {
	td := func(f string) string { return filepath.Join("testdata", f) }
	return []chartCase{
		{"defaults", nil, []string{"PodDisruptionBudget/image-proxy"}},
		{"S3 fleet", []string{render.FleetValues()}, []string{"PodDisruptionBudget/image-proxy"}},
		{"disk on PVC", []string{td("pvc.yaml")}, []string{"PodDisruptionBudget/image-proxy", "PersistentVolumeClaim/image-proxy-cache"}},
		{"ingress with prefix", []string{td("ingress-prefix.yaml")}, []string{"PodDisruptionBudget/image-proxy", "Ingress/image-proxy"}},
		{"everything on", []string{td("everything.yaml")}, []string{
			"PodDisruptionBudget/image-proxy", "Ingress/image-proxy", "HorizontalPodAutoscaler/image-proxy",
			"Secret/image-proxy", "ServiceMonitor/image-proxy", "PrometheusRule/image-proxy", "ConfigMap/image-proxy-dashboard",
		}},
	}
}

func TestLint(t *testing.T) {
	helm, err := render.Helm()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"lint", "--strict", render.Chart()}
			for _, f := range c.values {
				args = append(args, "--values", f)
			}
			if out, err := exec.Command(helm, args...).CombinedOutput(); err != nil {
				t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestRender: each values file renders the objects it should, each one
// decoding strictly, and the Deployment keeps every promise of the chart.
func TestRender(t *testing.T) {
	all := settings(t)
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			r := renderChart(t, c.values)
			want := append([]string{"ConfigMap/image-proxy", "Deployment/image-proxy", "Service/image-proxy", "ServiceAccount/image-proxy"}, c.extra...)
			slices.Sort(want)
			if got := r.ids(); !slices.Equal(got, want) {
				t.Errorf("objects %v, want %v", got, want)
			}
			d := get[*appsv1.Deployment](t, r, "Deployment/image-proxy")
			checkSecurity(t, d)
			checkSettings(t, r, d, all)
			checkShutdown(t, d)
			checkProbes(t, d)
			checkVolumes(t, r, d)
		})
	}
}

// checkSecurity: what the issue asks of the pod, and the image's user.
func checkSecurity(t *testing.T, d *appsv1.Deployment) {
	spec := d.Spec.Template.Spec
	c := container(t, d)
	sc, psc := c.SecurityContext, spec.SecurityContext
	switch {
	case sc == nil || psc == nil:
		t.Fatal("no security context")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem not read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v, want all dropped", sc.Capabilities)
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("seccomp profile is not RuntimeDefault")
	case psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil:
		t.Error("pod may run as root")
	case spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken:
		t.Error("the service-account token is mounted")
	}
	// The chart's user is the image's (Dockerfile USER uid:gid).
	m := regexp.MustCompile(`(?m)^USER (\d+):(\d+)\s*$`).FindSubmatch(readFile(t, filepath.Join(render.Root(), "Dockerfile")))
	if m == nil {
		t.Fatal("Dockerfile: no numeric USER uid:gid")
	}
	if psc.RunAsUser != nil && strconv.FormatInt(*psc.RunAsUser, 10) != string(m[1]) {
		t.Errorf("runAsUser %d, the image's user is %s", *psc.RunAsUser, m[1])
	}
	if psc.RunAsGroup == nil || strconv.FormatInt(*psc.RunAsGroup, 10) != string(m[2]) {
		t.Errorf("runAsGroup %v, the image's group is %s", psc.RunAsGroup, m[2])
	}
}

// checkSettings: every variable the container gets is one the binary reads
// (or the C library, or tracing), secrets only from a Secret, and the
// values the chart derives are where the binary will look.
func checkSettings(t *testing.T, r rendered, d *appsv1.Deployment, all map[string]setting) {
	c := container(t, d)
	vars := env(t, r, c)
	for name := range vars {
		s, known := all[name]
		switch {
		case name == "MALLOC_ARENA_MAX", name == "GOMEMLIMIT", strings.HasPrefix(name, "OTEL_"):
		case !known:
			t.Errorf("the container gets %s, which the binary does not read", name)
		case s.Role == "secret" && !isSecretKey(t, r, c, name):
			t.Errorf("%s is a secret but does not come from a Secret", name)
		}
	}
	for name, s := range all {
		if s.Role == "chart" && name != "IMAGE_PROXY_CACHE_DISK_PATH" && name != "IMAGE_PROXY_CACHE_DISK_SIZE" {
			if _, ok := vars[name]; !ok {
				t.Errorf("%s (from %s) is not set", name, s.From)
			}
		}
		if s.Role == "secret" && slices.Contains(keys(get[*corev1.ConfigMap](t, r, "ConfigMap/image-proxy").Data), name) {
			t.Errorf("secret %s is in the ConfigMap", name)
		}
	}
	if vars["MALLOC_ARENA_MAX"] != "2" {
		t.Errorf("MALLOC_ARENA_MAX=%q, want 2", vars["MALLOC_ARENA_MAX"])
	}
	if len(c.Ports) != 1 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != port(vars["IMAGE_PROXY_BIND_ADDRESS"]) || c.Ports[0].Name != "http" {
		t.Errorf("ports %+v do not match IMAGE_PROXY_BIND_ADDRESS=%s", c.Ports, vars["IMAGE_PROXY_BIND_ADDRESS"])
	}
	checkTypes(t, vars, all)
	checkStripPath(t, r, vars["IMAGE_PROXY_STRIP_PATH"])
}

func isSecretKey(t *testing.T, r rendered, c corev1.Container, name string) bool {
	for _, from := range c.EnvFrom {
		if from.SecretRef != nil && r.has("Secret/"+from.SecretRef.Name) {
			if _, ok := get[*corev1.Secret](t, r, "Secret/"+from.SecretRef.Name).Data[name]; ok {
				return true
			}
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkTypes: every value parses as the binary's type of that setting.
func checkTypes(t *testing.T, vars map[string]string, all map[string]setting) {
	for name, v := range vars {
		s, ok := all[name]
		if !ok || v == "" {
			continue
		}
		var err error
		switch s.Type {
		case "integer":
			_, err = strconv.ParseInt(v, 10, 64)
		case "boolean":
			_, err = strconv.ParseBool(v)
		case "duration":
			_, err = time.ParseDuration(v)
		}
		if err != nil {
			t.Errorf("%s=%q is not a %s: %v", name, v, s.Type, err)
		}
	}
}

// checkStripPath: the Ingress routes exactly the prefix image-proxy strips.
func checkStripPath(t *testing.T, r rendered, strip string) {
	if !r.has("Ingress/image-proxy") {
		return
	}
	ing := get[*networkingv1.Ingress](t, r, "Ingress/image-proxy")
	want := "/" + strings.TrimSuffix(strip, "/")
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			if p.Path != want {
				t.Errorf("Ingress path %q, but IMAGE_PROXY_STRIP_PATH=%q strips %q", p.Path, strip, want)
			}
			if p.Backend.Service == nil || p.Backend.Service.Port.Name != "http" {
				t.Errorf("Ingress backend %+v: want the Service's http port", p.Backend)
			}
		}
	}
}

// checkShutdown: SIGKILL comes only after the preStop sleep and the whole
// drain (IMAGE_PROXY_SHUTDOWN_TIMEOUT).
func checkShutdown(t *testing.T, d *appsv1.Deployment) {
	c := container(t, d)
	var drain time.Duration
	for _, e := range c.Env {
		if e.Name == "IMAGE_PROXY_SHUTDOWN_TIMEOUT" {
			drain, _ = time.ParseDuration(e.Value)
		}
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
		t.Fatal("no preStop sleep: the load balancer may still send to a draining pod")
	}
	cmd := c.Lifecycle.PreStop.Exec.Command
	if len(cmd) != 2 || cmd[0] != "/bin/sleep" {
		t.Fatalf("preStop %v, want [/bin/sleep N] (the image carries /bin/sleep)", cmd)
	}
	sleep, err := strconv.Atoi(cmd[1])
	if err != nil || sleep < 1 {
		t.Errorf("preStop sleep %q", cmd[1])
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if drain <= 0 || grace == nil || time.Duration(*grace)*time.Second <= drain+time.Duration(sleep)*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v is not above preStop %ds + IMAGE_PROXY_SHUTDOWN_TIMEOUT %v", grace, sleep, drain)
	}
}

// healthPath is the route proxy/routes.go serves the health check on.
func healthPath(t *testing.T) string {
	m := regexp.MustCompile(`app\.Get\("([^"]+)", s\.health\)`).FindSubmatch(readFile(t, filepath.Join(render.Root(), "proxy", "routes.go")))
	if m == nil {
		t.Fatal("proxy/routes.go: no health route found")
	}
	return string(m[1])
}

// checkProbes: all three probe the health route on the container's port,
// and liveness gives a busy replica far longer than readiness does.
func checkProbes(t *testing.T, d *appsv1.Deployment) {
	c := container(t, d)
	path := healthPath(t)
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: none, or not HTTP", name)
			continue
		}
		if p.HTTPGet.Path != path || p.HTTPGet.Port.String() != c.Ports[0].Name {
			t.Errorf("%s probe GET %s on %s, want %s on %s", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), path, c.Ports[0].Name)
		}
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		return
	}
	window := func(p *corev1.Probe) int32 { return p.PeriodSeconds * p.FailureThreshold }
	if window(c.LivenessProbe) < 30 || window(c.LivenessProbe) <= window(c.ReadinessProbe) || c.LivenessProbe.TimeoutSeconds < 3 {
		t.Errorf("liveness kills after %ds (timeout %ds), readiness after %ds: a replica busy rendering must be taken out of rotation long before it is killed",
			window(c.LivenessProbe), c.LivenessProbe.TimeoutSeconds, window(c.ReadinessProbe))
	}
}

// checkVolumes: with a read-only root, every path the binary writes is a
// mount, the disk tier at IMAGE_PROXY_CACHE_DISK_PATH; its size stays at
// most 80 % of the volume's.
func checkVolumes(t *testing.T, r rendered, d *appsv1.Deployment) {
	c := container(t, d)
	vars := env(t, r, c)
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if _, ok := mounts["/tmp"]; !ok {
		t.Error("/tmp is not a volume on a read-only root")
	}
	if m, ok := mounts[vars["IMAGE_PROXY_ROOT_PATH"]]; ok && !m.ReadOnly {
		t.Error("the originals are mounted writable")
	}
	if vars["IMAGE_PROXY_ENABLE_DISK_CACHE"] != "true" {
		return
	}
	m, ok := mounts[vars["IMAGE_PROXY_CACHE_DISK_PATH"]]
	if !ok || m.ReadOnly {
		t.Fatalf("IMAGE_PROXY_CACHE_DISK_PATH=%s is not a writable mount (%v)", vars["IMAGE_PROXY_CACHE_DISK_PATH"], keys(mounts))
	}
	limit := volumeSize(t, r, d, m.Name)
	size, err := strconv.ParseInt(vars["IMAGE_PROXY_CACHE_DISK_SIZE"], 10, 64)
	if err != nil || size <= 0 || size*10 > limit*8 {
		t.Errorf("IMAGE_PROXY_CACHE_DISK_SIZE=%s is not at most 80 %% of its %d-byte volume", vars["IMAGE_PROXY_CACHE_DISK_SIZE"], limit)
	}
}

// volumeSize is an emptyDir's sizeLimit or a claim's request, in bytes.
func volumeSize(t *testing.T, r rendered, d *appsv1.Deployment, name string) int64 {
	for _, v := range d.Spec.Template.Spec.Volumes {
		switch {
		case v.Name != name:
		case v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil:
			return v.EmptyDir.SizeLimit.Value()
		case v.EmptyDir != nil:
			t.Fatalf("volume %s: an emptyDir without sizeLimit", name)
		case v.PersistentVolumeClaim != nil:
			pvc := get[*corev1.PersistentVolumeClaim](t, r, "PersistentVolumeClaim/"+v.PersistentVolumeClaim.ClaimName)
			q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
			return q.Value()
		}
	}
	t.Fatalf("no volume %s", name)
	return 0
}
