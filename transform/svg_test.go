package transform

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hangGuard bounds waits that only a regression can exhaust (a render stuck
// opening a FIFO or connecting to a black hole): it turns a hang into a
// failure and says nothing about speed.
const hangGuard = 2 * time.Minute

// processCPU is the user+system CPU time of the whole process: libvips
// renders on its own worker threads, so the calling thread's time would
// miss the work. Tests here do not run in parallel, so a delta is one render.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err) // only EFAULT or EINVAL, neither possible here
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type guardedRender struct {
	res Result
	err error
	cpu time.Duration
}

// renderGuarded runs Render on another goroutine so that a render blocked
// in C fails the test after hangGuard instead of hanging the suite; it
// reports the CPU time the render used.
func renderGuarded(t *testing.T, tr *Engine, src []byte, opts Options) guardedRender {
	t.Helper()
	done := make(chan guardedRender, 1)
	go func() {
		before := processCPU()
		res, err := tr.Render(context.Background(), src, opts)
		done <- guardedRender{res: res, err: err, cpu: processCPU() - before}
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(hangGuard):
		t.Fatalf("Render still running after %v: it is blocked, not slow", hangGuard)
		return guardedRender{}
	}
}

// pngPixels decodes a PNG output and returns its size and the colour every
// pixel has; uniform is false when pixels differ.
func pngPixels(t *testing.T, data []byte) (w, h int, fill color.NRGBA, uniform bool) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	b := img.Bounds()
	fill = color.NRGBAModel.Convert(img.At(b.Min.X, b.Min.Y)).(color.NRGBA)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA) != fill {
				return b.Dx(), b.Dy(), fill, false
			}
		}
	}
	return b.Dx(), b.Dy(), fill, true
}

func solidPNG(t *testing.T, c color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Hostile SVGs: none may hang, read a file, reach the network or render an
// unbounded canvas. Every reference below points at something that would
// paint the 50×50 canvas blue (or style it blue) if it were loaded, and the
// controls show the same constructs do paint blue when the content is
// inline, so a transparent output means "blocked", not "renderer broken".
func TestHostileSVG(t *testing.T) {
	blue := color.NRGBA{0, 0, 255, 255}
	transparent := color.NRGBA{}
	black := color.NRGBA{0, 0, 0, 255} // an unstyled rect

	bluePNG := solidPNG(t, blue)
	rectSVG := `<rect xmlns="http://www.w3.org/2000/svg" width="50" height="50" fill="blue"/>`
	fullSVG := `<svg xmlns="http://www.w3.org/2000/svg"><rect id="r" width="50" height="50" fill="blue"/></svg>`
	css := `rect { fill: blue }`

	// Local targets, in a directory that is also the working directory, so
	// that a relative reference would find them if anything resolved one.
	dir := t.TempDir()
	for name, b := range map[string][]byte{"blue.png": bluePNG, "rect.svg": []byte(rectSVG), "full.svg": []byte(fullSVG), "s.css": []byte(css)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Opening a FIFO without a writer blocks forever: a renderer that
	// followed the reference would hang here (caught by hangGuard).
	fifo := filepath.Join(dir, "pipe.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Releases a reader stuck on the FIFO, should a regression have made one.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	t.Chdir(dir)
	fileURL := "file://" + dir + "/"

	// A loopback server holding the same targets: any connection at all,
	// not just a successful fetch, is a failure.
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	httpURL := srv.URL + "/"

	const xlink = `xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="50" height="50"`
	imageRef := func(href string) string {
		return `<svg ` + xlink + `><image xlink:href="` + href + `" width="50" height="50"/></svg>`
	}
	xinclude := func(href string) string {
		return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xi="http://www.w3.org/2001/XInclude" width="50" height="50"><xi:include href="` + href + `"/></svg>`
	}
	style := func(rule string) string {
		return `<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50"><style>` + rule + `</style><rect width="50" height="50"/></svg>`
	}
	dataURI := func(mime string, b []byte) string {
		return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b)
	}

	laughs := `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">` +
		`<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">` +
		`<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">` +
		`<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>` +
		`<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><text y="20">&h;</text></svg>`
	// 2^24 rects through 24 levels of doubled <use>.
	var uses strings.Builder
	uses.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100"><defs><rect id="l0" width="1" height="1"/>`)
	for i := 1; i <= 24; i++ {
		prev := strconv.Itoa(i - 1)
		uses.WriteString(`<g id="l` + strconv.Itoa(i) + `"><use xlink:href="#l` + prev + `"/><use xlink:href="#l` + prev + `"/></g>`)
	}
	uses.WriteString(`</defs><use xlink:href="#l24"/></svg>`)

	// Every case costs about a millisecond of CPU but one: exponential use
	// runs into librsvg's limit of 500 000 referenced elements, 1.2 s of CPU
	// here (3.8 s on a slower CI core), and as the failure surfaces in the
	// encoder, Render decodes the source a second time to classify it. The
	// 16.7 million rects without that limit would cost over 30 times as
	// much. CPU time, unlike wall time, does not grow on a shared machine.
	const cpuBudget, useBudget = 2 * time.Second, 40 * time.Second

	cases := []struct {
		name string
		svg  string
		kind ErrorKind     // the error Render must return, when w == 0
		w, h int           // else the output size…
		fill color.NRGBA   // …and the colour of every pixel
		cpu  time.Duration // 0: cpuBudget
	}{
		{name: "control: data URI image", svg: imageRef(dataURI("image/png", bluePNG)), w: 50, h: 50, fill: blue},
		{name: "image from /etc/passwd", svg: imageRef("file:///etc/passwd"), w: 50, h: 50, fill: transparent},
		{name: "image from a local PNG", svg: imageRef(fileURL + "blue.png"), w: 50, h: 50, fill: transparent},
		{name: "relative image", svg: imageRef("blue.png"), w: 50, h: 50, fill: transparent},
		{name: "relative image on a FIFO", svg: imageRef("pipe.jpg"), w: 50, h: 50, fill: transparent},
		{name: "image from a black hole address", svg: imageRef("http://10.255.255.1/x.png"), w: 50, h: 50, fill: transparent},
		{name: "image from a loopback server", svg: imageRef(httpURL + "blue.png"), w: 50, h: 50, fill: transparent},
		{name: "control: data URI XInclude", svg: xinclude(dataURI("application/xml", []byte(rectSVG))), w: 50, h: 50, fill: blue},
		{name: "XInclude of a local file", svg: xinclude(fileURL + "rect.svg"), w: 50, h: 50, fill: transparent},
		{name: "XInclude from a loopback server", svg: xinclude(httpURL + "rect.svg"), w: 50, h: 50, fill: transparent},
		{name: "use of a local file", svg: `<svg ` + xlink + `><use xlink:href="` + fileURL + `full.svg#r"/></svg>`, w: 50, h: 50, fill: transparent},
		{name: "control: inline CSS", svg: style(css), w: 50, h: 50, fill: blue},
		{name: "CSS import of a local file", svg: style(`@import url(` + fileURL + `s.css);`), w: 50, h: 50, fill: black},
		{name: "CSS import from a loopback server", svg: style(`@import url(` + httpURL + `s.css);`), w: 50, h: 50, fill: black},
		// libxml2 never loads external entities: the reference is undefined.
		{name: "external entity", svg: `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>` +
			`<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50"><text y="20">&x;</text></svg>`, kind: KindInvalidImage},
		// libxml2's amplification check stops the expansion at parse time.
		{name: "billion laughs", svg: laughs, kind: KindInvalidImage},
		// librsvg stops at 500 000 referenced elements while rendering, so
		// the error surfaces from the encoder pulling the pixels.
		{name: "exponential use", svg: uses.String(), kind: KindInvalidImage, cpu: useBudget},
		// librsvg detects the cycle and draws nothing.
		{name: "self reference", svg: `<svg ` + xlink + `><g id="a"><use xlink:href="#a"/></g></svg>`, w: 50, h: 50, fill: transparent},
		// The header claims 10^12 pixels: refused before anything is drawn.
		{name: "huge canvas", svg: `<svg xmlns="http://www.w3.org/2000/svg" width="1000000" height="1000000"><rect width="10" height="10"/></svg>`, kind: KindTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if Sniff([]byte(c.svg)) != FormatSVG {
				t.Fatal("not sniffed as SVG: the case would test the sniffer, not the loader")
			}
			r := renderGuarded(t, New(DefaultConfig()), []byte(c.svg), Options{Box: 64, Format: FormatPNG})
			t.Logf("CPU %v", r.cpu)
			budget := c.cpu
			if budget == 0 {
				budget = cpuBudget
			}
			if r.cpu > budget {
				t.Errorf("used %v of CPU, budget %v", r.cpu, budget)
			}
			if c.w == 0 {
				var te *Error
				switch {
				case r.err == nil:
					t.Fatalf("rendered %dx%d, want error kind %d", r.res.Width, r.res.Height, c.kind)
				case !errors.As(r.err, &te):
					t.Fatalf("error %v (%T), want *Error", r.err, r.err)
				case te.Kind != c.kind:
					t.Fatalf("error kind %d, want %d: %v", te.Kind, c.kind, r.err)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("want a %dx%d image: %v", c.w, c.h, r.err)
			}
			w, h, fill, uniform := pngPixels(t, r.res.Data)
			if w != c.w || h != c.h || r.res.Width != c.w || r.res.Height != c.h {
				t.Errorf("size %dx%d (result says %dx%d), want %dx%d", w, h, r.res.Width, r.res.Height, c.w, c.h)
			}
			if !uniform || fill != c.fill {
				t.Errorf("pixels are not all %v (first pixel %v, uniform %v)", c.fill, fill, uniform)
			}
		})
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the loopback server received %d connections", n)
	}
}
