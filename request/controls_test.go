package request

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"image-proxy/fault"
	"image-proxy/imageformat"
	"image-proxy/metrics"
)

func TestParseControlParameters(t *testing.T) {
	good := []struct {
		query   string
		quality int
		preset  string
	}{
		{"quality=1", 1, ""},
		{"quality=100", 100, ""},
		{"quality=075", 75, ""},
		{"preset=phone", 0, "phone"},
		{"preset=Phone_2-x", 0, "Phone_2-x"},
		{"preset=" + strings.Repeat("a", 64) + "&quality=5", 5, strings.Repeat("a", 64)},
	}
	for _, c := range good {
		r, err := Parse(values(c.query), "", 4000)
		if err != nil || r.Quality != c.quality || r.Preset != c.preset || !r.Transform {
			t.Errorf("%q: %+v %v", c.query, r, err)
		}
	}
	for _, q := range []string{"quality=0", "quality=101", "quality=-1", "quality=7.5", "quality=abc", "quality=",
		"quality=1&quality=2", "quality=%2B5", "preset=", "preset=a.b", "preset=a/b", "preset=" + strings.Repeat("a", 65),
		"preset=a&preset=b", "preset=caf%C3%A9", "preset=a%20b"} {
		if _, err := Parse(values(q), "", 4000); err == nil {
			t.Errorf("%q accepted", q)
		}
	}
}

func TestParsePresets(t *testing.T) {
	table, err := parsePresets(" phone = size:400 , quality:75,format:webp ;desktop=size:1200,quality:85;;x=dpr:2,resize_algorithm:thumbnail;", 4000)
	if err != nil {
		t.Fatal(err)
	}
	want := presetTable{
		"phone":   {Size: 400, Quality: 75, DPR: 1, Output: Output{Format: imageformat.WebP}},
		"desktop": {Size: 1200, Quality: 85, DPR: 1},
		"x":       {DPR: 2, DPRQuery: true, Algorithm: imageformat.AlgorithmThumbnail, AlgorithmSet: true},
	}
	if len(table) != len(want) {
		t.Fatalf("%d presets, want %d", len(table), len(want))
	}
	for name, p := range want {
		if table[name] != p {
			t.Errorf("%s: %+v, want %+v", name, table[name], p)
		}
	}
	for _, spec := range []string{"phone", "=size:1", "phone=", "phone=size", "phone=size:", "phone=size:0", "phone=size:4001",
		"phone=quality:0", "phone=quality:101", "phone=format:bmp", "phone=format:", "phone=dpr:0.5", "phone=dpr:11",
		"phone=resize_algorithm:x", "phone=preset:desktop", "phone=sig:x", "phone=colour:red", "phone=size:1,size:2",
		"phone=size:1;phone=size:2", "Phone=size:1", "ph one=size:1", "phone=size:1,", "phone=size:1=2",
		strings.Repeat("a", 65) + "=size:1"} {
		if _, err := parsePresets(spec, 4000); err == nil {
			t.Errorf("%q accepted", spec)
		} else if !strings.Contains(err.Error(), "must") {
			t.Errorf("%q: %v does not say what is allowed", spec, err)
		}
	}
}

func TestControlsConfigRedactsKeys(t *testing.T) {
	c := signingControls()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("settings", "controls", c)
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprint(c), "slog": logged.String(),
	} {
		if strings.Contains(out, keyNow) || strings.Contains(out, keyPrev) || !strings.Contains(out, "phone=size:100") {
			t.Errorf("%s: %s", name, out)
		}
	}
}

// TestControlsConfigValidate: every bad control is refused with a message
// that names its variable and what is allowed, and never a key.
func TestControlsConfigValidate(t *testing.T) {
	short := strings.Repeat("k", minKeyBytes-1)
	for _, c := range []struct {
		cfg  ControlsConfig
		says string
	}{
		{ControlsConfig{Presets: "phone=size:0"}, `invalid setting IMAGE_PROXY_PRESETS="phone=size:0": entry "phone=size:0": size must be`},
		{ControlsConfig{AllowedSizes: "100,x"}, `invalid setting IMAGE_PROXY_ALLOWED_SIZES="100,x": must be a comma-separated list of whole numbers from 1 to 4000`},
		{ControlsConfig{AllowedSizes: "4001"}, "IMAGE_PROXY_ALLOWED_SIZES"},
		{ControlsConfig{SnapSizes: true}, `invalid setting IMAGE_PROXY_SNAP_SIZES="true": must be false unless IMAGE_PROXY_ALLOWED_SIZES lists`},
		{ControlsConfig{SigningKeyPrevious: keyPrev}, "IMAGE_PROXY_SIGNING_KEY_PREVIOUS: it needs IMAGE_PROXY_SIGNING_KEY"},
		{ControlsConfig{SigningKey: short}, "invalid setting IMAGE_PROXY_SIGNING_KEY: must be at least 32 bytes"},
		{ControlsConfig{SigningKey: keyNow, SigningKeyPrevious: short}, "invalid setting IMAGE_PROXY_SIGNING_KEY_PREVIOUS: must be at least 32 bytes"},
	} {
		err := c.cfg.Validate(4000)
		if err == nil || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), short) {
			t.Errorf("%v: %v, want it to say %q", c.cfg, err, c.says)
		}
		if _, gerr := NewGate(c.cfg, 4000, newRefusals()); gerr == nil || gerr.Error() != err.Error() {
			t.Errorf("%v: NewGate says %v, Validate %v", c.cfg, gerr, err)
		}
	}
	if err := signingControls().Validate(4000); err != nil {
		t.Errorf("good controls: %v", err)
	}
}

// newRefusals is the refusal counter as metrics registers it.
func newRefusals() *prometheus.CounterVec {
	return metrics.New(prometheus.NewRegistry(), func() (int64, int64) { return 0, 0 }).Refusals
}

// TestGate runs the gate alone: each query's request or refusal, its kind
// and public message, and the one counter it moves (none for a parameter
// error or a request let through).
func TestGate(t *testing.T) {
	c := signingControls()
	c.SigningKey, c.SigningKeyPrevious = "", ""
	c.AllowedSizes, c.AllowQuality = "100,200,300", false
	refusals := newRefusals()
	g, err := NewGate(c, 4000, refusals)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		query, hint string
		want        Request
		kind        fault.Kind
		says        string
		reason      string
	}{
		{"", "", Request{DPR: 1}, 0, "", ""},
		{"size=100&dpr=2", "", Request{Transform: true, Size: 100, DPR: 2, DPRQuery: true}, 0, "", ""},
		{"size=200", "1.2", Request{Transform: true, Size: 200, DPR: 1}, 0, "", ""},
		{"preset=phone&size=7&quality=1", "", Request{Transform: true, Size: 100, DPR: 1, Quality: 60, Preset: "phone"}, 0, "", ""},
		{"size=0", "", Request{}, fault.BadRequest, "size must be a whole number from 1 to 4000.", ""},
		{"preset=tablet", "", Request{}, fault.BadRequest, "preset must be one of desktop, phone.", metrics.RefusalUnknownPreset},
		{"size=100&quality=5", "", Request{}, fault.BadRequest, "quality is not accepted by this server: presets and its settings decide it.",
			metrics.RefusalQualityNotAllowed},
		{"size=150", "", Request{}, fault.BadRequest, "size × dpr must come to one of 100, 200, 300 pixels; size 150 × dpr 1 comes to 150.",
			metrics.RefusalSizeNotAllowed},
	} {
		before := counts(refusals)
		r, err := g.Request("a.jpg", values(x.query), x.hint)
		fe, _ := fault.As(err)
		switch {
		case x.says == "" && (err != nil || r != x.want):
			t.Errorf("%q: %+v %v, want %+v", x.query, r, err, x.want)
		case x.says != "" && (fe == nil || fe.Kind != x.kind || err.Error() != x.says):
			t.Errorf("%q: %v, want kind %d saying %q", x.query, err, x.kind, x.says)
		}
		after := counts(refusals)
		for _, reason := range metrics.RefusalReasons {
			want := before[reason]
			if reason == x.reason {
				want++
			}
			if after[reason] != want {
				t.Errorf("%q: refusals{reason=%q} = %v, want %v", x.query, reason, after[reason], want)
			}
		}
	}
}

// counts reads every refusal counter.
func counts(refusals *prometheus.CounterVec) map[string]float64 {
	m := map[string]float64{}
	for _, r := range metrics.RefusalReasons {
		m[r] = testutil.ToFloat64(refusals.WithLabelValues(r))
	}
	return m
}

// TestGateItem: a bulk item's path and values go through the gate as a
// URL's do; a path no file can be at is a 404 once its values are good.
func TestGateItem(t *testing.T) {
	g, err := NewGate(ControlsConfig{AllowQuality: true, SignPassthrough: true, Presets: "p=quality:5"}, 4000, newRefusals())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		path, query, prefix, rel string
		kind                     fault.Kind
		says                     string
	}{
		{"a/b.jpg", "size=10", "", "a/b.jpg", 0, ""},
		{"/static/a.jpg", "preset=p", "/static", "a.jpg", 0, ""},
		{"caf%C3%A9.jpg", "format=png", "", "café.jpg", 0, ""},
		{"a.jpg", "", "", "", fault.BadRequest, "a bulk item needs size, format, quality, preset or a shape parameter (width, height, fit, gravity, focus, background, blur)."},
		{"a.jpg", "dpr=2", "", "", fault.BadRequest, "a bulk item needs size, format, quality, preset or a shape parameter (width, height, fit, gravity, focus, background, blur)."},
		{"a%zz.jpg", "size=10", "", "", fault.BadRequest, "path has malformed percent-encoding."},
		{"../a.jpg", "size=10", "", "", fault.NotFound, "No image exists at this path. (path refused)"},
		{"../a.jpg", "size=0", "", "", fault.BadRequest, "size must be a whole number from 1 to 4000."},
		{"a.jpg", "preset=q", "", "", fault.BadRequest, "preset must be one of p."},
	} {
		rel, _, err := g.Item(x.path, x.prefix, values(x.query), "")
		fe, _ := fault.As(err)
		switch {
		case x.says == "" && (err != nil || rel != x.rel):
			t.Errorf("%s?%s: %q %v, want %q", x.path, x.query, rel, err, x.rel)
		case x.says != "" && (fe == nil || fe.Kind != x.kind || err.Error() != x.says || rel != ""):
			t.Errorf("%s?%s: %q %v, want kind %d saying %q", x.path, x.query, rel, err, x.kind, x.says)
		}
		if x.kind == fault.NotFound && !errors.Is(err, ErrBadPath) {
			t.Errorf("%s: %v does not wrap ErrBadPath", x.path, err)
		}
	}
}
