package warm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"image-proxy/imageformat"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/transform"
)

// warmURLs are the query strings a spec stands for, as a visitor sends them.
func warmURLs(spec Spec) []string {
	var qs []string
	for _, size := range spec.Sizes {
		for _, dpr := range spec.DPRs {
			for _, f := range spec.Formats {
				q := fmt.Sprintf("size=%d&format=%s", size, f)
				if dpr != 1 {
					q += fmt.Sprintf("&dpr=%g", dpr)
				}
				qs = append(qs, q)
			}
		}
	}
	return qs
}

// TestWarmItemsHaveTheLiveKeys: each item's variant has the key a live
// request for its URL computes with the same builder (proxy.Config.Variants
// gives both the server and the warmer theirs).
func TestWarmItemsHaveTheLiveKeys(t *testing.T) {
	local, err := origin.OpenLocal("../data/images")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	o, err := local.Stat(context.Background(), "rocket.jpg")
	if err != nil {
		t.Fatal(err)
	}
	vs := request.Variants{MaxBox: 4000, Algorithm: imageformat.AlgorithmAuto, Encoders: request.NewEncoders(transform.DefaultConfig().Fingerprints())}
	for _, spec := range []Spec{
		{Sizes: []int{360, 720, 1200, 2200}, DPRs: []float64{1}, Formats: []transform.Format{transform.FormatWebP}},
		{Sizes: []int{1, 3000, 4000}, DPRs: []float64{1, 1.5, 2, 10}, Formats: []transform.Format{transform.FormatAVIF, transform.FormatJPEG, transform.FormatPNG}},
	} {
		items := items(vs, o, spec)
		qs := warmURLs(spec)
		if len(items) != len(qs) {
			t.Fatalf("%d items for %d URLs", len(items), len(qs))
		}
		for i, q := range qs {
			req, err := request.Parse(request.RawQuery(q), "", vs.MaxBox)
			if err != nil {
				t.Fatal(err)
			}
			live := vs.Of(o.Identity, req, "image/avif,image/webp,*/*")
			if got := items[i].Variant.Key(); got != live.Key() {
				t.Errorf("%s: warm key %q, live key %q", q, got, live.Key())
			}
		}
	}
}

func TestParseWarmLists(t *testing.T) {
	sizes := []struct {
		in   string
		want []int
		bad  string
	}{
		{"360,720,1200,2200", []int{360, 720, 1200, 2200}, ""},
		{"720, 360,720", []int{360, 720}, ""},
		{"4000", []int{4000}, ""},
		{"0", nil, "0"}, {"-1", nil, "-1"}, {"abc", nil, "abc"}, {"99999", nil, "99999"}, {"4001", nil, "4001"},
		{"1.5", nil, "1.5"}, {" ", nil, " "}, {"360,,720", nil, "360,,720"}, {"+5", nil, "+5"}, {"1e3", nil, "1e3"},
	}
	for _, c := range sizes {
		got, err := ParseSizes(c.in, 4000)
		var le *ListError
		switch {
		case c.bad == "" && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("sizes %q: %v %v, want %v", c.in, got, err, c.want)
		case c.bad != "" && (!errors.As(err, &le) || le.Item != c.bad || !strings.Contains(err.Error(), "from 1 to 4000")):
			t.Errorf("sizes %q: %v, want an error naming %q", c.in, err, c.bad)
		}
	}
	formats := map[string]string{"webp": "", "webp,avif,jpg,png": "", "WEBP, avif": "", "gif2": "gif2", "auto": "auto", "webp,": "webp,", "svg": "svg"}
	for in, bad := range formats {
		_, err := ParseFormats(in)
		var le *ListError
		if (bad == "") != (err == nil) || bad != "" && (!errors.As(err, &le) || le.Item != bad || !strings.Contains(err.Error(), "webp")) {
			t.Errorf("formats %q: %v", in, err)
		}
	}
	dprs := map[string]string{"1,2": "", "1.5": "", "10": "", "0.5": "0.5", "11": "11", "x": "x", "NaN": "NaN", "-1": "-1"}
	for in, bad := range dprs {
		_, err := ParseDPRs(in)
		var le *ListError
		if (bad == "") != (err == nil) || bad != "" && (!errors.As(err, &le) || le.Item != bad) {
			t.Errorf("dpr %q: %v", in, err)
		}
	}
}

func FuzzParseWarmList(f *testing.F) {
	for _, s := range []string{"360,720", "0", "abc", "1.5,2", "webp,avif", " 1 , 2 ", ",", "99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if sizes, err := ParseSizes(s, 4000); err == nil {
			if len(sizes) == 0 || !slices.IsSorted(sizes) || sizes[0] < 1 || sizes[len(sizes)-1] > 4000 {
				t.Errorf("%q: accepted %v", s, sizes)
			}
		}
		if dprs, err := ParseDPRs(s); err == nil {
			if len(dprs) == 0 || dprs[0] < 1 || dprs[len(dprs)-1] > 10 {
				t.Errorf("%q: accepted %v", s, dprs)
			}
		}
		if fs, err := ParseFormats(s); err == nil {
			for _, f := range fs {
				if !f.CanEncode() {
					t.Errorf("%q: accepted %v", s, f)
				}
			}
		}
	})
}
