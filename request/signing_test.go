package request

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	keyNow  = "current-key-0123456789abcdef0123456789"
	keyPrev = "previous-key-0123456789abcdef012345678"
)

// sigOf is the documented algorithm written out here, independently of
// signing.go: base64url without padding of HMAC-SHA256(key, message).
func sigOf(key, message string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(message))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func signingControls() ControlsConfig {
	return ControlsConfig{AllowQuality: true, SignPassthrough: true, SigningKey: keyNow, SigningKeyPrevious: keyPrev,
		Presets: "phone=size:100,quality:60;desktop=size:300"}
}

// TestSignURL: the sig appended covers the decoded path below the strip
// prefix and the canonical parameters; an /r/ URL is signed as its main
// form; a stale sig is replaced and every other parameter kept as given.
// Bad input is refused with a message that says why.
func TestSignURL(t *testing.T) {
	c := signingControls()
	r := c
	r.EnableRRoutes = true
	for _, x := range []struct {
		c                   ControlsConfig
		strip, target, want string
	}{
		{c, "", "/a.jpg?size=400&format=WEBP", "/a.jpg?size=400&format=WEBP&sig=" + sigOf(keyNow, "/a.jpg?format=webp&size=400")},
		{c, "/static/image", "/static/image/a%20b.jpg?v=1&sig=old&%73ig=older", "/static/image/a%20b.jpg?v=1&sig=" + sigOf(keyNow, "/a b.jpg?")},
		{c, "static/image/", "/a.jpg?dpr=2.0&&size=1", "/a.jpg?dpr=2.0&size=1&sig=" + sigOf(keyNow, "/a.jpg?dpr=2&size=1")},
		{r, "", "/r/cat/100/phone/x.jpg?quality=5", "/r/cat/100/phone/x.jpg?quality=5&sig=" +
			sigOf(keyNow, "/cat/x.jpg?format=webp&preset=phone&quality=5&size=100")},
	} {
		got, err := SignURL(x.c, x.strip, 4000, x.target)
		if err != nil || got != x.want {
			t.Errorf("%s: %q %v, want %q", x.target, got, err, x.want)
		}
	}
	for _, x := range []struct {
		c            ControlsConfig
		target, says string
	}{
		{ControlsConfig{}, "/a.jpg", "IMAGE_PROXY_SIGNING_KEY is not set"},
		{c, "a.jpg?size=1", "give the URL's path and query, starting with /"},
		{c, "/../a.jpg", "the path /../a.jpg is not one this server serves (path refused)"},
		{c, "/a%zz.jpg", "(malformed percent-encoding)"},
		{c, "/a.jpg?size=4001", "size must be a whole number from 1 to 4000."},
		{r, "/r/cat/0/phone/x.jpg", "the width in /r/{category}/{width}/{target}/{path} must be"},
		{r, "/r/cat/1/phone", "path refused"},
	} {
		if got, err := SignURL(x.c, "", 4000, x.target); err == nil || !strings.Contains(err.Error(), x.says) {
			t.Errorf("%s: %q %v, want an error saying %q", x.target, got, err, x.says)
		}
	}
}

// FuzzVerifySignature: a signature check accepts exactly the sig the
// documented algorithm gives the path and the canonical parameters, under
// either key, and never panics.
func FuzzVerifySignature(f *testing.F) {
	f.Add("rocket.jpg", "size=100&format=webp", "")
	f.Add("a/b c.jpg", "preset=phone&v=2", sigOf(keyNow, "/a/b c.jpg?preset=phone"))
	f.Add("x.png", "dpr=2", sigOf(keyPrev, "/x.png?dpr=2"))
	f.Add("x.png", "", sigOf(keyNow, "/x.png?")+"=")
	g := &Gate{maxBox: 4000, keys: [][]byte{[]byte(keyNow), []byte(keyPrev)}, signPassthrough: true}
	f.Fuzz(func(t *testing.T, rel, query, sig string) {
		if !utf8.ValidString(query) {
			return
		}
		r, err := Parse(values(query), "", 4000)
		if err != nil {
			return
		}
		q := values(query)
		if sig != "" {
			q = values(query + "&sig=" + sig)
		}
		err = g.verify(rel, r, q)
		message := "/" + rel + "?" + r.Canonical()
		good := len(q.Values("sig")) == 1 && (q.Values("sig")[0] == sigOf(keyNow, message) || q.Values("sig")[0] == sigOf(keyPrev, message))
		if (err == nil) != good {
			t.Fatalf("rel %q query %q sig %q: verify says %v, the algorithm says valid=%v", rel, query, sig, err, good)
		}
		if !good {
			if err := g.verify(rel, r, values(query+"&sig="+sigOf(keyNow, message))); err != nil && len(values(query).Values("sig")) == 0 {
				t.Fatalf("rel %q query %q: the correct sig is refused: %v", rel, query, err)
			}
		}
	})
}
