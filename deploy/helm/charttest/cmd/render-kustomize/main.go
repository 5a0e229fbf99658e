// Command render-kustomize writes deploy/kustomize from the chart (make
// kustomize); TestKustomizeMatchesChart checks the committed tree.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"image-proxy/deploy/helm/charttest/render"
)

func main() {
	dir := filepath.Join(render.Root(), "deploy", "kustomize")
	if err := render.Kustomize(dir); err != nil {
		fmt.Fprintln(os.Stderr, "render-kustomize:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", dir)
}
