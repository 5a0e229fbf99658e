package proxy

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/fault"
	"image-proxy/metrics"
)

// ControlsConfig is what the operator lets the internet ask for: presets,
// per-request quality, allowed sizes, signed URLs and the api-s3 URL form.
// Everything is off by default, so existing URLs keep working. Print it
// with %v or log it with slog: both redact the keys.
type ControlsConfig struct {
	Presets            string `env:"IMAGE_PROXY_PRESETS"` // name=key:value,…;name=…
	AllowQuality       bool   `env:"IMAGE_PROXY_ALLOW_QUALITY" envDefault:"true"`
	AllowedSizes       string `env:"IMAGE_PROXY_ALLOWED_SIZES"` // comma-separated boxes; empty: every size
	SnapSizes          bool   `env:"IMAGE_PROXY_SNAP_SIZES" envDefault:"false"`
	SigningKey         string `env:"IMAGE_PROXY_SIGNING_KEY"` // empty: no signatures
	SigningKeyPrevious string `env:"IMAGE_PROXY_SIGNING_KEY_PREVIOUS"`
	SignPassthrough    bool   `env:"IMAGE_PROXY_SIGN_PASSTHROUGH" envDefault:"true"`
	EnableRRoutes      bool   `env:"IMAGE_PROXY_ENABLE_R_ROUTES" envDefault:"false"`
}

// minKeyBytes is the shortest signing key accepted: 32 bytes, as long as
// the HMAC-SHA256 it keys; `openssl rand -hex 32` makes one of 64.
const minKeyBytes = 32

// String redacts the keys, so a config printed whole leaks nothing.
func (c ControlsConfig) String() string {
	return fmt.Sprintf("{Presets:%s AllowQuality:%t AllowedSizes:%s SnapSizes:%t SigningKey:%s SigningKeyPrevious:%s SignPassthrough:%t EnableRRoutes:%t}",
		c.Presets, c.AllowQuality, c.AllowedSizes, c.SnapSizes, redact(c.SigningKey), redact(c.SigningKeyPrevious), c.SignPassthrough, c.EnableRRoutes)
}

// GoString keeps %#v from bypassing String.
func (c ControlsConfig) GoString() string { return "proxy.ControlsConfig" + c.String() }

// LogValue is what slog records: the same fields, the keys redacted.
func (c ControlsConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("presets", c.Presets), slog.Bool("allow_quality", c.AllowQuality),
		slog.String("allowed_sizes", c.AllowedSizes), slog.Bool("snap_sizes", c.SnapSizes),
		slog.String("signing_key", redact(c.SigningKey)), slog.String("signing_key_previous", redact(c.SigningKeyPrevious)),
		slog.Bool("sign_passthrough", c.SignPassthrough), slog.Bool("enable_r_routes", c.EnableRRoutes))
}

// validate checks every control; the error names the variable and, for a
// list, the offending entry (never a key).
func (c ControlsConfig) validate(maxBox int) error {
	if _, err := c.presetTable(maxBox); err != nil {
		return err
	}
	if _, err := parseSizes(c.AllowedSizes, maxBox); err != nil {
		return err
	}
	if c.SnapSizes && c.AllowedSizes == "" {
		return settingError("IMAGE_PROXY_SNAP_SIZES", true, "false unless IMAGE_PROXY_ALLOWED_SIZES lists the sizes to snap to")
	}
	if c.SigningKeyPrevious != "" && c.SigningKey == "" {
		return fmt.Errorf("invalid setting IMAGE_PROXY_SIGNING_KEY_PREVIOUS: it needs IMAGE_PROXY_SIGNING_KEY (the key that replaced it)")
	}
	for _, k := range []struct{ name, value string }{
		{"IMAGE_PROXY_SIGNING_KEY", c.SigningKey},
		{"IMAGE_PROXY_SIGNING_KEY_PREVIOUS", c.SigningKeyPrevious},
	} {
		if k.value != "" && len(k.value) < minKeyBytes {
			// A key is a secret: name the rule, not the value.
			return fmt.Errorf("invalid setting %s: must be at least %d bytes, such as the output of `openssl rand -hex 32`", k.name, minKeyBytes)
		}
	}
	return nil
}

// parseSizes reads IMAGE_PROXY_ALLOWED_SIZES: ascending, without repeats;
// nil when unset.
func parseSizes(setting string, maxBox int) ([]int, error) {
	if strings.TrimSpace(setting) == "" {
		return nil, nil
	}
	var sizes []int
	for f := range strings.SplitSeq(setting, ",") {
		n, ok := parseDigits(strings.TrimSpace(f))
		if !ok || n < 1 || n > maxBox {
			return nil, settingError("IMAGE_PROXY_ALLOWED_SIZES", setting,
				fmt.Sprintf("a comma-separated list of whole numbers from 1 to %d (IMAGE_PROXY_MAX_SIZE), such as 360,720,1200,2200", maxBox))
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return slices.Compact(sizes), nil
}

// refusal is a request the controls turn away; reason is its metrics label.
type refusal struct {
	reason string
	kind   fault.Kind
	msg    string
}

func (r *refusal) Error() string { return r.msg }

// gate holds the controls in the form requests are checked against. It is
// built once and never written after.
type gate struct {
	maxBox          int
	presets         presetTable
	allowQuality    bool
	sizes           []int // ascending; nil = every size
	snap            bool
	keys            [][]byte // the current key first; nil = no signatures
	signPassthrough bool
	refusals        *prometheus.CounterVec
}

func newGate(cfg Config, m *metrics.Metrics) (*gate, error) {
	c := cfg.Controls
	if err := c.validate(cfg.MaxBox); err != nil {
		return nil, err
	}
	presets, _ := c.presetTable(cfg.MaxBox)
	sizes, _ := parseSizes(c.AllowedSizes, cfg.MaxBox)
	g := &gate{maxBox: cfg.MaxBox, presets: presets, allowQuality: c.AllowQuality, sizes: sizes,
		snap: c.SnapSizes, signPassthrough: c.SignPassthrough, refusals: m.Refusals}
	for _, k := range []string{c.SigningKey, c.SigningKeyPrevious} {
		if k != "" {
			g.keys = append(g.keys, []byte(k))
		}
	}
	return g, nil
}

// request is the one way from an image path and its query to the request to
// serve, for every URL form: syntax and ranges (parseRequest), the
// signature, the preset, the quality and the size rules, in that order.
// rel is the decoded path below the root (resolvePath's result), q the
// query, secCHDPR the raw Sec-CH-DPR header. Every refusal is counted.
func (g *gate) request(rel string, q queryValues, secCHDPR string) (request, error) {
	r, err := parseRequest(q, secCHDPR, g.maxBox)
	if err != nil {
		return r, err
	}
	if err := g.verify(rel, r, q); err != nil {
		return r, g.refuse(err)
	}
	r, err = g.apply(r)
	if err != nil {
		return r, g.refuse(err)
	}
	return r, nil
}

func (g *gate) refuse(err error) error {
	if rf, ok := err.(*refusal); ok {
		g.refusals.WithLabelValues(rf.reason).Inc()
	}
	return err
}

// apply resolves the preset, then checks the quality and the size.
func (g *gate) apply(r request) (request, error) {
	var p request
	if r.preset != "" {
		var ok bool
		if p, ok = g.presets[r.preset]; !ok {
			return r, &refusal{metrics.RefusalUnknownPreset, fault.BadRequest, g.presets.unknownMessage()}
		}
	}
	if r.quality > 0 && p.quality == 0 && !g.allowQuality {
		return r, &refusal{metrics.RefusalQualityNotAllowed, fault.BadRequest,
			"quality is not accepted by this server: presets and its settings decide it."}
	}
	r = p.over(r)
	if p.size > 0 {
		return r, nil // a preset's size is always allowed
	}
	return g.checkSize(r)
}

// checkSize holds the effective box to the allowed sizes: as asked, or
// snapped up to the next one. A Sec-CH-DPR hint is advisory and never the
// reason for a refusal: when its box is not allowed, the size is tried at
// dpr 1.
func (g *gate) checkSize(r request) (request, error) {
	if g.sizes == nil || r.size == 0 {
		return r, nil
	}
	box := r.box(g.maxBox)
	if slices.Contains(g.sizes, box) {
		return r, nil
	}
	if g.snap {
		i, _ := slices.BinarySearch(g.sizes, box)
		r.size, r.dpr = g.sizes[min(i, len(g.sizes)-1)], 1
		return r, nil
	}
	if !r.dprQuery && slices.Contains(g.sizes, r.size) {
		r.dpr = 1
		return r, nil
	}
	list := make([]string, len(g.sizes))
	for i, n := range g.sizes {
		list[i] = strconv.Itoa(n)
	}
	return r, &refusal{metrics.RefusalSizeNotAllowed, fault.BadRequest,
		"size × dpr must come to one of " + strings.Join(list, ", ") + " pixels; size " + strconv.Itoa(r.size) +
			" × dpr " + strconv.FormatFloat(r.dpr, 'f', -1, 64) + " comes to " + strconv.Itoa(box) + "."}
}
