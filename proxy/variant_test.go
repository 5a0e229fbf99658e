package proxy

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"image-proxy/request"
	"image-proxy/transform"
)

// The variant, its key and ETag are the request grammar's (request's
// variant tests); these tests pin them together with transform's encoder
// fingerprints, which only this package sees both of.

// TestVariantKeyLayout pins today's keys and ETags, encoder fingerprints
// of the default settings included: a change here changes every ETag in
// every CDN, which must be a decision, not an accident (the last one: 2.0,
// per-format fingerprints and the shrink rule v2; see CHANGELOG.md).
func TestVariantKeyLayout(t *testing.T) {
	enc := request.NewEncoders(transform.DefaultConfig().Fingerprints())
	variant := func(v request.Variant) request.Variant {
		v.Encoder = enc.Of(v.Output, v.Accept)
		return v
	}
	webp := request.Output{Format: transform.FormatWebP}
	auto := request.Output{Auto: true}
	cases := []struct {
		v          request.Variant
		want, etag string
	}{
		{variant(request.Variant{Source: "file:a.jpg|1|2|3|4", Box: 400, Output: webp}),
			"v1|file:a.jpg|1|2|3|4|400|webp|auto|w80.4.v2", `"edb02383fd256d5d"`},
		{variant(request.Variant{Source: "s", Box: 0, Output: request.Output{Format: transform.FormatJPEG}, Algorithm: transform.AlgorithmThumbnail}),
			"v1|s|0|jpeg|thumbnail|j75.v2", ""},
		{variant(request.Variant{Source: "s", Box: 10, Output: request.Output{Format: transform.FormatPNG}}), "v1|s|10|png|auto|p6.v2", ""},
		{variant(request.Variant{Source: "s", Box: 10, Output: request.Output{Format: transform.FormatGIF}}), "v1|s|10|gif|auto|g.v2", ""},
		{variant(request.Variant{Source: "s", Box: 10, Output: request.Output{Format: transform.FormatAVIF}}), "v1|s|10|avif|auto|a85.6.v2", ""},
		{variant(request.Variant{Source: "s", Box: 10}), "v1|s|10|source|auto|j75.p6.w80.4.g.a85.6.v2", ""},
		{variant(request.Variant{Source: "s", Box: 10, Output: auto}), "v1|s|10|auto|auto|j75.p6.g.v2", ""},
		{variant(request.Variant{Source: "s", Box: 10, Output: auto, Accept: request.AcceptClass{WebP: true}}), "v1|s|10|auto+webp|auto|w80.4.v2", ""},
		{variant(request.Variant{Source: "s", Box: 10, Output: auto, Accept: request.AcceptClass{AVIF: true, WebP: true}, Algorithm: transform.AlgorithmLanczos3}),
			"v1|s|10|auto+avif+webp|lanczos3|a85.6.v2", ""},
		// A quality is a suffix, appended only when asked for.
		{variant(request.Variant{Source: "s", Box: 10, Output: webp, Quality: 60}), "v1|s|10|webp|auto|w80.4.v2|q60", ""},
		{variant(request.Variant{Source: "s", Box: 10, Output: webp, Quality: 100}), "v1|s|10|webp|auto|w80.4.v2|q100", ""},
	}
	for _, c := range cases {
		if got := c.v.Key(); got != c.want {
			t.Errorf("Key() = %q, want %q", got, c.want)
		}
		if got, want := c.v.ETag(), request.StrongETag(c.want); got != want {
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
	of := func(out request.Output, a request.AcceptClass) func(request.Encoders) string {
		return func(k request.Encoders) string { return k.Of(out, a) }
	}
	auto := request.Output{Auto: true}
	outputs := map[string]func(request.Encoders) string{
		"jpeg":           of(request.Output{Format: transform.FormatJPEG}, request.AcceptClass{}),
		"png":            of(request.Output{Format: transform.FormatPNG}, request.AcceptClass{}),
		"webp":           of(request.Output{Format: transform.FormatWebP}, request.AcceptClass{}),
		"gif":            of(request.Output{Format: transform.FormatGIF}, request.AcceptClass{}),
		"avif":           of(request.Output{Format: transform.FormatAVIF}, request.AcceptClass{}),
		"source":         of(request.Output{}, request.AcceptClass{}),
		"auto":           of(auto, request.AcceptClass{}),
		"auto+webp":      of(auto, request.AcceptClass{WebP: true}),
		"auto+avif":      of(auto, request.AcceptClass{AVIF: true}),
		"auto+avif+webp": of(auto, request.AcceptClass{AVIF: true, WebP: true}),
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
		// Persisted decodes change no byte (transform's
		// TestPersistedDecodeRendersTheSameBytes), so no key.
		"IntermediateSize":     {func(c *transform.Config) { c.IntermediateSize = 800 }, nil},
		"IntermediateMinBytes": {func(c *transform.Config) { c.IntermediateMinBytes = 1 }, nil},
	}
	base := request.NewEncoders(transform.DefaultConfig().Fingerprints())
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
		changed := request.NewEncoders(cfg.Fingerprints())
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

func TestVariantOptions(t *testing.T) {
	cases := []struct {
		out    request.Output
		accept request.AcceptClass
		in     transform.Format
		want   transform.Format
	}{
		{request.Output{}, request.AcceptClass{}, transform.FormatPNG, transform.FormatUnknown},
		{request.Output{Format: transform.FormatAVIF}, request.AcceptClass{}, transform.FormatPNG, transform.FormatAVIF},
		{request.Output{Auto: true}, request.AcceptClass{AVIF: true, WebP: true}, transform.FormatJPEG, transform.FormatAVIF},
		{request.Output{Auto: true}, request.AcceptClass{WebP: true}, transform.FormatJPEG, transform.FormatWebP},
		{request.Output{Auto: true}, request.AcceptClass{}, transform.FormatGIF, transform.FormatGIF},
		{request.Output{Auto: true}, request.AcceptClass{}, transform.FormatTIFF, transform.FormatJPEG},
	}
	for _, c := range cases {
		v := request.Variant{Box: 7, Output: c.out, Accept: c.accept, Algorithm: transform.AlgorithmThumbnail, Quality: 9}
		got := options(v, c.in)
		if got != (transform.Options{Box: 7, Format: c.want, Algorithm: transform.AlgorithmThumbnail, Quality: 9}) {
			t.Errorf("%+v from %s: %+v, want format %s", c.out, c.in, got, c.want)
		}
	}
}
