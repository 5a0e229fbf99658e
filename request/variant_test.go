package request

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"image-proxy/imageformat"
)

// fingerprints stands in for transform.Fingerprints: each format's name,
// joined in Format order, so a test can read which formats a key covers.
type fingerprints struct{}

func (fingerprints) Of(formats ...imageformat.Format) string {
	var names []string
	for f := range imageformat.Count {
		if slices.Contains(formats, f) && f.CanEncode() {
			names = append(names, f.String())
		}
	}
	return strings.Join(names, ".")
}

// baseVariant uses format=auto so that every field, Accept included, is live.
func baseVariant() Variant {
	return Variant{
		Source:    "file:cat.jpg|1000|1|2|3",
		Box:       400,
		Output:    Output{Auto: true},
		Accept:    AcceptClass{WebP: true},
		Algorithm: imageformat.AlgorithmAuto,
		Encoder:   NewEncoders(fingerprints{}).Of(Output{Auto: true}, AcceptClass{WebP: true}),
	}
}

// TestVariantKeyCoversEveryField changes each field in turn and requires a
// new key and ETag. A field added to Variant without an entry here fails
// the test, and so does one the key forgets.
func TestVariantKeyCoversEveryField(t *testing.T) {
	changes := map[string]func(*Variant){
		"Source":     func(v *Variant) { v.Source = "file:cat.jpg|1000|1|2|4" },
		"Box":        func(v *Variant) { v.Box = 401 },
		"Output":     func(v *Variant) { v.Output = Output{Format: imageformat.WebP} },
		"Accept":     func(v *Variant) { v.Accept = AcceptClass{AVIF: true, WebP: true} },
		"Algorithm":  func(v *Variant) { v.Algorithm = imageformat.AlgorithmLanczos3 },
		"Encoder":    func(v *Variant) { v.Encoder += "x" },
		"Quality":    func(v *Variant) { v.Quality = 60 },
		"Width":      func(v *Variant) { v.Width = 300 },
		"Height":     func(v *Variant) { v.Height = 200 },
		"Fit":        func(v *Variant) { v.Fit = imageformat.FitCover },
		"Gravity":    func(v *Variant) { v.Gravity = imageformat.GravityNorth },
		"Focus":      func(v *Variant) { v.Focus = imageformat.Focus{X: 0.5, Y: 0.5, Set: true} },
		"Background": func(v *Variant) { v.Background = imageformat.Background{RGBA: [4]uint8{1, 2, 3, 4}, Set: true} },
		"Blur":       func(v *Variant) { v.Blur = 2 },
		"JSON":       func(v *Variant) { v.JSON = true },
	}
	base := baseVariant()
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		change, ok := changes[name]
		if !ok {
			t.Errorf("Variant.%s has no entry in this test: add one, and make sure Key includes it", name)
			continue
		}
		v := base
		change(&v)
		if reflect.DeepEqual(reflect.ValueOf(v).Field(i).Interface(), reflect.ValueOf(base).Field(i).Interface()) {
			t.Errorf("the change for %s does not change the field", name)
		}
		if v.Key() == base.Key() || v.ETag() == base.ETag() {
			t.Errorf("changing %s leaves the key %q unchanged", name, v.Key())
		}
	}
	if len(changes) != typ.NumField() {
		t.Errorf("%d changes for %d fields: remove the stale ones", len(changes), typ.NumField())
	}
}

// TestEncodersCoverTheirOutputs: a named format keys on its own encoder
// alone, an output that follows the source on every output format, and
// format=auto on exactly the formats its Accept class can resolve to.
func TestEncodersCoverTheirOutputs(t *testing.T) {
	k := NewEncoders(fingerprints{})
	for _, c := range []struct {
		out    Output
		accept AcceptClass
		want   string
	}{
		{Output{Format: imageformat.WebP}, AcceptClass{}, "webp"},
		{Output{Format: imageformat.JPEG}, AcceptClass{AVIF: true}, "jpeg"},
		{Output{}, AcceptClass{}, "jpeg.png.webp.gif.avif"},
		{Output{Auto: true}, AcceptClass{}, "jpeg.png.gif"},
		{Output{Auto: true}, AcceptClass{WebP: true}, "webp"},
		{Output{Auto: true}, AcceptClass{AVIF: true}, "avif"},
		{Output{Auto: true}, AcceptClass{AVIF: true, WebP: true}, "avif"},
	} {
		if got := k.Of(c.out, c.accept); got != c.want {
			t.Errorf("%+v %s: %q, want %q", c.out, c.accept, got, c.want)
		}
	}
}

// TestVariantsOf: a request's variant takes the effective box, the
// server's algorithm unless the request names one, the Accept class only
// for format=auto, and the encoder fingerprint of its output.
func TestVariantsOf(t *testing.T) {
	vs := Variants{MaxBox: 1000, Algorithm: imageformat.AlgorithmThumbnail, Encoders: NewEncoders(fingerprints{})}
	const accept = "image/avif,image/webp,*/*"
	for _, c := range []struct {
		req  Request
		want Variant
	}{
		{Request{Size: 300, DPR: 2, Output: Output{Format: imageformat.PNG}},
			Variant{Source: "s", Box: 600, Output: Output{Format: imageformat.PNG}, Algorithm: imageformat.AlgorithmThumbnail, Encoder: "png"}},
		{Request{Size: 900, DPR: 1.5, Algorithm: imageformat.AlgorithmAuto, AlgorithmSet: true, Quality: 7},
			Variant{Source: "s", Box: 1000, Algorithm: imageformat.AlgorithmAuto, Encoder: "jpeg.png.webp.gif.avif", Quality: 7}},
		{Request{DPR: 1, Output: Output{Auto: true}},
			Variant{Source: "s", Output: Output{Auto: true}, Accept: AcceptClass{AVIF: true, WebP: true}, Algorithm: imageformat.AlgorithmThumbnail, Encoder: "avif"}},
	} {
		if got := vs.Of("s", c.req, accept); got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.req, got, c.want)
		}
	}
}

// TestAutoOutputsCoverResolve: format=auto keys on AcceptClass.Outputs, so
// every format Resolve can pick must be among them.
func TestAutoOutputsCoverResolve(t *testing.T) {
	for _, a := range []AcceptClass{{}, {WebP: true}, {AVIF: true}, {AVIF: true, WebP: true}} {
		for in := range imageformat.Count {
			if got := a.Resolve(in); !slices.Contains(a.Outputs(), got) {
				t.Errorf("%s resolves %s to %s, not among its outputs %v", a, in, got, a.Outputs())
			}
		}
	}
}

// TestVariantFormat: the output format for a source format: as asked,
// auto resolved by the Accept class, Unknown (the source's) when absent.
func TestVariantFormat(t *testing.T) {
	cases := []struct {
		out      Output
		accept   AcceptClass
		in, want imageformat.Format
	}{
		{Output{}, AcceptClass{}, imageformat.PNG, imageformat.Unknown},
		{Output{Format: imageformat.AVIF}, AcceptClass{}, imageformat.PNG, imageformat.AVIF},
		{Output{Auto: true}, AcceptClass{AVIF: true, WebP: true}, imageformat.JPEG, imageformat.AVIF},
		{Output{Auto: true}, AcceptClass{WebP: true}, imageformat.JPEG, imageformat.WebP},
		{Output{Auto: true}, AcceptClass{}, imageformat.GIF, imageformat.GIF},
		{Output{Auto: true}, AcceptClass{}, imageformat.TIFF, imageformat.JPEG},
	}
	for _, c := range cases {
		v := Variant{Box: 7, Output: c.out, Accept: c.accept}
		if got := v.Format(c.in); got != c.want {
			t.Errorf("%+v from %s: %s, want %s", c.out, c.in, got, c.want)
		}
	}
}
