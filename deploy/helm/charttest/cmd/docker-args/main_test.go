package main

import (
	"slices"
	"strings"
	"testing"
)

// The flags make-image-check runs the image with are the chart's promises.
func TestDockerArgs(t *testing.T) {
	args, err := dockerArgs("v")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--user=10001:10001", "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
		"--mount=type=volume,src=v,dst=/app/cache", "--env=MALLOC_ARENA_MAX=2", "--env=IMAGE_PROXY_ENABLE_DISK_CACHE=true"} {
		if !slices.Contains(args, want) {
			t.Errorf("docker run flags %v lack %s", args, want)
		}
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--tmpfs=/tmp:") }) {
		t.Errorf("docker run flags %v: no tmpfs on /tmp", args)
	}
}
