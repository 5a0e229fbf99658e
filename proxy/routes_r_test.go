package proxy

import (
	"testing"

	"image-proxy/metrics"
	"image-proxy/request"
)

func rControls() request.ControlsConfig {
	return request.ControlsConfig{AllowQuality: true, SignPassthrough: true, EnableRRoutes: true}
}

// TestRRoutes: /r/{category}/{width}/{target}/{path} answers as
// /{category}/{path}?size={width}&preset={target}&format=webp, under the
// same ETag.
func TestRRoutes(t *testing.T) {
	ts := withControls(t, rControls())
	for _, c := range []struct {
		r, same string
		width   int
	}{
		{"/r/variants/200/phone/astronaut-alpha.png", "/variants/astronaut-alpha.png?size=200&preset=phone&format=webp", 200},
		{"/r/variants/150/desktop/coffee.jxl", "/variants/coffee.jxl?format=webp&size=150&quality=85", 150},
		{"/r/variants/0100/phone/coffee.jxl?size=300&format=png&preset=desktop&v=1", "/variants/coffee.jxl?format=webp&size=100&quality=75", 100},
		{"/r/variants/100/phone/coffee.jxl?dpr=2", "/variants/coffee.jxl?format=webp&size=100&quality=75&dpr=2", 200},
		{"/r/variants/4000/phone/coffee.jxl", "/variants/coffee.jxl?format=webp&size=4000&quality=75", 0},
	} {
		resp, body := ts.get(t, c.r)
		direct, _ := ts.get(t, c.same)
		if resp.StatusCode != 200 || decodeInfo(t, body).format != "webp" {
			t.Errorf("%s: status %d %.100q", c.r, resp.StatusCode, body)
			continue
		}
		if c.width > 0 && decodeInfo(t, body).width != c.width {
			t.Errorf("%s: width %d, want %d", c.r, decodeInfo(t, body).width, c.width)
		}
		if resp.Header.Get("ETag") != direct.Header.Get("ETag") {
			t.Errorf("%s: ETag %s, %s has %s", c.r, resp.Header.Get("ETag"), c.same, direct.Header.Get("ETag"))
		}
	}
	for _, w := range []string{"0", "4001", "abc", "-1", "1.5", "99999999999"} {
		expectRefusal(t, ts, "/r/variants/"+w+"/phone/coffee.jxl", 400, "the width in /r/{category}/{width}/{target}/{path} must be a whole number from 1 to 4000.", "")
	}
	expectRefusal(t, ts, "/r/variants/100/tablet/coffee.jxl", 400, "preset must be one of desktop, phone.", metrics.RefusalUnknownPreset)
	expectRefusal(t, ts, "/r/variants/100/pho.ne/coffee.jxl", 400, "preset must be a name", "")
	for _, missing := range []string{"/r/variants/100/phone", "/r/variants/100/phone/", "/r/variants/100", "/r/variants", "/r",
		"/r/variants//phone/coffee.jxl", "/r/variants/100/phone/nothing.jpg", "/r/variants/100/phone/../rocket.jpg"} {
		if resp, body := ts.get(t, missing); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404: %.100q", missing, resp.StatusCode, body)
		}
	}
	// The main form is untouched.
	if resp, _ := ts.get(t, "/rocket.jpg?size=10"); resp.StatusCode != 200 {
		t.Errorf("main form: %d", resp.StatusCode)
	}
}

// TestRRoutesOff: without IMAGE_PROXY_ENABLE_R_ROUTES an /r/ URL is a path
// like any other (404 when no such file), and the built-in presets do not
// exist.
func TestRRoutesOff(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, target := range []string{"/r/variants/200/phone/astronaut-alpha.png", "/r/variants/0/phone/astronaut-alpha.png"} {
		if resp, _ := ts.get(t, target); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", target, resp.StatusCode)
		}
	}
	expectRefusal(t, ts, "/rocket.jpg?preset=phone", 400, "defines no presets", metrics.RefusalUnknownPreset)
}

// TestRRoutesPresets: IMAGE_PROXY_PRESETS replaces a built-in of the same
// name and adds targets; signing covers the main-form equivalent.
func TestRRoutesPresets(t *testing.T) {
	c := rControls()
	c.Presets = "phone=quality:30;tv=quality:90,resize_algorithm:thumbnail"
	c.SigningKey = keyNow
	ts := withControls(t, c)
	sig := func(m string) string { return "sig=" + sigOf(keyNow, m) }
	for _, x := range []struct {
		r, same string
	}{
		{"/r/variants/100/phone/coffee.jxl?" + sig("/variants/coffee.jxl?format=webp&preset=phone&size=100"),
			"/variants/coffee.jxl?format=webp&size=100&quality=30&" + sig("/variants/coffee.jxl?format=webp&quality=30&size=100")},
		{"/r/variants/100/desktop/coffee.jxl?" + sig("/variants/coffee.jxl?format=webp&preset=desktop&size=100"),
			"/variants/coffee.jxl?format=webp&size=100&quality=85&" + sig("/variants/coffee.jxl?format=webp&quality=85&size=100")},
		{"/r/variants/100/tv/coffee.jxl?" + sig("/variants/coffee.jxl?format=webp&preset=tv&size=100"),
			"/variants/coffee.jxl?format=webp&size=100&preset=tv&" + sig("/variants/coffee.jxl?format=webp&preset=tv&size=100")},
	} {
		resp, body := ts.get(t, x.r)
		direct, dbody := ts.get(t, x.same)
		if resp.StatusCode != 200 || direct.StatusCode != 200 || resp.Header.Get("ETag") != direct.Header.Get("ETag") {
			t.Errorf("%s: %d %s, %s: %d %s; %.80q %.80q", x.r, resp.StatusCode, resp.Header.Get("ETag"), x.same, direct.StatusCode,
				direct.Header.Get("ETag"), body, dbody)
		}
	}
	expectRefusal(t, ts, "/r/variants/100/phone/coffee.jxl", 403, "needs a signature", metrics.RefusalSignatureMissing)
	expectRefusal(t, ts, "/r/variants/101/phone/coffee.jxl?"+sig("/variants/coffee.jxl?format=webp&preset=phone&size=100"),
		403, "does not match", metrics.RefusalSignatureInvalid)
	signed, err := request.SignURL(c, "", 4000, "/r/variants/100/phone/coffee.jxl?v=2")
	if want := "/r/variants/100/phone/coffee.jxl?v=2&sig=" + sigOf(keyNow, "/variants/coffee.jxl?format=webp&preset=phone&size=100"); err != nil || signed != want {
		t.Errorf("SignURL: %q %v, want %q", signed, err, want)
	}
}
