// Package deploy holds the packaging checks: the Prometheus config and
// rules pass promtool, compose.yaml only references files that exist, and
// the dashboard only queries metrics image-proxy exports.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: install Debian's prometheus package (make test-deps does)")
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "alerts.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type composeFile struct {
	Services map[string]struct {
		Build   any      `yaml:"build"`
		EnvFile any      `yaml:"env_file"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeReferencesExist(t *testing.T) {
	raw, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Services) < 3 {
		t.Fatalf("services: %v", c.Services)
	}
	checked := 0
	for name, s := range c.Services {
		if s.Build != nil {
			ctx, ok := s.Build.(string)
			if !ok {
				ctx = s.Build.(map[string]any)["context"].(string)
			}
			mustExist(t, name, filepath.Join("..", ctx, "Dockerfile"))
			checked++
		}
		for _, v := range s.Volumes {
			host, _, _ := strings.Cut(v, ":")
			switch {
			case strings.HasPrefix(host, "./") || strings.HasPrefix(host, "../"):
				mustExist(t, name, filepath.Join("..", host))
				checked++
			case strings.HasPrefix(host, "/"):
				// host paths such as the Docker socket are the machine's, not ours
			default:
				if _, ok := c.Volumes[host]; !ok {
					t.Errorf("%s: named volume %q is not declared", name, host)
				}
			}
		}
	}
	if checked < 6 {
		t.Errorf("only %d references checked", checked)
	}
}

func mustExist(t *testing.T, service, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("%s references %s, which does not exist", service, path)
	}
}

// exported lists every metric name image-proxy registers (metrics/metrics.go)
// plus the standard collectors' families used by the dashboard and alerts.
func exported(t *testing.T) map[string]bool {
	src, err := os.ReadFile("../metrics/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true}
	for _, m := range regexp.MustCompile(`"(image_proxy_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		names[m[1]] = true
	}
	for _, std := range []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes"} {
		names[std] = true
	}
	return names
}

// metricNames finds metric names in a PromQL expression.
func metricNames(expr string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\b((?:image_proxy|process|go)_[a-z_]+|up)\b`).FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(m, suffix) && strings.Contains(m, "_seconds") {
				m = strings.TrimSuffix(m, suffix)
			}
		}
		out = append(out, m)
	}
	return out
}

func TestDashboardAndAlertsUseRealMetrics(t *testing.T) {
	names := exported(t)
	var exprs []string

	raw, err := os.ReadFile("grafana/image-proxy.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}

	raw, err = os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}

	if len(exprs) < 10 {
		t.Fatalf("only %d expressions", len(exprs))
	}
	for _, e := range exprs {
		for _, n := range metricNames(e) {
			if !names[n] {
				t.Errorf("%q queries %s, which image-proxy does not export", e, n)
			}
		}
	}
}
