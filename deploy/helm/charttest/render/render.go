// Package render runs `helm template` on the image-proxy chart and turns
// its output into objects; the chart's tests and the Kustomize generator
// share it, so the Kustomize tree is made exactly as it is checked.
package render

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Root is the repository, found from this file.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// Chart is the chart's directory.
func Chart() string { return filepath.Join(Root(), "deploy", "helm", "image-proxy") }

// Release is the release name the Kustomize tree is rendered with: the
// chart's name, so objects are called image-proxy, not <release>-image-proxy.
const Release = "image-proxy"

// Helm is the helm binary: $HELM, else helm on PATH, else GOPATH/bin/helm
// (where `make helm` installs the pinned version).
func Helm() (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		return h, nil
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		h := filepath.Join(strings.Split(strings.TrimSpace(string(out)), string(os.PathListSeparator))[0], "bin", "helm")
		if _, err := os.Stat(h); err == nil {
			return h, nil
		}
	}
	return "", fmt.Errorf("no helm binary: run `make helm` (installs the pinned version into GOPATH/bin) or set HELM")
}

// Template renders the chart with the given values files and --set
// arguments; stderr is in the error.
func Template(valueFiles []string, sets ...string) ([]byte, error) {
	helm, err := Helm()
	if err != nil {
		return nil, err
	}
	args := []string{"template", Release, Chart(), "--namespace", "default"}
	for _, f := range valueFiles {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// Doc is one rendered object: its YAML as helm wrote it and its identity.
type Doc struct {
	Raw        []byte
	APIVersion string
	Kind       string
	Name       string
}

// ID names the object uniquely within one rendering.
func (d Doc) ID() string { return d.Kind + "/" + d.Name }

// File is the object's file name in the Kustomize tree.
func (d Doc) File() string { return strings.ToLower(d.Kind) + "-" + d.Name + ".yaml" }

var separator = regexp.MustCompile(`(?m)^---\s*$`)

// Split cuts helm's output into objects, empty documents dropped, sorted
// by kind and name so a listing is stable.
func Split(out []byte) ([]Doc, error) {
	var docs []Doc
	for _, chunk := range separator.Split(string(out), -1) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(chunk), &head); err != nil {
			return nil, fmt.Errorf("%v in:\n%s", err, chunk)
		}
		if head.Kind == "" {
			continue
		}
		docs = append(docs, Doc{Raw: []byte(strings.TrimSpace(chunk) + "\n"), APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name})
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].ID() < docs[j].ID() })
	return docs, nil
}
