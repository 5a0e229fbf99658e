package warm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/cache"
	"image-proxy/imageformat"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/setting"
	"image-proxy/transform"
)

var testControls = request.ControlsConfig{
	Presets: "thumb=size:80,format:png;card=size:150,quality:70;modern=size:300,format:auto;360=size:360;" +
		"social=width:1200,height:630,fit:cover,focus:0.3,0.6,format:webp;avatar=width:96,height:96,fit:cover,gravity:smart",
	AllowQuality:  true,
	EnableRRoutes: true, // the built-ins phone and desktop too
	// Signatures are the live request's business, not warm's.
	SigningKey: strings.Repeat("k", 32),
}

// TestPresetItemsHaveTheLiveKeys: a preset item's key is the one a live
// GET of ?preset=NAME computes through the gate and the variant builder.
func TestPresetItemsHaveTheLiveKeys(t *testing.T) {
	local, err := origin.OpenLocal("../data/images")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	o, err := local.Stat(context.Background(), "rocket.jpg")
	if err != nil {
		t.Fatal(err)
	}
	presets, err := ParsePresets("thumb, card,phone,thumb,social,avatar", testControls, 4000)
	if err != nil || len(presets) != 5 {
		t.Fatalf("%v %+v", err, presets)
	}
	unsigned := testControls
	unsigned.SigningKey = ""
	gate, err := request.NewGate(unsigned, 4000, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"reason"}))
	if err != nil {
		t.Fatal(err)
	}
	vs := request.Variants{MaxBox: 4000, Algorithm: imageformat.AlgorithmAuto, Encoders: request.NewEncoders(transform.DefaultConfig().Fingerprints())}
	its := items(vs, o, Spec{Presets: presets})
	for i, name := range []string{"thumb", "card", "phone", "social", "avatar"} {
		req, err := gate.Request("rocket.jpg", request.RawQuery("preset="+name), "")
		if err != nil {
			t.Fatal(err)
		}
		live := vs.Of(o.Identity, req, "image/avif,image/webp,*/*")
		if its[i].Preset != name || its[i].Variant.Key() != live.Key() {
			t.Errorf("%s: item %q key %q, live key %q", name, its[i].Preset, its[i].Variant.Key(), live.Key())
		}
	}
	if its[0].Format != imageformat.PNG || its[0].Size != 80 || its[1].Format != imageformat.Unknown || its[1].Variant.Quality != 70 {
		t.Errorf("items: %+v %+v", its[0], its[1])
	}
	// A shape preset warms the shape: its sides, fit and focus are in the key.
	if v := its[3].Variant; v.Width != 1200 || v.Height != 630 || v.Fit != imageformat.FitCover || !v.Focus.Set {
		t.Errorf("social: %+v", v)
	}
}

func TestParsePresetsRefusals(t *testing.T) {
	for _, c := range []struct{ in, item, want string }{
		{"hero", "hero", `"hero" is not one (preset must be one of 360, avatar, card, desktop, modern, phone, social, thumb.)`},
		{"thumb,,card", "thumb,,card", "names of presets this server defines"},
		{"THUMB", "THUMB", `"THUMB" is not one`},
		{"a/b", "a/b", "preset must be a name"},
		{"360", "360", "presets whose names are not numbers"},
		{"modern", "modern", `"modern" has format auto`},
	} {
		_, err := ParsePresets(c.in, testControls, 4000)
		var le *ListError
		if !errors.As(err, &le) || le.Item != c.item || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q naming %q", c.in, err, c.want, c.item)
		}
	}
	if ps, err := ParsePresets(" ", testControls, 4000); err != nil || ps != nil {
		t.Errorf("empty: %v %v", ps, err)
	}
	if _, err := ParsePresets("thumb", request.ControlsConfig{}, 4000); err == nil || !strings.Contains(err.Error(), "this server defines no presets") {
		t.Errorf("no presets defined: %v", err)
	}
}

func FuzzParsePresets(f *testing.F) {
	for _, s := range []string{"thumb", "thumb,card", "", "360", "modern", "a,,b", " phone ", "x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParsePresets(s, testControls, 4000)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.Request.Transform || p.Request.Preset != p.Name || p.Request.Output.Auto || onlyDigits(p.Name) {
				t.Errorf("%q: accepted %+v", s, p)
			}
		}
	})
}

// TestEventsExportSetting: IMAGE_PROXY_EVENTS_EXPORT_PREFIX needs the
// bucket, ends in /, and overlaps neither the originals nor the results.
func TestEventsExportSetting(t *testing.T) {
	s3 := origin.S3Config{Bucket: "photos", Prefix: "originals/"}
	results := cache.Config{Enabled: true, ResultPrefix: "results/"}
	base := Config{Sizes: "360", Formats: "webp", DPRs: "1"}
	for _, c := range []struct {
		prefix string
		s3     origin.S3Config
		want   string // "" accepted
	}{
		{"", origin.S3Config{}, ""},
		{"static/", s3, ""},
		{"static/", origin.S3Config{}, "invalid setting IMAGE_PROXY_EVENTS_EXPORT_PREFIX: it needs IMAGE_PROXY_S3_BUCKET"},
		{"static", s3, `invalid setting IMAGE_PROXY_EVENTS_EXPORT_PREFIX="static": must be a key prefix ending in /`},
		{"/static/", s3, "must be a key prefix without a leading /"},
		{"a/../b/", s3, "must be a key prefix without a leading /"},
		{"originals/static/", s3, `IMAGE_PROXY_EVENTS_EXPORT_PREFIX="originals/static/": s3://photos/originals/static/ overlaps the originals at s3://photos/originals/: ` + exportRule},
		{"results/", s3, "overlaps the results at s3://photos/results/"},
		{"/", s3, "must be a key prefix without a leading /"},
		{"static/", origin.S3Config{Bucket: "photos"}, ""},
	} {
		cfg := base
		cfg.EventsExportPrefix = c.prefix
		err := cfg.Validate(4000, results, c.s3, request.ControlsConfig{})
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %+v: %v, want %q", c.prefix, c.s3, err, c.want)
		}
	}
	cfg := base
	cfg.DPRs, cfg.Presets = "1,2", "nope"
	var se *setting.Error
	if err := cfg.Validate(4000, results, s3, testControls); !errors.As(err, &se) || se.Name != "IMAGE_PROXY_WARM_PRESETS" {
		t.Errorf("presets: %v", err)
	}
	cfg.Presets, cfg.DPRs = "thumb", "0"
	if err := cfg.Validate(4000, results, s3, testControls); !errors.As(err, &se) || se.Name != "IMAGE_PROXY_WARM_DPRS" {
		t.Errorf("dprs: %v", err)
	}
	cfg.DPRs = "2, 1"
	spec := cfg.Spec(4000, testControls)
	if len(spec.DPRs) != 2 || spec.DPRs[0] != 1 || len(spec.Presets) != 1 || spec.Presets[0].Name != "thumb" {
		t.Errorf("spec: %+v", spec)
	}
}

func TestCheckExportPrefix(t *testing.T) {
	orig, res := Place{"photos", "originals/"}, Place{"photos", "results/"}
	root := Place{"photos", ""}
	for _, c := range []struct {
		bucket, prefix string
		originals      Place
		want           string // "" accepted
	}{
		{"photos", "static/", orig, ""},
		{"photos", "originals/static/", orig, "overlaps the originals"},
		{"photos", "originals/", orig, "overlaps the originals"},
		{"photos", "orig", orig, "overlaps the originals"}, // a bare prefix of the originals'
		{"photos", "", orig, "is the whole bucket of the originals"},
		{"photos", "results/x/", orig, "overlaps the results"},
		{"photos", "r", orig, "overlaps the results"},
		{"cdn", "", orig, ""},
		{"cdn", "originals/", orig, ""},
		{"photos", "static/", root, ""},
		{"photos", "", root, "is the whole bucket of the originals"},
	} {
		err := CheckExportPrefix(c.bucket, c.prefix, c.originals, res)
		if (c.want == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), exportRule)) {
			t.Errorf("s3://%s/%s with originals %s: %v, want %q", c.bucket, c.prefix, c.originals, err, c.want)
		}
	}
	if err := CheckExportPrefix("photos", "results/", orig, Place{}); err != nil {
		t.Errorf("no result tier: %v", err)
	}
}
