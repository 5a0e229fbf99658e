package proxy

import (
	"reflect"
	"slices"
	"testing"
	"time"

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
		Encoder:   newEncoderKeys(transform.DefaultConfig().Fingerprints()).of(outputFormat{auto: true}, acceptClass{webp: true}),
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

// TestVariantKeyLayout pins today's keys and ETags, encoder fingerprints
// of the default settings included: a change here changes every ETag in
// every CDN, which must be a decision, not an accident (the last one: 2.0,
// per-format fingerprints and the shrink rule v2; see CHANGELOG.md).
func TestVariantKeyLayout(t *testing.T) {
	enc := newEncoderKeys(transform.DefaultConfig().Fingerprints())
	variant := func(v Variant) Variant {
		v.Encoder = enc.of(v.Output, v.Accept)
		return v
	}
	webp := outputFormat{format: transform.FormatWebP}
	cases := []struct {
		v          Variant
		want, etag string
	}{
		{variant(Variant{Source: "file:a.jpg|1|2|3|4", Box: 400, Output: webp}),
			"v1|file:a.jpg|1|2|3|4|400|webp|auto|w80.4.v2", `"edb02383fd256d5d"`},
		{variant(Variant{Source: "s", Box: 0, Output: outputFormat{format: transform.FormatJPEG}, Algorithm: transform.AlgorithmThumbnail}),
			"v1|s|0|jpeg|thumbnail|j75.v2", ""},
		{variant(Variant{Source: "s", Box: 10, Output: outputFormat{format: transform.FormatPNG}}), "v1|s|10|png|auto|p6.v2", ""},
		{variant(Variant{Source: "s", Box: 10, Output: outputFormat{format: transform.FormatGIF}}), "v1|s|10|gif|auto|g.v2", ""},
		{variant(Variant{Source: "s", Box: 10, Output: outputFormat{format: transform.FormatAVIF}}), "v1|s|10|avif|auto|a85.6.v2", ""},
		{variant(Variant{Source: "s", Box: 10}), "v1|s|10|source|auto|j75.p6.w80.4.g.a85.6.v2", ""},
		{variant(Variant{Source: "s", Box: 10, Output: outputFormat{auto: true}}), "v1|s|10|auto|auto|j75.p6.g.v2", ""},
		{variant(Variant{Source: "s", Box: 10, Output: outputFormat{auto: true}, Accept: acceptClass{webp: true}}), "v1|s|10|auto+webp|auto|w80.4.v2", ""},
		{variant(Variant{Source: "s", Box: 10, Output: outputFormat{auto: true}, Accept: acceptClass{avif: true, webp: true}, Algorithm: transform.AlgorithmLanczos3}),
			"v1|s|10|auto+avif+webp|lanczos3|a85.6.v2", ""},
		// A quality is a suffix, appended only when asked for.
		{variant(Variant{Source: "s", Box: 10, Output: webp, Quality: 60}), "v1|s|10|webp|auto|w80.4.v2|q60", ""},
		{variant(Variant{Source: "s", Box: 10, Output: webp, Quality: 100}), "v1|s|10|webp|auto|w80.4.v2|q100", ""},
	}
	for _, c := range cases {
		if got := c.v.Key(); got != c.want {
			t.Errorf("Key() = %q, want %q", got, c.want)
		}
		if got, want := c.v.ETag(), strongETag(c.want); got != want {
			t.Errorf("ETag() = %s, want %s", got, want)
		}
		if c.etag != "" && c.v.ETag() != c.etag {
			t.Errorf("ETag() of %q = %s, want %s", c.want, c.v.ETag(), c.etag)
		}
	}
}

// TestSettingsRekeyOnlyTheirFormats changes each transform setting in turn
// and requires that exactly the keys of the outputs whose bytes it may
// change move: a named format, an output that follows the source (any
// format), and format=auto by Accept class. A new Config field without an
// entry here fails the test.
func TestSettingsRekeyOnlyTheirFormats(t *testing.T) {
	outputs := map[string]func(encoderKeys) string{
		"jpeg":           func(k encoderKeys) string { return k.of(outputFormat{format: transform.FormatJPEG}, acceptClass{}) },
		"png":            func(k encoderKeys) string { return k.of(outputFormat{format: transform.FormatPNG}, acceptClass{}) },
		"webp":           func(k encoderKeys) string { return k.of(outputFormat{format: transform.FormatWebP}, acceptClass{}) },
		"gif":            func(k encoderKeys) string { return k.of(outputFormat{format: transform.FormatGIF}, acceptClass{}) },
		"avif":           func(k encoderKeys) string { return k.of(outputFormat{format: transform.FormatAVIF}, acceptClass{}) },
		"source":         func(k encoderKeys) string { return k.of(outputFormat{}, acceptClass{}) },
		"auto":           func(k encoderKeys) string { return k.of(outputFormat{auto: true}, acceptClass{}) },
		"auto+webp":      func(k encoderKeys) string { return k.of(outputFormat{auto: true}, acceptClass{webp: true}) },
		"auto+avif":      func(k encoderKeys) string { return k.of(outputFormat{auto: true}, acceptClass{avif: true}) },
		"auto+avif+webp": func(k encoderKeys) string { return k.of(outputFormat{auto: true}, acceptClass{avif: true, webp: true}) },
	}
	cases := map[string]struct {
		change func(*transform.Config)
		moves  []string
	}{
		"JPEGQuality":     {func(c *transform.Config) { c.JPEGQuality = 90 }, []string{"jpeg", "source", "auto"}},
		"WebPQuality":     {func(c *transform.Config) { c.WebPQuality = 70 }, []string{"webp", "source", "auto+webp"}},
		"WebPEffort":      {func(c *transform.Config) { c.WebPEffort = 6 }, []string{"webp", "source", "auto+webp"}},
		"AVIFQuality":     {func(c *transform.Config) { c.AVIFQuality = 60 }, []string{"avif", "source", "auto+avif", "auto+avif+webp"}},
		"AVIFSpeed":       {func(c *transform.Config) { c.AVIFSpeed = 9 }, []string{"avif", "source", "auto+avif", "auto+avif+webp"}},
		"PNGCompression":  {func(c *transform.Config) { c.PNGCompression = 9 }, []string{"png", "source", "auto"}},
		"MaxSourcePixels": {func(c *transform.Config) { c.MaxSourcePixels = 1000 }, nil},
		"DecodeCacheSize": {func(c *transform.Config) { c.DecodeCacheSize = 0 }, nil},
		"DecodeCacheTTL":  {func(c *transform.Config) { c.DecodeCacheTTL = time.Minute }, nil},
	}
	base := newEncoderKeys(transform.DefaultConfig().Fingerprints())
	typ := reflect.TypeFor[transform.Config]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		c, ok := cases[name]
		if !ok {
			t.Errorf("transform.Config.%s has no entry here: say which outputs it re-keys", name)
			continue
		}
		cfg := transform.DefaultConfig()
		c.change(&cfg)
		if reflect.ValueOf(cfg).Field(i).Interface() == reflect.ValueOf(transform.DefaultConfig()).Field(i).Interface() {
			t.Errorf("the change for %s does not change the field", name)
		}
		changed := newEncoderKeys(cfg.Fingerprints())
		var moved []string
		for out, key := range outputs {
			if key(base) != key(changed) {
				moved = append(moved, out)
			}
		}
		slices.Sort(moved)
		want := slices.Sorted(slices.Values(c.moves))
		if !slices.Equal(moved, want) {
			t.Errorf("%s re-keys %v, want %v", name, moved, want)
		}
	}
}

// TestAutoOutputsCoverResolve: format=auto keys on acceptClass.outputs, so
// every format resolve can pick must be among them.
func TestAutoOutputsCoverResolve(t *testing.T) {
	for _, a := range []acceptClass{{}, {webp: true}, {avif: true}, {avif: true, webp: true}} {
		for in := transform.FormatUnknown; in <= transform.FormatSVG; in++ {
			if got := a.resolve(in); !slices.Contains(a.outputs(), got) {
				t.Errorf("%s resolves %s to %s, not among its outputs %v", a, in, got, a.outputs())
			}
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
