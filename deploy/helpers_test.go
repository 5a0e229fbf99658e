// Package deploy holds no code, only checks on the packaging: the Dockerfile,
// .dockerignore, compose.yaml, the Prometheus config and alert rules, the
// Grafana dashboard and the container health check. Tests run with the
// package directory (deploy/) as working directory.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// repo is the repository root, relative to this package's directory.
const repo = ".."

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(read(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promtool finds promtool or fails: the project's test command installs it
// (Debian package prometheus), so a missing promtool is a broken set-up, not
// a reason to skip.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: it comes with Debian's prometheus package " +
			"(apt-get install -y prometheus; `make test-deps` installs it)")
	}
	return p
}

// runPromtool runs promtool in dir and fails the test with its output.
func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// quoted matches PromQL string literals, so label values are not taken for
// metric names.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)

// identifier matches PromQL identifiers (metric, label and function names).
var identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

// metricNames returns the names in a PromQL expression that look like
// metrics of image-proxy, the Go and process collectors, or `up`.
func metricNames(expr string) []string {
	var out []string
	for _, id := range identifier.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		switch {
		case id == "up",
			strings.HasPrefix(id, "image_proxy_"),
			strings.HasPrefix(id, "go_"),
			strings.HasPrefix(id, "process_"):
			out = append(out, id)
		}
	}
	return out
}

// exists reports whether a repository-relative path exists.
func exists(rel string) bool {
	_, err := os.Stat(filepath.Join(repo, rel))
	return err == nil
}
