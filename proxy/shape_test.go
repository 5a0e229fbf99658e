package proxy

import (
	"bytes"
	"image"
	_ "image/jpeg"
	"net/http"
	"strings"
	"testing"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/request"
	"image-proxy/transform"
)

// TestShapeGET: width, height, fit, gravity, focus, background and blur
// through GET and HEAD, each output decoded. rocket.jpg is 640×427.
func TestShapeGET(t *testing.T) {
	ts := newTestServer(t, nil)
	cases := []struct {
		target        string
		format        string
		width, height int
	}{
		// Served as the original before the shape parameters existed.
		{"/rocket.jpg?width=100", "jpeg", 100, 67},
		{"/rocket.jpg?height=100", "jpeg", 150, 100},
		{"/rocket.jpg?width=200&height=200&fit=contain", "jpeg", 200, 133},
		{"/rocket.jpg?width=200&height=200&fit=cover", "jpeg", 200, 200},
		{"/rocket.jpg?width=200&height=200&fit=cover&gravity=smart&format=webp", "webp", 200, 200},
		{"/rocket.jpg?width=200&height=200&fit=cover&gravity=entropy", "jpeg", 200, 200},
		{"/rocket.jpg?width=200&height=200&fit=cover&focus=0.3,0.6&format=png", "png", 200, 200},
		{"/rocket.jpg?width=300&height=100&fit=fill", "jpeg", 300, 100},
		{"/rocket.jpg?width=300&height=300&fit=pad&background=ff000080&format=png", "png", 300, 300},
		{"/rocket.jpg?width=300&height=300&fit=pad&gravity=north&background=00ff00", "jpeg", 300, 300},
		{"/rocket.jpg?width=1000&height=500&fit=cover", "jpeg", 640, 320},       // never enlarged: the box scaled down
		{"/rocket.jpg?width=300&height=150&fit=cover&dpr=2", "jpeg", 600, 300},  // dpr: both sides
		{"/rocket.jpg?width=300&height=150&fit=cover", "jpeg", 300, 150},        // the same, no hint
		{"/rocket.jpg?width=3000&height=3000&fit=fill&dpr=2", "jpeg", 427, 427}, // capped, then never enlarged
		{"/rocket.jpg?width=100&blur=2", "jpeg", 100, 67},
		{"/rocket-exif-orientation-6.jpg?width=100&height=50&fit=cover&gravity=north", "jpeg", 100, 50},
		{"/astronaut-animated.gif?width=50&height=40&fit=cover&gravity=smart", "gif", 50, 40},
		{"/astronaut-animated.gif?width=60&height=60&fit=pad&format=webp", "webp", 60, 60},
	}
	etags := map[string]string{}
	for _, c := range cases {
		resp, body := ts.get(t, c.target)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d: %s", c.target, resp.StatusCode, body)
			continue
		}
		info := decodeInfo(t, body)
		if info.format != c.format || info.width != c.width || info.height != c.height {
			t.Errorf("%s: %s %d×%d, want %s %d×%d", c.target, info.format, info.width, info.height, c.format, c.width, c.height)
		}
		etag := resp.Header.Get("ETag")
		if prev, dup := etags[etag]; dup {
			t.Errorf("%s and %s share the ETag %s", c.target, prev, etag)
		}
		etags[etag] = c.target
		if vary := resp.Header.Get("Vary"); vary != "Sec-CH-DPR" && !strings.Contains(c.target, "dpr=") {
			t.Errorf("%s: Vary %q, want Sec-CH-DPR (the box follows the hint)", c.target, vary)
		}
		head, hb := ts.do(t, http.MethodHead, c.target)
		if head.StatusCode != 200 || head.Header.Get("ETag") != etag || len(hb) != 0 {
			t.Errorf("HEAD %s: %d, ETag %q (GET %q), %d bytes", c.target, head.StatusCode, head.Header.Get("ETag"), etag, len(hb))
		}
	}
	// The pad's background: a JPEG's canvas is the colour, alpha dropped.
	_, body := ts.get(t, "/rocket.jpg?width=300&height=300&fit=pad&gravity=north&background=00ff00")
	im, _, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b, _ := im.At(150, 290).RGBA(); r>>8 > 40 || g>>8 < 215 || b>>8 > 40 {
		t.Errorf("pad background at the bottom is %d,%d,%d, want green", r>>8, g>>8, b>>8)
	}
}

// TestShapeErrors: every bad shape parameter, and every rule between
// them, is a 400 naming the parameter, counted under no refusal reason.
func TestShapeErrors(t *testing.T) {
	ts := newTestServer(t, nil)
	for target, says := range map[string]string{
		"/rocket.jpg?width=0":                                           "width must be a whole number from 1 to 4000.",
		"/rocket.jpg?height=x":                                          "height must be a whole number from 1 to 4000.",
		"/rocket.jpg?size=100&width=100":                                "size and width/height cannot be combined",
		"/rocket.jpg?fit=cover&width=100":                               "fit=cover needs both width and height.",
		"/rocket.jpg?fit=stretch":                                       "fit must be one of contain, cover, fill or pad.",
		"/rocket.jpg?fit=cover&width=1&height=1&gravity=top":            "gravity must be one of",
		"/rocket.jpg?width=1&height=1&gravity=north":                    "gravity needs fit=cover or fit=pad.",
		"/rocket.jpg?fit=pad&width=1&height=1&gravity=smart":            "gravity=smart needs fit=cover",
		"/rocket.jpg?fit=cover&width=1&height=1&focus=2,0":              "focus must be X,Y",
		"/rocket.jpg?fit=cover&width=1&height=1&focus=0,0&gravity=east": "focus and gravity cannot be combined",
		"/rocket.jpg?width=1&focus=0.5,0.5":                             "focus needs fit=cover.",
		"/rocket.jpg?background=red":                                    "background must be a hex colour",
		"/rocket.jpg?blur=0":                                            "blur must be a number from 0.3 to 100.",
		"/rocket.jpg?blur=1&blur=2":                                     "blur must be given only once.",
	} {
		expectRefusal(t, ts, target, 400, says, "")
	}
}

// TestShapeSigned: the signature covers every shape parameter in its one
// spelling; changing any of them is refused.
func TestShapeSigned(t *testing.T) {
	ts := withControls(t, signingControls())
	const message = "/rocket.jpg?background=ff0000&blur=1.5&fit=pad&format=webp&gravity=north&height=100&width=200"
	sig := "&sig=" + sigOf(keyNow, message)
	good := "/rocket.jpg?width=200&height=100&fit=PAD&gravity=North&background=FF0000FF&blur=1.50&format=webp" + sig
	if resp, body := ts.get(t, good); resp.StatusCode != 200 || decodeInfo(t, body).width != 200 {
		t.Fatalf("%s: status %d: %s", good, resp.StatusCode, body)
	}
	for _, target := range []string{
		"/rocket.jpg?width=201&height=100&fit=pad&gravity=north&background=ff0000&blur=1.5&format=webp" + sig,
		"/rocket.jpg?width=200&height=101&fit=pad&gravity=north&background=ff0000&blur=1.5&format=webp" + sig,
		"/rocket.jpg?width=200&height=100&fit=cover&gravity=north&background=ff0000&blur=1.5&format=webp" + sig,
		"/rocket.jpg?width=200&height=100&fit=pad&gravity=south&background=ff0000&blur=1.5&format=webp" + sig,
		"/rocket.jpg?width=200&height=100&fit=pad&gravity=north&background=ff0001&blur=1.5&format=webp" + sig,
		"/rocket.jpg?width=200&height=100&fit=pad&gravity=north&background=ff0000&blur=1.6&format=webp" + sig,
		"/rocket.jpg?width=200&height=100&fit=pad&background=ff0000&blur=1.5&format=webp" + sig,
	} {
		expectRefusal(t, ts, target, 403, "does not match", metrics.RefusalSignatureInvalid)
	}
	const focused = "/rocket.jpg?fit=cover&focus=0.25,0.75&height=100&width=100"
	fsig := "&sig=" + sigOf(keyNow, focused)
	if resp, _ := ts.get(t, "/rocket.jpg?width=100&height=100&fit=cover&focus=.25,0.750"+fsig); resp.StatusCode != 200 {
		t.Errorf("signed focus: status %d", resp.StatusCode)
	}
	expectRefusal(t, ts, "/rocket.jpg?width=100&height=100&fit=cover&focus=0.25,0.76"+fsig, 403, "does not match", metrics.RefusalSignatureInvalid)
	// SignURL signs the same message.
	signed, err := request.SignURL(signingControls(), "", 4000, "/rocket.jpg?width=100&height=100&fit=cover&focus=0.25,0.75")
	if err != nil || !strings.HasSuffix(signed, fsig) {
		t.Errorf("SignURL: %s %v, want the sig %s", signed, err, fsig)
	}
}

// TestShapePresets: a preset fixes a shape (focus's X,Y included), and a
// request cannot change what it fixes: its answer is the preset's, byte
// for byte; what the preset leaves open the URL may give.
func TestShapePresets(t *testing.T) {
	ts := withControls(t, request.ControlsConfig{AllowQuality: true, SignPassthrough: true,
		Presets: "card=width:320,height:180,fit:cover,focus:0.5,0.3,format:webp;avatar=width:96,height:96,fit:cover"})
	base, want := ts.get(t, "/rocket.jpg?preset=card")
	if info := decodeInfo(t, want); base.StatusCode != 200 || info.width != 320 || info.height != 180 {
		t.Fatalf("preset=card: %d %+v", base.StatusCode, info)
	}
	for _, target := range []string{"/rocket.jpg?preset=card&width=10", "/rocket.jpg?preset=card&fit=fill&height=5",
		"/rocket.jpg?preset=card&focus=0.9,0.9"} {
		resp, body := ts.get(t, target)
		if resp.StatusCode != 200 || resp.Header.Get("ETag") != base.Header.Get("ETag") || !bytes.Equal(body, want) {
			t.Errorf("%s escapes the preset: %d %s", target, resp.StatusCode, resp.Header.Get("ETag"))
		}
	}
	expectRefusal(t, ts, "/rocket.jpg?preset=card&gravity=north", 400, "focus and gravity cannot be combined", "")
	resp, body := ts.get(t, "/rocket.jpg?preset=avatar&gravity=smart&format=png")
	if info := decodeInfo(t, body); resp.StatusCode != 200 || info.width != 96 || info.height != 96 || info.format != "png" {
		t.Errorf("avatar with gravity: %d %+v", resp.StatusCode, info)
	}
}

// TestShapeAllowedSizes: each given side must be allowed; snapping scales
// the box by one factor.
func TestShapeAllowedSizes(t *testing.T) {
	c := request.ControlsConfig{AllowQuality: true, SignPassthrough: true, AllowedSizes: "100,200"}
	exact := withControls(t, c)
	expectRefusal(t, exact, "/rocket.jpg?width=150&height=100&fit=cover", 400, "width and height × dpr must each come to one of 100, 200 pixels",
		metrics.RefusalSizeNotAllowed)
	if resp, body := exact.get(t, "/rocket.jpg?width=200&height=100&fit=cover"); resp.StatusCode != 200 || decodeInfo(t, body).width != 200 {
		t.Errorf("allowed sides: %d", resp.StatusCode)
	}
	c.SnapSizes = true
	snap := withControls(t, c)
	resp, body := snap.get(t, "/rocket.jpg?width=150&height=75&fit=cover")
	if info := decodeInfo(t, body); resp.StatusCode != 200 || info.width != 200 || info.height != 100 {
		t.Errorf("snapped: %d %d×%d, want 200×100", resp.StatusCode, info.width, info.height)
	}
}

// TestShapeBulk: a bulk item takes the shape fields; its part is the GET's.
func TestShapeBulk(t *testing.T) {
	ts := newTestServer(t, nil)
	resp, body := ts.post(t, "/bulk", []byte(`[{"path":"rocket.jpg","width":200,"height":"100","fit":"cover","gravity":"smart","format":"webp"},
		{"path":"rocket.jpg","width":120,"height":120,"fit":"cover","focus":"0.2,0.8","blur":1,"background":"ffffff"}]`), "Content-Type", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	parts := readBulkParts(t, resp.Header.Get("Content-Type"), bytes.NewReader(body))
	checkBulkPart(t, 0, parts[0], 200, "webp", 200, 100)
	checkBulkPart(t, 1, parts[1], 200, "jpeg", 120, 120)
	get, getBody := ts.get(t, "/rocket.jpg?width=200&height=100&fit=cover&gravity=smart&format=webp")
	if get.Header.Get("ETag") != parts[0].get("ETag") || !bytes.Equal(getBody, parts[0].body) {
		t.Error("the bulk part and the GET differ")
	}
	resp, body = ts.post(t, "/bulk", []byte(`[{"path":"rocket.jpg","fit":"cover","width":10}]`), "Content-Type", "application/json")
	if resp.StatusCode != 400 || errorMessage(t, body) != "item 0: fit=cover needs both width and height." {
		t.Errorf("a bad item: %d %s", resp.StatusCode, body)
	}
}

// TestShapeConvert: POST /convert takes fit, gravity, focus, background
// and blur beside width and height, with the query's rules.
func TestShapeConvert(t *testing.T) {
	ts := newTestServer(t, func(c *Config, cc *cache.Config, tc *transform.Config) { withConvert(c, cc, tc) })
	rocket := readData(t, "rocket.jpg")
	for _, c := range []struct {
		fields []formPart
		w, h   int
	}{
		{[]formPart{{name: "width", value: "200"}, {name: "height", value: "200"}, {name: "fit", value: "cover"}, {name: "gravity", value: "smart"}}, 200, 200},
		{[]formPart{{name: "width", value: "200"}, {name: "height", value: "100"}, {name: "fit", value: "cover"}, {name: "focus", value: "0.9,0.1"}}, 200, 100},
		{[]formPart{{name: "width", value: "300"}, {name: "height", value: "300"}, {name: "fit", value: "pad"}, {name: "background", value: "00000000"}}, 300, 300},
		{[]formPart{{name: "width", value: "300"}, {name: "height", value: "50"}, {name: "fit", value: "fill"}, {name: "blur", value: "3"}}, 300, 50},
		{[]formPart{{name: "width", value: "160"}}, 160, 107},
	} {
		resp, body := ts.convert(t, append(c.fields, formPart{name: "file", file: rocket})...)
		if info := decodeInfo(t, body); resp.StatusCode != 200 || info.width != c.w || info.height != c.h {
			t.Errorf("%v: %d %+v, want %d×%d", c.fields, resp.StatusCode, info, c.w, c.h)
		}
	}
	for says, fields := range map[string][]formPart{
		"fit=cover needs both width and height.": {{name: "width", value: "200"}, {name: "fit", value: "cover"}},
		"fit must be one of":                     {{name: "fit", value: "crop"}},
		"focus must be X,Y":                      {{name: "focus", value: "1"}},
		"gravity needs fit=cover or fit=pad.":    {{name: "gravity", value: "north"}},
		"blur must be a number":                  {{name: "blur", value: "1000"}},
		"background must be a hex colour":        {{name: "background", value: "#fff"}},
	} {
		resp, body := ts.convert(t, append(fields, formPart{name: "file", file: rocket})...)
		if resp.StatusCode != 400 || !strings.Contains(errorMessage(t, body), says) {
			t.Errorf("%v: %d %s, want 400 saying %q", fields, resp.StatusCode, body, says)
		}
	}
}

// TestShapeOptions: every shape field of a variant reaches the engine's
// options (live and warm renders both go through options), and the shape
// is a suffix of the key, after today's fields, with the real encoder
// fingerprints.
func TestShapeOptions(t *testing.T) {
	v := request.Variant{Source: "s", Output: request.Output{Format: transform.FormatWebP}, Width: 120, Height: 80,
		Fit: transform.FitCover, Gravity: transform.GravitySmart, Background: transform.Background{RGBA: [4]uint8{1, 2, 3, 4}, Set: true}, Blur: 2}
	v.Encoder = request.NewEncoders(transform.DefaultConfig().Fingerprints()).Of(v.Output, v.Accept)
	want := transform.Options{Format: transform.FormatWebP, Width: 120, Height: 80, Fit: transform.FitCover,
		Gravity: transform.GravitySmart, Background: v.Background, Blur: 2}
	if got := options(v, transform.FormatJPEG); got != want {
		t.Errorf("options: %+v, want %+v", got, want)
	}
	v.Gravity, v.Focus = 0, transform.Focus{X: 0.5, Y: 0.25, Set: true}
	if got := options(v, transform.FormatJPEG).Focus; got != v.Focus {
		t.Errorf("focus: %+v", got)
	}
	if got, w := v.Key(), "v1|s|0|webp|auto|w80.4.v2|w120|h80|fcover|p0.5,0.25|bg01020304|blur2"; got != w {
		t.Errorf("Key() = %q, want %q", got, w)
	}
}
