package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The config names alerts.yml relative to its own directory, which is how
// compose.yaml mounts the two files too; promtool checks the rule file
// exists and parses.
func TestPrometheusConfig(t *testing.T) {
	runPromtool(t, ".", "check", "config", "prometheus.yml")

	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			MetricsPath string `yaml:"metrics_path"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus.yml", &cfg)
	if len(cfg.RuleFiles) != 1 || cfg.RuleFiles[0] != "alerts.yml" {
		t.Errorf("rule_files = %v, want [alerts.yml] (relative, so it works in the repository and in the container)", cfg.RuleFiles)
	}
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "image-proxy" {
			found = true
			if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
				t.Errorf("image-proxy serves /metrics at the root, config scrapes %s", sc.MetricsPath)
			}
		}
	}
	if !found {
		t.Error(`no scrape job "image-proxy" (the alerts select job="image-proxy")`)
	}
}

func TestAlertRules(t *testing.T) {
	runPromtool(t, ".", "check", "rules", "alerts.yml")
	// Each alert fires on the series that should trip it and not on a neighbour.
	runPromtool(t, ".", "test", "rules", "alerts.test.yml")

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "alerts.yml", &rules)
	tested := string(read(t, "alerts.test.yml"))
	ops := string(read(t, filepath.Join(repo, "docs", "operations.md")))
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			switch r.Labels["severity"] {
			case "page", "warn", "info":
			default:
				t.Errorf("%s: severity %q, want page, warn or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s has no summary", r.Alert)
			}
			if !strings.Contains(tested, "alertname: "+r.Alert+"\n") {
				t.Errorf("%s has no unit test in alerts.test.yml", r.Alert)
			}
			if !strings.Contains(ops, r.Alert) {
				t.Errorf("%s is not explained in docs/operations.md", r.Alert)
			}
		}
	}
	if n < 6 {
		t.Errorf("only %d alerts", n)
	}
}

// The dashboard's queries are PromQL too: promtool parses them as recording
// rules (Grafana's $__rate_interval replaced by a fixed range).
func TestDashboardQueriesParse(t *testing.T) {
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rs []rule
	for i, q := range dashboardQueries(t) {
		expr := strings.ReplaceAll(q.expr, "$__rate_interval", "5m")
		rs = append(rs, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: expr})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rs}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "dashboard.yml")
}
