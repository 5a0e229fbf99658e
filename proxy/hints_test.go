package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"image-proxy/request"
)

func hintsServer(t *testing.T, list, sizes string) *testServer {
	c := signingControls()
	c.AllowedSizes, c.SigningKey, c.SigningKeyPrevious = sizes, "", ""
	c.Hints = request.HintsConfig{ClientHints: list, SaveDataQuality: 30}
	return withControls(t, c)
}

// TestWidthHintServed: the image's width is the hint rounded up, Vary and
// Accept-CH name the hints, and a hint that does not read gets the answer
// of no hint (the same ETag).
func TestWidthHintServed(t *testing.T) {
	ts := hintsServer(t, "dpr,width,save-data", "")
	none, _ := ts.get(t, "/rocket.jpg?format=webp")
	for _, c := range []struct {
		headers []string
		width   int
	}{
		{[]string{"Sec-CH-Width", "350"}, 400},
		{[]string{"Width", "350"}, 400}, // the legacy name
		{[]string{"Sec-CH-Width", "350", "Width", "900"}, 400},
		{[]string{"Sec-CH-Width", "350", "Sec-CH-DPR", "3"}, 400}, // in device pixels already
		{[]string{"Sec-CH-Width", "999999999999"}, 640},           // huge: capped, never enlarged
		{[]string{"Sec-CH-Width", "0"}, 640},
		{[]string{"Sec-CH-Width", "-350"}, 640},
		{[]string{"Sec-CH-Width", "three hundred"}, 640},
	} {
		resp, body := ts.get(t, "/rocket.jpg?format=webp", c.headers...)
		info := decodeInfo(t, body)
		if resp.StatusCode != 200 || info.width != c.width {
			t.Errorf("%v: %d, %d px wide, want %d", c.headers, resp.StatusCode, info.width, c.width)
		}
		if v := resp.Header.Get("Vary"); v != "Sec-CH-Width, Width, Save-Data" {
			t.Errorf("%v: Vary %q", c.headers, v)
		}
		if a := resp.Header.Get("Accept-CH"); a != "Sec-CH-DPR, Sec-CH-Width" {
			t.Errorf("%v: Accept-CH %q", c.headers, a)
		}
		if c.width == 640 && !strings.HasPrefix(c.headers[1], "9") && resp.Header.Get("ETag") != none.Header.Get("ETag") {
			t.Errorf("%v: a hint that does not count changed the ETag", c.headers)
		}
	}
	// size given: the width hint cannot change it, Vary does not name it.
	resp, body := ts.get(t, "/rocket.jpg?size=100", "Sec-CH-Width", "350")
	if decodeInfo(t, body).width != 100 || resp.Header.Get("Vary") != "Sec-CH-DPR, Save-Data" {
		t.Errorf("size=100 with a width hint: %d px, Vary %q", decodeInfo(t, body).width, resp.Header.Get("Vary"))
	}
	// Passthrough: nothing varies.
	if resp, _ := ts.get(t, "/rocket.jpg", "Sec-CH-Width", "350"); resp.Header.Get("Vary") != "" {
		t.Errorf("passthrough: Vary %q", resp.Header.Get("Vary"))
	}
}

// TestSaveDataServed: Save-Data: on lowers the quality of a request that
// fixes none; one that fixes a quality keeps it and does not vary.
func TestSaveDataServed(t *testing.T) {
	ts := hintsServer(t, "save-data", "")
	full, fb := ts.get(t, "/rocket.jpg?size=300")
	saved, sb := ts.get(t, "/rocket.jpg?size=300", "Save-Data", "on")
	if len(sb) >= len(fb) || saved.Header.Get("ETag") == full.Header.Get("ETag") || saved.Header.Get("Vary") != "Save-Data" {
		t.Errorf("Save-Data: %d bytes (without %d), Vary %q", len(sb), len(fb), saved.Header.Get("Vary"))
	}
	if same, _ := ts.get(t, "/rocket.jpg?size=300&quality=30"); same.Header.Get("ETag") != saved.Header.Get("ETag") {
		t.Error("Save-Data's answer is not quality 30's")
	}
	fixed, _ := ts.get(t, "/rocket.jpg?size=300&quality=90", "Save-Data", "on")
	if fixed.Header.Get("Vary") != "" || fixed.Header.Get("Accept-CH") != "" {
		t.Errorf("quality fixed: Vary %q, Accept-CH %q", fixed.Header.Get("Vary"), fixed.Header.Get("Accept-CH"))
	}
}

// TestWidthHintSignedAndSized: a signed URL stays valid under any hint,
// and the hint rounds up to the allowed sizes.
func TestWidthHintSignedAndSized(t *testing.T) {
	c := signingControls()
	c.AllowedSizes = "160,320,480"
	c.Hints = request.HintsConfig{ClientHints: "dpr,width"}
	ts := withControls(t, c)
	target := "/rocket.jpg?format=webp&sig=" + sigOf(keyNow, "/rocket.jpg?format=webp")
	for hint, want := range map[string]int{"100": 160, "161": 320, "480": 480, "2000": 480} {
		resp, body := ts.get(t, target, "Sec-CH-Width", hint)
		if info := decodeInfo(t, body); resp.StatusCode != 200 || info.width != want {
			t.Errorf("Sec-CH-Width %s: %d, %d px, want %d", hint, resp.StatusCode, info.width, want)
		}
	}
}

// TestClientHintsInChromium: a page on another origin delegates
// sec-ch-width and sec-ch-dpr to the server (Delegate-CH); headless
// Chromium at device scale 2 sends them for an <img sizes=…>, and the
// image it gets is the slot's width in device pixels rounded up to the
// step, while a size= image gets its box × the DPR.
func TestClientHintsInChromium(t *testing.T) {
	ts := hintsServer(t, "dpr,width", "")
	ln := ts.serve(t)
	img := "http://" + ln.Addr().String()
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head>
<meta http-equiv="Delegate-CH" content="sec-ch-width %[1]s; sec-ch-dpr %[1]s">
</head><body>
<img id="slot" src="%[1]s/rocket.jpg?format=webp" sizes="173px" width="173">
<img id="box" src="%[1]s/rocket.jpg?size=100">
</body></html>`, img)
	}))
	defer page.Close()

	ctx := browser(t, chromedp.Flag("force-device-scale-factor", "2"))

	var mu sync.Mutex
	sent := map[string]network.Headers{} // image URL → the request headers Chromium sent
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSentExtraInfo); ok {
			mu.Lock()
			defer mu.Unlock()
			sent[string(e.RequestID)] = e.Headers
		}
	})
	var slotWidth, boxWidth int
	err := chromedp.Run(ctx, network.Enable(), chromedp.Navigate(page.URL),
		chromedp.Poll(`document.images.length == 2 && [...document.images].every(i => i.complete && i.naturalWidth > 0)`, nil),
		chromedp.Evaluate(`document.getElementById("slot").naturalWidth`, &slotWidth),
		chromedp.Evaluate(`document.getElementById("box").naturalWidth`, &boxWidth))
	if err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	// 173 CSS px × DPR 2 = 346 device px, rounded up to 400; size=100 × 2.
	if slotWidth != 400 || boxWidth != 200 {
		t.Errorf("the <img sizes=173px> is %d px wide, want 400; the size=100 image %d, want 200", slotWidth, boxWidth)
	}
	mu.Lock()
	defer mu.Unlock()
	var widths, dprs []string
	for _, h := range sent {
		if v, ok := h["sec-ch-width"]; ok {
			widths = append(widths, fmt.Sprint(v))
		}
		if v, ok := h["sec-ch-dpr"]; ok {
			dprs = append(dprs, fmt.Sprint(v))
		}
	}
	if !strings.Contains(strings.Join(widths, ","), "346") || !strings.Contains(strings.Join(dprs, ","), "2") {
		t.Errorf("Chromium sent sec-ch-width %v and sec-ch-dpr %v; want 346 and 2", widths, dprs)
	}
}
