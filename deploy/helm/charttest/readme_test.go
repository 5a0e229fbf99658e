package charttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"image-proxy/deploy/helm/charttest/render"
)

// TestReadmeInstalls runs the README's Kubernetes block as pasted, with
// `helm install` turned into `helm template` (no cluster here) and docker,
// kubectl and git answering without doing anything: every helm line must
// render with the real chart and its schema.
func TestReadmeInstalls(t *testing.T) {
	readme := string(readFile(t, filepath.Join(render.Root(), "README.md")))
	m := regexp.MustCompile("(?s)<!-- kubernetes.sh:[^\n]*-->\n```sh\n(.*?)```").FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README: no <!-- kubernetes.sh --> block")
	}
	if n := strings.Count(m[1], "helm install"); n != 2 {
		t.Errorf("README block has %d helm install lines, want 2 (one replica, the fleet)", n)
	}
	helm, err := render.Helm()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	stubs := map[string]string{
		"helm":    "#!/bin/bash\nif [ \"$1\" = install ]; then shift; set -- template \"$@\"; fi\nexec " + helm + " \"$@\" >/dev/null\n",
		"docker":  "#!/bin/bash\nexit 0\n",
		"kubectl": "#!/bin/bash\nexit 0\n",
		"git":     "#!/bin/bash\necho v0.0.0-readme\n",
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", m[1])
	cmd.Dir = render.Root()
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("README's Kubernetes block: %v\n%s", err, out)
	}
}
