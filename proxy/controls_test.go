package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/cache"
	"image-proxy/metrics"
	"image-proxy/request"
	"image-proxy/transform"
)

// withControls is a test server with the given controls.
func withControls(t *testing.T, c request.ControlsConfig) *testServer {
	t.Helper()
	return newTestServer(t, func(cfg *Config, _ *cache.Config, _ *transform.Config) { cfg.Controls = c })
}

func refusals(ts *testServer, reason string) float64 {
	return testutil.ToFloat64(ts.m.Refusals.WithLabelValues(reason))
}

// expectRefusal checks a 400/403 JSON answer whose message contains says,
// counted under reason ("" for a plain parameter error, counted nowhere).
func expectRefusal(t *testing.T, ts *testServer, target string, status int, says, reason string, headers ...string) {
	t.Helper()
	before := map[string]float64{}
	for _, r := range metrics.RefusalReasons {
		before[r] = refusals(ts, r)
	}
	resp, body := ts.get(t, target, headers...)
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d: %.200q", target, resp.StatusCode, status, body)
		return
	}
	if msg := errorMessage(t, body); !strings.Contains(msg, says) {
		t.Errorf("%s: message %q does not say %q", target, msg, says)
	}
	for _, r := range metrics.RefusalReasons {
		want := before[r]
		if r == reason {
			want++
		}
		if got := refusals(ts, r); got != want {
			t.Errorf("%s: refusals{reason=%q} = %v, want %v", target, r, got, want)
		}
	}
}

// TestPresetCannotBeEscaped: every parameter a preset sets ignores the
// request's own value, Sec-CH-DPR included; the answer is byte for byte,
// ETag for ETag the preset's.
func TestPresetCannotBeEscaped(t *testing.T) {
	ts := withControls(t, request.ControlsConfig{AllowQuality: true, SignPassthrough: true,
		Presets: "locked=size:200,format:webp,quality:40,dpr:1.5,resize_algorithm:thumbnail"})
	base, baseBody := ts.get(t, "/rocket.jpg?preset=locked")
	if base.StatusCode != 200 {
		t.Fatalf("status %d: %s", base.StatusCode, baseBody)
	}
	if got := decodeInfo(t, baseBody); got.format != "webp" || got.width != 300 {
		t.Fatalf("preset rendered %+v, want a webp 300 wide", got)
	}
	if v := base.Header.Get("Vary"); v != "" {
		t.Errorf("a preset that sets dpr varies on %q", v)
	}
	for _, c := range []struct {
		query string
		hint  []string
	}{
		{"size=100", nil}, {"size=600", nil}, {"format=png", nil}, {"format=auto", []string{"Accept", "image/avif"}},
		{"quality=95", nil}, {"dpr=3", nil}, {"", []string{"Sec-CH-DPR", "2"}}, {"resize_algorithm=lanczos3", nil},
		{"size=50&format=jpeg&quality=1&dpr=10&resize_algorithm=auto&v=2", []string{"Sec-CH-DPR", "3"}},
	} {
		resp, body := ts.get(t, "/rocket.jpg?preset=locked&"+c.query, c.hint...)
		if resp.StatusCode != 200 || resp.Header.Get("ETag") != base.Header.Get("ETag") || !bytes.Equal(body, baseBody) {
			t.Errorf("%q %v escaped the preset: status %d, ETag %s (preset's %s)", c.query, c.hint, resp.StatusCode,
				resp.Header.Get("ETag"), base.Header.Get("ETag"))
		}
	}
}

// TestPresetLeavesOtherParameters: what a preset does not set, the request
// still decides.
func TestPresetLeavesOtherParameters(t *testing.T) {
	ts := withControls(t, request.ControlsConfig{AllowQuality: true, SignPassthrough: true, Presets: "q=quality:30"})
	for _, c := range []struct {
		query, same string
		width       int
	}{
		{"preset=q&size=120", "size=120&quality=30", 120},
		{"preset=q&size=120&dpr=2&format=png", "size=120&dpr=2&format=png&quality=30", 240},
		{"preset=q&quality=90&size=50", "size=50&quality=30", 50},
		{"preset=q", "quality=30", 640},
	} {
		resp, body := ts.get(t, "/rocket.jpg?"+c.query)
		direct, _ := ts.get(t, "/rocket.jpg?"+c.same)
		if resp.StatusCode != 200 || decodeInfo(t, body).width != c.width || resp.Header.Get("ETag") != direct.Header.Get("ETag") {
			t.Errorf("%s: status %d, width %d, ETag %s; want width %d and the ETag of %s (%s)", c.query, resp.StatusCode,
				decodeInfo(t, body).width, resp.Header.Get("ETag"), c.width, c.same, direct.Header.Get("ETag"))
		}
	}
}

func TestUnknownPreset(t *testing.T) {
	ts := withControls(t, request.ControlsConfig{AllowQuality: true, SignPassthrough: true, Presets: "phone=size:100;desktop=size:300"})
	for _, q := range []string{"preset=tablet", "preset=Phone", "preset=tablet&size=100", "preset=x&quality=50"} {
		expectRefusal(t, ts, "/rocket.jpg?"+q, 400, "preset must be one of desktop, phone.", metrics.RefusalUnknownPreset)
	}
	expectRefusal(t, ts, "/rocket.jpg?preset=a.b", 400, "preset must be a name", "")
	none := withControls(t, request.ControlsConfig{AllowQuality: true, SignPassthrough: true})
	expectRefusal(t, none, "/rocket.jpg?preset=phone", 400, "defines no presets", metrics.RefusalUnknownPreset)
}

func TestQualityParameter(t *testing.T) {
	ts := newTestServer(t, nil)
	get := func(q string) (*http.Response, []byte) {
		t.Helper()
		resp, body := ts.get(t, "/rocket.jpg?size=300&"+q)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", q, resp.StatusCode, body)
		}
		return resp, body
	}
	// The configured qualities (JPEG 75, WebP 80) give the same bytes as the
	// setting, under a different ETag.
	for _, c := range []struct{ format, deflt string }{{"jpeg", "75"}, {"webp", "80"}, {"avif", "85"}} {
		plain, plainBody := get("format=" + c.format)
		same, sameBody := get("format=" + c.format + "&quality=" + c.deflt)
		low, lowBody := get("format=" + c.format + "&quality=5")
		if !bytes.Equal(plainBody, sameBody) {
			t.Errorf("%s: quality=%s differs from the setting %s", c.format, c.deflt, c.deflt)
		}
		if len(lowBody) >= len(plainBody) || decodeInfo(t, lowBody).format != c.format || decodeInfo(t, lowBody).width != 300 {
			t.Errorf("%s: quality=5 gave %d bytes (%+v), quality %s %d", c.format, len(lowBody), decodeInfo(t, lowBody), c.deflt, len(plainBody))
		}
		etags := map[string]bool{plain.Header.Get("ETag"): true, same.Header.Get("ETag"): true, low.Header.Get("ETag"): true}
		if len(etags) != 3 {
			t.Errorf("%s: ETags %v, want 3 distinct", c.format, etags)
		}
	}
	if resp, body := ts.get(t, "/rocket.jpg?quality=20"); resp.StatusCode != 200 || decodeInfo(t, body).format != "jpeg" {
		t.Errorf("quality alone: %d, want a re-encoded jpeg", resp.StatusCode)
	}
	for _, q := range []string{"quality=0", "quality=101", "quality=abc", "quality=", "quality=50&quality=60", "quality=-5", "quality=5.5"} {
		expectRefusal(t, ts, "/rocket.jpg?size=10&"+q, 400, "quality", "")
	}
}

func TestQualityNotAllowed(t *testing.T) {
	ts := withControls(t, request.ControlsConfig{AllowQuality: false, SignPassthrough: true, Presets: "hq=quality:95;small=size:100"})
	expectRefusal(t, ts, "/rocket.jpg?size=100&quality=50", 400, "quality is not accepted", metrics.RefusalQualityNotAllowed)
	expectRefusal(t, ts, "/rocket.jpg?quality=50", 400, "quality is not accepted", metrics.RefusalQualityNotAllowed)
	expectRefusal(t, ts, "/rocket.jpg?preset=small&quality=50", 400, "quality is not accepted", metrics.RefusalQualityNotAllowed)
	for _, q := range []string{"preset=hq&size=100", "preset=hq&size=100&quality=10", "size=100"} {
		if resp, body := ts.get(t, "/rocket.jpg?"+q); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
	a, _ := ts.get(t, "/rocket.jpg?preset=hq&size=100")
	b, _ := ts.get(t, "/rocket.jpg?preset=hq&size=100&quality=10")
	if a.Header.Get("ETag") != b.Header.Get("ETag") {
		t.Error("the request's quality changed a preset that sets quality")
	}
}

func TestAllowedSizes(t *testing.T) {
	strict := withControls(t, request.ControlsConfig{AllowQuality: true, SignPassthrough: true, AllowedSizes: "300, 100,200,200",
		Presets: "odd=size:250;q=quality:50"})
	for _, c := range []struct {
		query, hint string
		width       int
	}{
		{"size=100", "", 100},
		{"size=300&format=png", "", 300},
		{"size=100&dpr=2", "", 200},
		{"size=150&dpr=2", "", 300},
		{"size=150", "2", 300},
		{"size=100", "1.5", 100}, // a hint never refuses: the size at dpr 1
		{"format=webp", "", 640}, // no resize, no box to check
		{"preset=odd", "", 250},  // a preset's size is always allowed
		{"preset=q&size=200", "", 200},
	} {
		resp, body := strict.get(t, "/rocket.jpg?"+c.query, "Sec-CH-DPR", c.hint)
		if resp.StatusCode != 200 || decodeInfo(t, body).width != c.width {
			t.Errorf("%s (hint %q): status %d, want width %d: %s", c.query, c.hint, resp.StatusCode, c.width, body)
		}
	}
	for _, q := range []string{"size=150", "size=400", "size=1", "size=100&dpr=1.5", "size=300&dpr=2", "preset=q&size=150"} {
		expectRefusal(t, strict, "/rocket.jpg?"+q, 400, "must come to one of 100, 200, 300 pixels", metrics.RefusalSizeNotAllowed)
	}
	expectRefusal(t, strict, "/rocket.jpg?size=150", 400, "size 150 × dpr 1.5 comes to 225.", metrics.RefusalSizeNotAllowed, "Sec-CH-DPR", "1.5")
}

// TestSnapSizes: a box between allowed sizes is served as the next one up,
// above them all as the largest, with the snapped variant's ETag and Vary.
func TestSnapSizes(t *testing.T) {
	ts := withControls(t, request.ControlsConfig{AllowQuality: true, SignPassthrough: true, AllowedSizes: "100,200,300", SnapSizes: true})
	for _, c := range []struct {
		query, hint, same string
		width             int
	}{
		{"size=150", "", "size=200", 200},
		{"size=101", "", "size=200", 200},
		{"size=1", "", "size=100", 100},
		{"size=350", "", "size=300", 300},
		{"size=4000", "", "size=300", 300},
		{"size=200", "", "size=200", 200},
		{"size=120&dpr=2", "", "size=300&dpr=1", 300},
		{"size=75&dpr=2&format=png", "", "size=200&dpr=1&format=png", 200},
		{"size=100", "1.5", "size=200", 200},
		{"size=100&quality=50", "", "size=100&quality=50", 100},
	} {
		resp, body := ts.get(t, "/rocket.jpg?"+c.query, "Sec-CH-DPR", c.hint)
		direct, _ := ts.get(t, "/rocket.jpg?"+c.same)
		if resp.StatusCode != 200 || decodeInfo(t, body).width != c.width {
			t.Errorf("%s: status %d width %d, want %d", c.query, resp.StatusCode, decodeInfo(t, body).width, c.width)
		}
		if resp.Header.Get("ETag") != direct.Header.Get("ETag") || resp.Header.Get("Vary") != direct.Header.Get("Vary") {
			t.Errorf("%s: ETag %s Vary %q, want those of %s: %s %q", c.query, resp.Header.Get("ETag"), resp.Header.Get("Vary"),
				c.same, direct.Header.Get("ETag"), direct.Header.Get("Vary"))
		}
	}
	if n := refusals(ts, metrics.RefusalSizeNotAllowed); n != 0 {
		t.Errorf("snapping counted %v refusals", n)
	}
}

// TestConfigRedactsKeys: the HTTP settings printed whole, as main logs
// them, leak no signing key (request.TestControlsConfigRedactsKeys checks
// the controls alone).
func TestConfigRedactsKeys(t *testing.T) {
	cfg := defaultTestConfig("/x")
	cfg.Controls = signingControls()
	for name, out := range map[string]string{"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), "%#v": fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(out, keyNow) || strings.Contains(out, keyPrev) || !strings.Contains(out, "phone=size:100") {
			t.Errorf("%s: %s", name, out)
		}
	}
}
