package warm

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"image-proxy/imageformat"
	"image-proxy/origin"
	"image-proxy/request"
	"image-proxy/setting"
)

// Config is the pre-rendering part of the settings: what `image-proxy
// warm` renders when no flag says otherwise, and whether `serve` warms
// changed files in the background.
type Config struct {
	Sizes    string `env:"IMAGE_PROXY_WARM_SIZES" envDefault:"360,720,1200,2200"`
	Formats  string `env:"IMAGE_PROXY_WARM_FORMATS" envDefault:"webp"`
	DPRs     string `env:"IMAGE_PROXY_WARM_DPRS" envDefault:"1"`
	Presets  string `env:"IMAGE_PROXY_WARM_PRESETS"` // preset names, comma-separated; empty: none
	OnChange bool   `env:"IMAGE_PROXY_WARM_ON_CHANGE" envDefault:"false"`

	// EventsExportPrefix is where S3 events also export static variants,
	// in IMAGE_PROXY_S3_BUCKET; empty: events warm the result tiers only.
	// It may not overlap the originals' or the results' prefix
	// (CheckExportPrefix).
	EventsExportPrefix string `env:"IMAGE_PROXY_EVENTS_EXPORT_PREFIX"`
}

// Spec is the configured default of what to warm (Validate has passed):
// controls are the server's (IMAGE_PROXY_PRESETS), which the presets named
// in IMAGE_PROXY_WARM_PRESETS are looked up in.
func (c Config) Spec(maxBox int, controls request.ControlsConfig) Spec {
	sizes, _ := ParseSizes(c.Sizes, maxBox)
	formats, _ := ParseFormats(c.Formats)
	dprs, _ := ParseDPRs(c.DPRs)
	presets, _ := ParsePresets(c.Presets, controls, maxBox)
	return Spec{Sizes: sizes, DPRs: dprs, Formats: formats, Presets: presets}
}

// Spec is what to pre-render of every source: each size × dpr × format,
// as `?size=S&dpr=D&format=F` would ask for it, and each preset, as
// `?preset=NAME` would.
type Spec struct {
	Sizes   []int
	DPRs    []float64
	Formats []imageformat.Format
	Presets []Preset
	Force   bool // render even what is cached (or exported) and intact
}

// ListError is a bad item of a comma-separated list: the item and what is
// allowed.
type ListError struct{ Item, Allowed string }

func (e *ListError) Error() string { return fmt.Sprintf("%q: must be %s", e.Item, e.Allowed) }

// listSetting is a bad list setting: the variable, its value and what the
// list's items may be.
func listSetting(name, value string, err error) error {
	return &setting.Error{Name: name, Value: value, Allowed: err.(*ListError).Allowed}
}

// splitList splits a comma-separated list, refusing an empty one or an
// empty item. Each item is trimmed of spaces.
func splitList(s, allowed string) ([]string, error) {
	var items []string
	for it := range strings.SplitSeq(s, ",") {
		it = strings.TrimSpace(it)
		if it == "" {
			return nil, &ListError{s, allowed}
		}
		items = append(items, it)
	}
	return items, nil
}

// ParseSizes reads "360,720": whole numbers from 1 to maxBox, the same rule
// as ?size=. The result is sorted and without repeats.
func ParseSizes(s string, maxBox int) ([]int, error) {
	allowed := "whole numbers from 1 to " + strconv.Itoa(maxBox) + " (IMAGE_PROXY_MAX_SIZE), separated by commas, such as 360,720,1200"
	items, err := splitList(s, allowed)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, it := range items {
		n, ok := request.ParseDigits(it)
		if !ok || n < 1 || n > maxBox {
			return nil, &ListError{it, allowed}
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ParseDPRs reads "1,2": numbers from 1.0 to 10.0, the rule of ?dpr=.
func ParseDPRs(s string) ([]float64, error) {
	const allowed = "numbers from 1.0 to 10.0 separated by commas, such as 1,2"
	items, err := splitList(s, allowed)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, it := range items {
		d, ok := request.ParseDecimal(it)
		if !ok || d < 1 || d > 10 {
			return nil, &ListError{it, allowed}
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ParseFormats reads "webp,avif": output formats of the table (auto is not
// one: it depends on each visitor's Accept header).
func ParseFormats(s string) ([]imageformat.Format, error) {
	allowed := "output formats separated by commas, from " + strings.Join(imageformat.OutputNames(), ", ")
	items, err := splitList(s, allowed)
	if err != nil {
		return nil, err
	}
	var out []imageformat.Format
	for _, it := range items {
		f, ok := imageformat.Parse(it)
		if !ok {
			return nil, &ListError{it, allowed}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// Item is one variant of one source: what the URL would ask for, and the
// Variant the server builds for that URL (its Key is the cache key).
type Item struct {
	Preset  string             // ?preset=Preset; "" for a size item
	Size    int                // the effective size (a preset's may be 0: the source's)
	DPR     float64            // the effective dpr
	Format  imageformat.Format // Unknown when the output follows the source's format
	Variant request.Variant
}

// items builds every variant of spec for o through vs, with the request
// `?size=S&format=F[&dpr=D]` would parse to, and the one each preset's
// `?preset=NAME` resolves to, so each key is the one a live request
// computes.
func items(vs request.Variants, o origin.Original, spec Spec) []Item {
	var out []Item
	for _, size := range spec.Sizes {
		for _, dpr := range spec.DPRs {
			for _, f := range spec.Formats {
				req := request.Request{Transform: true, Size: size, DPR: dpr, DPRQuery: dpr != 1,
					Output: request.Output{Format: f}}
				out = append(out, Item{Size: size, DPR: dpr, Format: f, Variant: vs.Of(o.Identity, req, "")})
			}
		}
	}
	for _, p := range spec.Presets {
		out = append(out, Item{Preset: p.Name, Size: p.Request.Size, DPR: p.Request.DPR, Format: p.Request.Output.Format,
			Variant: vs.Of(o.Identity, p.Request, "")})
	}
	return out
}
