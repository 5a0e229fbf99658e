package proxy

import (
	"reflect"
	"testing"

	"image-proxy/transform"
)

// baseVariant uses format=auto so that every field, Accept included, is live.
func baseVariant() Variant {
	return Variant{
		Source:    "file:cat.jpg|1000|1|2|3",
		Box:       400,
		Output:    outputFormat{auto: true},
		Accept:    acceptClass{webp: true},
		Algorithm: transform.AlgorithmAuto,
		Encoder:   transform.DefaultConfig().Fingerprint(),
	}
}

// TestVariantKeyCoversEveryField changes each field in turn and requires a
// new key and ETag. A field added to Variant without an entry here fails
// the test, and so does one the key forgets.
func TestVariantKeyCoversEveryField(t *testing.T) {
	changes := map[string]func(*Variant){
		"Source":    func(v *Variant) { v.Source = "file:cat.jpg|1000|1|2|4" },
		"Box":       func(v *Variant) { v.Box = 401 },
		"Output":    func(v *Variant) { v.Output = outputFormat{format: transform.FormatWebP} },
		"Accept":    func(v *Variant) { v.Accept = acceptClass{avif: true, webp: true} },
		"Algorithm": func(v *Variant) { v.Algorithm = transform.AlgorithmLanczos3 },
		"Encoder":   func(v *Variant) { v.Encoder += "x" },
		"Quality":   func(v *Variant) { v.Quality = 60 },
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
		if reflect.ValueOf(v).Field(i).Interface() == reflect.ValueOf(base).Field(i).Interface() {
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

// TestVariantKeyLayout pins today's keys: a change here changes every ETag
// in every CDN, which must be a decision, not an accident.
func TestVariantKeyLayout(t *testing.T) {
	enc := "j75.w80.4.a85.6.p6.v1"
	cases := []struct {
		v    Variant
		want string
	}{
		{Variant{Source: "file:a.jpg|1|2|3|4", Box: 400, Output: outputFormat{format: transform.FormatWebP}, Encoder: enc},
			"v1|file:a.jpg|1|2|3|4|400|webp|auto|" + enc},
		{Variant{Source: "s", Box: 0, Output: outputFormat{format: transform.FormatJPEG}, Algorithm: transform.AlgorithmThumbnail, Encoder: enc},
			"v1|s|0|jpeg|thumbnail|" + enc},
		{Variant{Source: "s", Box: 10, Encoder: enc}, "v1|s|10|source|auto|" + enc},
		{Variant{Source: "s", Box: 10, Output: outputFormat{auto: true}, Encoder: enc}, "v1|s|10|auto|auto|" + enc},
		{Variant{Source: "s", Box: 10, Output: outputFormat{auto: true}, Accept: acceptClass{avif: true, webp: true}, Algorithm: transform.AlgorithmLanczos3, Encoder: enc},
			"v1|s|10|auto+avif+webp|lanczos3|" + enc},
		// A quality is a suffix, so every key above (none asks for one) is
		// byte-identical to the keys before ?quality= existed.
		{Variant{Source: "s", Box: 10, Output: outputFormat{format: transform.FormatWebP}, Encoder: enc, Quality: 60},
			"v1|s|10|webp|auto|" + enc + "|q60"},
		{Variant{Source: "s", Box: 10, Output: outputFormat{format: transform.FormatWebP}, Encoder: enc, Quality: 100},
			"v1|s|10|webp|auto|" + enc + "|q100"},
	}
	for _, c := range cases {
		if got := c.v.Key(); got != c.want {
			t.Errorf("Key() = %q, want %q", got, c.want)
		}
		if got, want := c.v.ETag(), strongETag(c.want); got != want {
			t.Errorf("ETag() = %s, want %s", got, want)
		}
	}
}

func TestVariantOptions(t *testing.T) {
	cases := []struct {
		out    outputFormat
		accept acceptClass
		in     transform.Format
		want   transform.Format
	}{
		{outputFormat{}, acceptClass{}, transform.FormatPNG, transform.FormatUnknown},
		{outputFormat{format: transform.FormatAVIF}, acceptClass{}, transform.FormatPNG, transform.FormatAVIF},
		{outputFormat{auto: true}, acceptClass{avif: true, webp: true}, transform.FormatJPEG, transform.FormatAVIF},
		{outputFormat{auto: true}, acceptClass{webp: true}, transform.FormatJPEG, transform.FormatWebP},
		{outputFormat{auto: true}, acceptClass{}, transform.FormatGIF, transform.FormatGIF},
		{outputFormat{auto: true}, acceptClass{}, transform.FormatTIFF, transform.FormatJPEG},
	}
	for _, c := range cases {
		v := Variant{Box: 7, Output: c.out, Accept: c.accept, Algorithm: transform.AlgorithmThumbnail}
		got := v.Options(c.in)
		if got != (transform.Options{Box: 7, Format: c.want, Algorithm: transform.AlgorithmThumbnail}) {
			t.Errorf("%+v from %s: %+v, want format %s", c.out, c.in, got, c.want)
		}
	}
}
