package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "0123456789abcdef0123456789abcdef-test-key"

// hmacSig is the documented algorithm, written out independently of the
// proxy package.
func hmacSig(key, message string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(message))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func TestSignCommand(t *testing.T) {
	root, _ := filepath.Abs("data/images")
	env := []string{"IMAGE_PROXY_ROOT_PATH=" + root, "IMAGE_PROXY_SIGNING_KEY=" + testKey, "IMAGE_PROXY_STRIP_PATH=/static/image"}
	cases := []struct{ url, want string }{
		{"/photos/cat.jpg?size=400&format=webp",
			"/photos/cat.jpg?size=400&format=webp&sig=" + hmacSig(testKey, "/photos/cat.jpg?format=webp&size=400")},
		// The strip prefix is not signed; the stale sig is replaced.
		{"/static/image/photos/cat.jpg?format=WEBP&v=3&size=0400&sig=old",
			"/static/image/photos/cat.jpg?format=WEBP&v=3&size=0400&sig=" + hmacSig(testKey, "/photos/cat.jpg?format=webp&size=400")},
		{"/a%20b.jpg", "/a%20b.jpg?sig=" + hmacSig(testKey, "/a b.jpg?")},
	}
	for _, c := range cases {
		out, err := command(t.TempDir(), env, "sign", c.url).CombinedOutput()
		if err != nil || string(out) != c.want+"\n" {
			t.Errorf("sign %q: %v %q, want %q", c.url, err, out, c.want)
		}
	}
	for _, bad := range []struct {
		env  []string
		args []string
		says string
	}{
		{env, []string{"sign"}, "usage"},
		{env, []string{"sign", "/a.jpg?size=0"}, "size must be"},
		{env, []string{"sign", "/../a.jpg"}, "not one this server serves"},
		{env, []string{"sign", "a.jpg"}, "starting with /"},
		{[]string{"IMAGE_PROXY_ROOT_PATH=" + root}, []string{"sign", "/a.jpg"}, "IMAGE_PROXY_SIGNING_KEY is not set"},
	} {
		out, err := command(t.TempDir(), bad.env, bad.args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), bad.says) {
			t.Errorf("%v: %v %q, want exit 2 saying %q", bad.args, err, out, bad.says)
		}
	}
}

// TestSignedURLsServed: what `image-proxy sign` prints, the server serves;
// the same URL unsigned or with another key's sig is refused.
func TestSignedURLsServed(t *testing.T) {
	env := []string{"IMAGE_PROXY_SIGNING_KEY=" + testKey}
	p := startBinary(t, t.TempDir(), env...)
	signed, err := command(t.TempDir(), append(env, "IMAGE_PROXY_ROOT_PATH=."), "sign", "/rocket.jpg?size=64&format=webp").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		target string
		status int
	}{
		{strings.TrimSpace(string(signed)), 200},
		{"/rocket.jpg?size=64&format=webp", 403},
		{"/rocket.jpg?size=64&format=webp&sig=" + hmacSig(testKey+"x", "/rocket.jpg?format=webp&size=64"), 403},
		{"/rocket.jpg", 403},
	} {
		resp, err := http.Get(p.base + c.target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.target, resp.StatusCode, c.status)
		}
	}
}

// TestSigningKeySettingsExit2 checks the key rules without the key ever
// appearing in the output.
func TestSigningKeySettingsExit2(t *testing.T) {
	root, _ := filepath.Abs("data/images")
	for _, c := range []struct{ env, name, secret string }{
		{"IMAGE_PROXY_SIGNING_KEY=short-secret", "IMAGE_PROXY_SIGNING_KEY", "short-secret"},
		{"IMAGE_PROXY_SIGNING_KEY_PREVIOUS=" + testKey, "IMAGE_PROXY_SIGNING_KEY_PREVIOUS", testKey},
	} {
		out, err := command(t.TempDir(), []string{"IMAGE_PROXY_ROOT_PATH=" + root, c.env}, "sign", "/a.jpg").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.name) || strings.Contains(string(out), c.secret) {
			t.Errorf("%s: %v %q, want exit 2 naming %s without the key", c.env, err, out, c.name)
		}
	}
}
