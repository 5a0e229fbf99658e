package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/request"
	"image-proxy/transform"
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

func signingControls() request.ControlsConfig {
	return request.ControlsConfig{AllowQuality: true, SignPassthrough: true, SigningKey: keyNow, SigningKeyPrevious: keyPrev,
		Presets: "phone=size:100,quality:60;desktop=size:300"}
}

// TestSignedURLs: the signature covers the path and every output parameter;
// reordering, respelling and cache-busters keep it valid.
func TestSignedURLs(t *testing.T) {
	ts := withControls(t, signingControls())
	const message = "/rocket.jpg?dpr=2&format=webp&quality=50&resize_algorithm=thumbnail&size=100"
	sig := "&sig=" + sigOf(keyNow, message)
	valid := []string{
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?resize_algorithm=thumbnail&quality=50&dpr=2&format=webp&size=100" + sig,
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail&v=3&utm_source=x" + sig,
		"/rocket.jpg?" + strings.TrimPrefix(sig, "&") + "&size=0100&format=WEBP&dpr=2.0&quality=050&resize_algorithm=THUMBNAIL",
		"/rock%65t.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail" + sig, // the decoded path is signed
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail&sig=" + sigOf(keyPrev, message),
	}
	for _, target := range valid {
		if resp, body := ts.get(t, target); resp.StatusCode != 200 || decodeInfo(t, body).width != 200 {
			t.Errorf("%s: status %d, want 200: %s", target, resp.StatusCode, body)
		}
	}
	tampered := []string{
		"/rocket-cmyk.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=101&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=100&format=png&dpr=2&quality=50&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=100&format=auto&dpr=2&quality=50&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=100&format=webp&dpr=3&quality=50&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=100&format=webp&quality=50&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=51&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=100&format=webp&dpr=2&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=lanczos3" + sig,
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50" + sig,
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail&preset=phone" + sig,
		"/rocket.jpg?format=webp&dpr=2&quality=50&resize_algorithm=thumbnail" + sig,
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail&sig=" + sigOf("unknown-key-0123456789abcdef0123456", message),
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail" + sig + "=",        // padding is not base64url without padding
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail" + sig[:len(sig)-1], // one character short
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail" + sig + sig,        // twice
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail&sig=" +
			base64.StdEncoding.EncodeToString([]byte(sigOf(keyNow, message))), // not even the right alphabet
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail&sig=" + sigOf(keyNow, strings.Replace(message, "?", "", 1)),
		"/rocket.jpg?size=100&format=webp&dpr=2&quality=50&resize_algorithm=thumbnail&sig=" + sigOf(keyNow, "rocket.jpg?"+strings.SplitN(message, "?", 2)[1]),
	}
	for _, target := range tampered {
		expectRefusal(t, ts, target, 403, "The signature (sig) does not match this URL.", metrics.RefusalSignatureInvalid)
	}
	for _, target := range []string{"/rocket.jpg?size=100", "/rocket.jpg?size=100&sig=", "/rocket.jpg", "/rocket.jpg?preset=phone"} {
		expectRefusal(t, ts, target, 403, "This URL needs a signature (sig).", metrics.RefusalSignatureMissing)
	}
	// A bad signature is refused before the preset is even looked up.
	expectRefusal(t, ts, "/rocket.jpg?preset=nope&sig="+sigOf(keyNow, "/rocket.jpg?preset=other"), 403, "does not match", metrics.RefusalSignatureInvalid)
	expectRefusal(t, ts, "/rocket.jpg?preset=nope&sig="+sigOf(keyNow, "/rocket.jpg?preset=nope"), 400, "preset must be one of desktop, phone.", metrics.RefusalUnknownPreset)
}

// TestSignedPresetAndPassthrough: presets and passthroughs sign the same
// way; IMAGE_PROXY_SIGN_PASSTHROUGH=false exempts plain passthroughs only.
func TestSignedPresetAndPassthrough(t *testing.T) {
	ts := withControls(t, signingControls())
	for _, c := range []struct {
		target string
		status int
	}{
		{"/rocket.jpg?preset=phone&sig=" + sigOf(keyNow, "/rocket.jpg?preset=phone"), 200},
		{"/rocket.jpg?preset=desktop&sig=" + sigOf(keyNow, "/rocket.jpg?preset=phone"), 403},
		{"/rocket.jpg?sig=" + sigOf(keyNow, "/rocket.jpg?"), 200},
		{"/rocket.jpg?v=2&sig=" + sigOf(keyPrev, "/rocket.jpg?"), 200},
		{"/rocket.jpg?sig=" + sigOf(keyNow, "/rocket.jpg"), 403},
		{"/variants/badge.svg?sig=" + sigOf(keyNow, "/rocket.jpg?"), 403},
		{"/rocket.jpg?dpr=2&sig=" + sigOf(keyNow, "/rocket.jpg?"), 403}, // dpr alone is signed too
	} {
		if resp, body := ts.get(t, c.target); resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d: %s", c.target, resp.StatusCode, c.status, body)
		}
	}
	c := signingControls()
	c.SignPassthrough = false
	open := withControls(t, c)
	for _, target := range []string{"/rocket.jpg", "/rocket.jpg?v=1", "/rocket.jpg?dpr=2&resize_algorithm=thumbnail", "/rocket.jpg?sig=garbage"} {
		if resp, body := open.get(t, target); resp.StatusCode != 200 {
			t.Errorf("passthrough exempt: %s: %d %s", target, resp.StatusCode, body)
		}
	}
	for _, target := range []string{"/rocket.jpg?size=10", "/rocket.jpg?format=png", "/rocket.jpg?quality=5", "/rocket.jpg?preset=phone"} {
		expectRefusal(t, open, target, 403, "needs a signature", metrics.RefusalSignatureMissing)
	}
}

// TestSignatureBehindStripPrefix: the path below the root is signed, so
// the same sig works with IMAGE_PROXY_STRIP_PATH, behind Traefik's
// StripPrefix (which leaves /rocket.jpg) and directly.
func TestSignatureBehindStripPrefix(t *testing.T) {
	c := signingControls()
	ts := newTestServer(t, func(cfg *Config, _ *cache.Config, _ *transform.Config) {
		cfg.Controls, cfg.StripPath = c, "/static/image"
	})
	sig := "&sig=" + sigOf(keyNow, "/rocket.jpg?size=50")
	for _, target := range []string{"/static/image/rocket.jpg?size=50" + sig, "/rocket.jpg?size=50" + sig} {
		if resp, body := ts.get(t, target); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", target, resp.StatusCode, body)
		}
	}
	for _, prefix := range []string{"/static/image", ""} {
		signed, err := request.SignURL(c, "/static/image", 4000, prefix+"/rocket.jpg?size=50&v=1&sig=old")
		if want := prefix + "/rocket.jpg?size=50&v=1" + sig; err != nil || signed != want {
			t.Errorf("SignURL: %q %v, want %q", signed, err, want)
		}
	}
}
