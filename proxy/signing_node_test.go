package proxy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeSigner is the JavaScript signer the README shows, exactly.
func readmeSigner(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- sign.js: tested by proxy/signing_node_test.go -->\n```js\n")
	code, _, closed := strings.Cut(rest, "\n```\n")
	if !ok || !closed {
		t.Fatal("README has no sign.js block after its marker")
	}
	if n := strings.Count(code, "\n") + 1; n > 10 {
		t.Errorf("the README's example has %d lines, more than the 10 promised", n)
	}
	return code
}

// TestReadmeJavaScriptSigner runs the README's JavaScript signer with node
// and checks that its URLs carry the sig the Go signer gives them, and that
// the server serves them.
func TestReadmeJavaScriptSigner(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to test the README's signing example: `make test` installs the nodejs package")
	}
	script := filepath.Join(t.TempDir(), "sign.js")
	if err := os.WriteFile(script, []byte(readmeSigner(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := signingControls()
	ts := withControls(t, c)
	photos := filepath.Join(ts.root, "photos")
	must(t, os.MkdirAll(photos, 0o755))
	rocket, err := os.ReadFile(filepath.Join(ts.root, "rocket.jpg"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(photos, "café au lait (1)+x.jpg"), rocket, 0o644))
	cfg := Config{MaxBox: 4000, Controls: c}
	for _, args := range [][]string{
		{"/rocket.jpg"},
		{"/rocket.jpg", "size=100", "format=webp"},
		{"/rocket.jpg", "format=webp", "size=100"},
		{"/rocket.jpg", "size=120", "resize_algorithm=thumbnail", "quality=50", "format=png", "dpr=1.5"},
		{"/rocket.jpg", "preset=phone"},
		{"/variants/astronaut-alpha.png", "format=auto", "size=64"},
		{"/photos/café au lait (1)+x.jpg", "size=90", "format=jpeg"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		out, err := exec.CommandContext(ctx, node, append([]string{script, keyNow}, args...)...).Output()
		cancel()
		if err != nil {
			t.Fatalf("node %v: %v", args, err)
		}
		url := strings.TrimSpace(string(out))
		unsigned, jsSig, ok := strings.Cut(url, "sig=")
		if !ok {
			t.Fatalf("node %v printed %q", args, url)
		}
		goURL, err := SignURL(cfg, strings.TrimSuffix(strings.TrimSuffix(unsigned, "&"), "?"))
		if err != nil || goURL != url {
			t.Errorf("%v: JavaScript %q (sig %s), Go %q %v", args, url, jsSig, goURL, err)
		}
		if resp, body := ts.get(t, url); resp.StatusCode != 200 {
			t.Errorf("%v: %s answers %d: %.100q", args, url, resp.StatusCode, body)
		}
	}
}
