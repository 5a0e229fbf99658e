package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/buckket/go-blurhash"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/image/webp"

	"image-proxy/internal/testsupport/thumbhashref"
	"image-proxy/metrics"
	"image-proxy/request"
)

// factsPresets name each output format, since format=json takes the
// format parameter: a preset's format is the output the answer describes.
const factsPresets = "webp=format:webp;avif=format:avif;png=format:png;gif=format:gif;jpeg=format:jpeg;auto=format:auto"

func factsServer(t *testing.T) *testServer {
	return withControls(t, request.ControlsConfig{AllowQuality: true, SignPassthrough: true, Presets: factsPresets})
}

func getFacts(t *testing.T, ts *testServer, target string, headers ...string) (*http.Response, Facts) {
	t.Helper()
	resp, body := ts.get(t, target, headers...)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", target, resp.StatusCode, body)
	}
	var f Facts
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v: %s", target, err, body)
	}
	return resp, f
}

// TestFactsOutputIsWhatTheImageIs: for a table of requests (crops, pads,
// orientation, animations, every output format, dpr), the output format=json
// reports is the format and size of the image the same URL without it
// returns, decoded.
func TestFactsOutputIsWhatTheImageIs(t *testing.T) {
	ts := factsServer(t)
	for _, q := range []string{
		"/rocket.jpg?size=200", "/rocket.jpg?size=200&preset=webp", "/rocket.jpg?size=200&preset=png",
		"/rocket.jpg?size=200&preset=gif", "/rocket.jpg?size=200&preset=avif", "/rocket.jpg?preset=png",
		"/rocket.jpg?size=4000", "/rocket.jpg?size=100&dpr=2.5", "/rocket.jpg?size=333&dpr=1.7",
		"/rocket-exif-orientation-6.jpg?size=200", "/rocket-exif-orientation-6.jpg?width=100&height=50&fit=cover&gravity=north",
		"/rocket-exif-orientation-6.jpg?width=77", "/rocket-cmyk.jpg?height=99&preset=png",
		"/variants/astronaut-16bit.png?size=100", "/variants/astronaut-alpha.png?size=100&preset=jpeg",
		"/astronaut-animated.gif?size=100", "/astronaut-animated.gif?size=100&preset=webp", "/astronaut-animated.webp?size=77",
		"/astronaut-animated.gif?width=50&height=40&fit=cover&gravity=smart", "/astronaut-animated.gif?width=60&height=60&fit=pad&preset=webp",
		"/coffee.avif?size=300", "/variants/coffee.tif?size=301", "/variants/coffee.heic?size=299", "/variants/badge.svg?size=150",
		"/rocket.jpg?width=100", "/rocket.jpg?height=100", "/rocket.jpg?width=200&height=200",
		"/rocket.jpg?width=200&height=200&fit=cover", "/rocket.jpg?width=200&height=200&fit=cover&gravity=entropy",
		"/rocket.jpg?width=200&height=200&fit=cover&focus=0.3,0.6", "/rocket.jpg?width=300&height=100&fit=fill",
		"/rocket.jpg?width=300&height=300&fit=pad&background=ff000080&preset=png", "/rocket.jpg?width=1000&height=500&fit=cover",
		"/rocket.jpg?width=3000&height=3000&fit=fill&dpr=2", "/rocket.jpg?width=123&height=45&fit=cover&dpr=1.3",
		"/coffee-progressive.jpg?width=257&height=101&fit=cover", "/hubble_deep_field.jpg?size=211&blur=2",
	} {
		img, body := ts.get(t, q)
		if img.StatusCode != 200 {
			t.Errorf("%s: status %d: %s", q, img.StatusCode, body)
			continue
		}
		info := decodeInfo(t, body)
		_, f := getFacts(t, ts, q+"&format=json")
		if o := f.Output; o == nil || o.Format != info.format || o.Width != info.width || o.Height != info.height {
			t.Errorf("%s: format=json says %+v, the image is %s %d×%d", q, o, info.format, info.width, info.height)
		}
	}
}

// TestFactsSource checks what the answer says of each source.
func TestFactsSource(t *testing.T) {
	ts := factsServer(t)
	for _, c := range []struct {
		path string
		want SourceFacts
	}{
		{"/rocket.jpg", SourceFacts{Width: 640, Height: 427, Format: "jpeg", Orientation: 1, Frames: 1, Colorspace: "srgb"}},
		{"/rocket-exif-orientation-6.jpg", SourceFacts{Width: 427, Height: 640, Format: "jpeg", Orientation: 6, Frames: 1, Colorspace: "srgb"}},
		{"/rocket-cmyk.jpg", SourceFacts{Width: 640, Height: 427, Format: "jpeg", Orientation: 1, Frames: 1, Colorspace: "cmyk"}},
		{"/variants/astronaut-alpha.png", SourceFacts{Width: 256, Height: 256, Format: "png", Orientation: 1, HasAlpha: true, Frames: 1, Colorspace: "srgb"}},
		{"/variants/astronaut-16bit.png", SourceFacts{Width: 512, Height: 512, Format: "png", Orientation: 1, Frames: 1, Colorspace: "rgb16"}},
		{"/astronaut-animated.gif", SourceFacts{Width: 200, Height: 160, Format: "gif", Orientation: 1, HasAlpha: true, Animated: true, Colorspace: "srgb"}},
	} {
		resp, f := getFacts(t, ts, c.path+"?format=json")
		fi, err := os.Stat(filepath.Join(ts.root, c.path))
		if err != nil {
			t.Fatal(err)
		}
		c.want.Bytes = int(fi.Size())
		got := f.Source
		if c.want.Frames == 0 && got.Frames > 1 {
			c.want.Frames = got.Frames // an animation: any number of frames over one
		}
		if got != c.want {
			t.Errorf("%s: source %+v, want %+v", c.path, got, c.want)
		}
		if f.Output != nil {
			t.Errorf("%s?format=json: an output without transform parameters: %+v", c.path, f.Output)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", c.path, ct)
		}
	}
}

// TestFactsPlaceholdersResembleTheImage decodes each answer's BlurHash
// (go-blurhash) and ThumbHash (the reference decoder) and compares the
// mean colour of each quadrant with the image's; the LQIP is a WebP of at
// most about 1 KB of the same picture.
func TestFactsPlaceholdersResembleTheImage(t *testing.T) {
	ts := factsServer(t)
	paths := []string{"/rocket.jpg", "/coffee.png", "/rocket-exif-orientation-6.jpg", "/hubble_deep_field.jpg", "/variants/astronaut-alpha.png"}
	var jobs []thumbhashref.Job
	var facts []Facts
	for _, p := range paths {
		_, f := getFacts(t, ts, p+"?format=json")
		h, err := base64.StdEncoding.DecodeString(f.Placeholders.ThumbHash)
		if err != nil {
			t.Fatalf("%s: thumbhash %q: %v", p, f.Placeholders.ThumbHash, err)
		}
		jobs = append(jobs, thumbhashref.Job{Hash: h})
		facts = append(facts, f)
	}
	decoded := thumbhashref.Run(t, jobs)
	for i, p := range paths {
		w, h, px := pixelsOf(t, ts, p+"?width=100&height=100&preset=png")
		want := thumbhashref.Quadrants(w, h, px)
		ph := facts[i].Placeholders
		if err := thumbhashref.Resembles(thumbhashref.Quadrants(decoded[i].W, decoded[i].H, decoded[i].RGBA), want, 30); err != nil {
			t.Errorf("%s: ThumbHash %s: %v", p, ph.ThumbHash, err)
		}
		bx, by, err := blurhash.Components(ph.BlurHash)
		if wantX, wantY := aspectComponents(facts[i].Source); err != nil || bx != wantX || by != wantY {
			t.Errorf("%s: BlurHash %q has %d×%d components (%v), want %d×%d", p, ph.BlurHash, bx, by, err, wantX, wantY)
		}
		bimg, err := blurhash.Decode(ph.BlurHash, w, h, 1)
		if err != nil {
			t.Fatalf("%s: BlurHash %q: %v", p, ph.BlurHash, err)
		}
		if err := thumbhashref.Resembles(thumbhashref.Quadrants(w, h, nrgba(bimg)), want, 30); err != nil {
			t.Errorf("%s: BlurHash %s: %v", p, ph.BlurHash, err)
		}
		checkLQIP(t, p, ph.LQIP, want)
		if len(ph.DominantColor) != 7 || ph.DominantColor[0] != '#' {
			t.Errorf("%s: dominant_color %q", p, ph.DominantColor)
		}
	}
}

// checkLQIP decodes the LQIP data URI and compares it with the image.
func checkLQIP(t *testing.T, path, uri string, want [4][3]float64) {
	t.Helper()
	const prefix = "data:image/webp;base64,"
	if !strings.HasPrefix(uri, prefix) || len(uri) > 1024 {
		t.Errorf("%s: lqip of %d bytes: %.60q…", path, len(uri), uri)
		return
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(uri, prefix))
	if err != nil {
		t.Fatalf("%s: lqip: %v", path, err)
	}
	img, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: lqip is no WebP: %v", path, err)
	}
	b := img.Bounds()
	if max(b.Dx(), b.Dy()) > 32 {
		t.Errorf("%s: lqip is %d×%d", path, b.Dx(), b.Dy())
	}
	if err := thumbhashref.Resembles(thumbhashref.Quadrants(b.Dx(), b.Dy(), nrgba(img)), want, 30); err != nil {
		t.Errorf("%s: lqip: %v", path, err)
	}
}

// aspectComponents is the BlurHash grid the README promises.
func aspectComponents(s SourceFacts) (int, int) {
	switch {
	case s.Width > s.Height:
		return 4, 3
	case s.Height > s.Width:
		return 3, 4
	}
	return 4, 4
}

// pixelsOf is the server's PNG of target, decoded to RGBA.
func pixelsOf(t *testing.T, ts *testServer, target string) (int, int, []byte) {
	t.Helper()
	resp, body := ts.get(t, target)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", target, resp.StatusCode)
	}
	img, _, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy(), nrgba(img)
}

func nrgba(img image.Image) []byte {
	b := img.Bounds()
	px := make([]byte, 0, 4*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			px = append(px, c.R, c.G, c.B, c.A)
		}
	}
	return px
}

// TestFactsIsAVariant: the answer has its own key and ETag, is cached,
// revalidates with 304 (HEAD too), carries the image headers, and is
// counted under kind json; the image URL's ETag is not its.
func TestFactsIsAVariant(t *testing.T) {
	ts := factsServer(t)
	const target = "/rocket.jpg?size=200&format=json"
	image, _ := ts.get(t, "/rocket.jpg?size=200")
	first, body := ts.get(t, target)
	etag := first.Header.Get("ETag")
	if first.StatusCode != 200 || etag == "" || etag == image.Header.Get("ETag") {
		t.Fatalf("first: %d, ETag %q (the image's %q)", first.StatusCode, etag, image.Header.Get("ETag"))
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "X-Cache-Status": "MISS",
		"Cache-Control": "public, max-age=31536000, no-transform", "Vary": "Sec-CH-DPR", "Accept-CH": "Sec-CH-DPR",
		"X-Content-Type-Options": "nosniff"} {
		if got := first.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	again, body2 := ts.get(t, target)
	if again.Header.Get("X-Cache-Status") != "HIT-MEMORY" || again.Header.Get("ETag") != etag || !bytes.Equal(body, body2) {
		t.Errorf("second: %s, ETag %q", again.Header.Get("X-Cache-Status"), again.Header.Get("ETag"))
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		resp, b := ts.do(t, m, target, "If-None-Match", etag)
		if resp.StatusCode != 304 || len(b) != 0 || resp.Header.Get("ETag") != etag {
			t.Errorf("%s If-None-Match: %d, %d bytes", m, resp.StatusCode, len(b))
		}
	}
	head, hb := ts.do(t, http.MethodHead, target)
	if head.StatusCode != 200 || len(hb) != 0 || head.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q (GET %d)", head.StatusCode, len(hb), head.Header.Get("Content-Length"), len(body))
	}
	if n := testutil.ToFloat64(ts.m.HTTPRequests.WithLabelValues("200", metrics.KindJSON)); n != 3 {
		t.Errorf("requests{kind=json,code=200} = %v, want 3", n)
	}
	if n := testutil.ToFloat64(ts.m.HTTPRequests.WithLabelValues("304", metrics.KindJSON)); n != 2 {
		t.Errorf("requests{kind=json,code=304} = %v, want 2", n)
	}
	// Without transform parameters: no Vary (nothing a header changes),
	// another key.
	plain, _ := ts.get(t, "/rocket.jpg?format=json")
	if plain.Header.Get("Vary") != "" || plain.Header.Get("ETag") == etag {
		t.Errorf("?format=json alone: Vary %q, ETag %q", plain.Header.Get("Vary"), plain.Header.Get("ETag"))
	}
}

// TestFactsFollowPresetsAndAccept: a preset's format=auto makes the
// answer's output follow Accept (and Vary on it); a preset cannot make a
// JSON URL an image or back.
func TestFactsFollowPresetsAndAccept(t *testing.T) {
	ts := factsServer(t)
	for accept, want := range map[string]string{"image/avif,image/webp,*/*": "avif", "image/webp": "webp", "*/*": "jpeg"} {
		resp, f := getFacts(t, ts, "/rocket.jpg?preset=auto&size=100&format=json", "Accept", accept)
		if f.Output == nil || f.Output.Format != want || resp.Header.Get("Vary") != "Sec-CH-DPR, Accept" {
			t.Errorf("Accept %q: output %+v, Vary %q; want %s", accept, f.Output, resp.Header.Get("Vary"), want)
		}
	}
	if _, err := request.NewGate(request.ControlsConfig{Presets: "x=format:json"}, 4000, ts.m.Refusals); err == nil ||
		!strings.Contains(err.Error(), "format:json is not a preset's format") {
		t.Errorf("a preset of format:json: %v", err)
	}
}

// TestFactsBadInputs: each gets a clear answer.
func TestFactsBadInputs(t *testing.T) {
	ts := factsServer(t)
	writeFile(t, filepath.Join(ts.root, "notes.txt"), []byte("not an image at all, just words\n"))
	writeFile(t, filepath.Join(ts.root, "broken.jpg"), []byte("\xff\xd8\xff\xe0 truncated"))
	for _, c := range []struct {
		target string
		status int
		says   string
	}{
		{"/notes.txt?format=json", 415, ""},
		{"/broken.jpg?format=json", 422, ""},
		{"/rocket.jpg?format=json&size=0", 400, "size must be a whole number"},
		{"/rocket.jpg?format=json&format=png", 400, "format must be given only once."},
		{"/rocket.jpg?format=jsonp", 400, "auto or json."},
		{"/missing.jpg?format=json", 404, ""},
		{"/../etc/passwd?format=json", 404, ""},
		{"/rocket.jpg?format=json&preset=nope", 400, "preset must be one of"},
	} {
		resp, body := ts.get(t, c.target)
		if resp.StatusCode != c.status || !strings.Contains(errorMessage(t, body), c.says) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want %d saying %q", c.target, resp.StatusCode, body, c.status, c.says)
		}
	}
	_, body := ts.get(t, "/notes.txt?format=json")
	if msg := errorMessage(t, body); msg == "" {
		t.Error("a file that is not an image: no message")
	}
}

// TestFactsSignedAndSized: format=json is part of what a signature covers,
// and the allowed sizes hold for it as for the image.
func TestFactsSignedAndSized(t *testing.T) {
	c := signingControls()
	c.AllowedSizes = "100,200"
	ts := withControls(t, c)
	const message = "/rocket.jpg?format=json&size=200"
	if resp, body := ts.get(t, "/rocket.jpg?size=200&format=JSON&sig="+sigOf(keyNow, message)); resp.StatusCode != 200 {
		t.Errorf("signed format=json: %d %s", resp.StatusCode, body)
	}
	expectRefusal(t, ts, "/rocket.jpg?size=200&format=json&sig="+sigOf(keyNow, "/rocket.jpg?size=200"), 403, "does not match",
		metrics.RefusalSignatureInvalid)
	expectRefusal(t, ts, "/rocket.jpg?size=150&format=json&sig="+sigOf(keyNow, "/rocket.jpg?format=json&size=150"), 400,
		"size × dpr must come to one of 100, 200 pixels", metrics.RefusalSizeNotAllowed)
}

// TestFactsNotInBulk: a bulk item's part is an image.
func TestFactsNotInBulk(t *testing.T) {
	ts := factsServer(t)
	resp, body := ts.post(t, "/bulk", []byte(`[{"path":"rocket.jpg","size":100,"format":"json"}]`), "Content-Type", "application/json")
	if resp.StatusCode != 400 || !strings.Contains(errorMessage(t, body), "format=json is not available in a bulk request") {
		t.Errorf("bulk format=json: %d %s", resp.StatusCode, body)
	}
}
