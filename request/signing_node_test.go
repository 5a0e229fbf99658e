package request

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeSigner is the JavaScript signer the README shows, exactly.
func readmeSigner(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- sign.js: tested by request/signing_node_test.go -->\n```js\n")
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
// the server's grammar reads them back as signed: the path decodes to the
// file signed, and the gate accepts the sig.
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
	g, err := NewGate(c, 4000, newRefusals())
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"/rocket.jpg"},
		{"/rocket.jpg", "size=100", "format=webp"},
		{"/rocket.jpg", "format=webp", "size=100"},
		{"/rocket.jpg", "size=120", "resize_algorithm=thumbnail", "quality=50", "format=png", "dpr=1.5"},
		{"/rocket.jpg", "preset=phone"},
		{"/variants/astronaut-alpha.png", "format=auto", "size=64"},
		{"/photos/café au lait (1)+x.jpg", "size=90", "format=jpeg"},
		{"/rocket.jpg", "width=120", "height=60", "fit=cover", "focus=0.5,0.25", "format=webp"},
		{"/rocket.jpg", "width=300", "height=300", "fit=pad", "gravity=north", "background=ff000080", "blur=1.5"},
	} {
		// Every wait has a deadline: a hung node fails the test.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
		goURL, err := SignURL(c, "", 4000, strings.TrimSuffix(strings.TrimSuffix(unsigned, "&"), "?"))
		if err != nil || goURL != url {
			t.Errorf("%v: JavaScript %q (sig %s), Go %q %v", args, url, jsSig, goURL, err)
		}
		rawPath, rawQ := SplitTarget(url)
		rel, err := ResolvePath(rawPath, "")
		if err != nil || "/"+rel != args[0] {
			t.Errorf("%v: %s names %q (%v), not the file signed", args, url, rel, err)
			continue
		}
		if _, err := g.Request(rel, RawQuery(rawQ), ""); err != nil {
			t.Errorf("%v: the gate refuses %s: %v", args, url, err)
		}
	}
}
