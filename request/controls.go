package request

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"image-proxy/setting"
)

// ControlsConfig is what the operator lets the internet ask for: presets,
// per-request quality, allowed sizes, signed URLs and the api-s3 URL form.
// Everything is off by default, so existing URLs keep working. Print it
// with %v or log it with slog: both redact the keys.
type ControlsConfig struct {
	Presets            string      `env:"IMAGE_PROXY_PRESETS"` // name=key:value,…;name=…
	AllowQuality       bool        `env:"IMAGE_PROXY_ALLOW_QUALITY" envDefault:"true"`
	AllowedSizes       string      `env:"IMAGE_PROXY_ALLOWED_SIZES"` // comma-separated boxes; empty: every size
	SnapSizes          bool        `env:"IMAGE_PROXY_SNAP_SIZES" envDefault:"false"`
	SigningKey         string      `env:"IMAGE_PROXY_SIGNING_KEY"` // empty: no signatures
	SigningKeyPrevious string      `env:"IMAGE_PROXY_SIGNING_KEY_PREVIOUS"`
	SignPassthrough    bool        `env:"IMAGE_PROXY_SIGN_PASSTHROUGH" envDefault:"true"`
	EnableRRoutes      bool        `env:"IMAGE_PROXY_ENABLE_R_ROUTES" envDefault:"false"`
	Hints              HintsConfig // client hints honoured (hints.go)
}

// minKeyBytes is the shortest signing key accepted: 32 bytes, as long as
// the HMAC-SHA256 it keys; `openssl rand -hex 32` makes one of 64.
const minKeyBytes = 32

// String redacts the keys, so a config printed whole leaks nothing.
func (c ControlsConfig) String() string {
	return fmt.Sprintf("{Presets:%s AllowQuality:%t AllowedSizes:%s SnapSizes:%t SigningKey:%s SigningKeyPrevious:%s SignPassthrough:%t EnableRRoutes:%t Hints:%+v}",
		c.Presets, c.AllowQuality, c.AllowedSizes, c.SnapSizes, setting.Redact(c.SigningKey), setting.Redact(c.SigningKeyPrevious),
		c.SignPassthrough, c.EnableRRoutes, c.Hints)
}

// GoString keeps %#v from bypassing String.
func (c ControlsConfig) GoString() string { return "request.ControlsConfig" + c.String() }

// LogValue is what slog records: the same fields, the keys redacted.
func (c ControlsConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("presets", c.Presets), slog.Bool("allow_quality", c.AllowQuality),
		slog.String("allowed_sizes", c.AllowedSizes), slog.Bool("snap_sizes", c.SnapSizes),
		slog.String("signing_key", setting.Redact(c.SigningKey)), slog.String("signing_key_previous", setting.Redact(c.SigningKeyPrevious)),
		slog.Bool("sign_passthrough", c.SignPassthrough), slog.Bool("enable_r_routes", c.EnableRRoutes),
		slog.String("client_hints", c.Hints.ClientHints), slog.Int("save_data_quality", c.Hints.SaveDataQuality))
}

// Validate checks every control against maxBox (IMAGE_PROXY_MAX_SIZE); the
// error names the variable and, for a list, the offending entry (never a
// key).
func (c ControlsConfig) Validate(maxBox int) error {
	if _, err := c.presetTable(maxBox); err != nil {
		return err
	}
	if _, err := parseSizes(c.AllowedSizes, maxBox); err != nil {
		return err
	}
	if _, err := c.Hints.parse(); err != nil {
		return err
	}
	if c.SnapSizes && c.AllowedSizes == "" {
		return &setting.Error{Name: "IMAGE_PROXY_SNAP_SIZES", Value: "true",
			Allowed: "false unless IMAGE_PROXY_ALLOWED_SIZES lists the sizes to snap to"}
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
func parseSizes(list string, maxBox int) ([]int, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var sizes []int
	for f := range strings.SplitSeq(list, ",") {
		n, ok := ParseDigits(strings.TrimSpace(f))
		if !ok || n < 1 || n > maxBox {
			return nil, &setting.Error{Name: "IMAGE_PROXY_ALLOWED_SIZES", Value: list,
				Allowed: fmt.Sprintf("a comma-separated list of whole numbers from 1 to %d (IMAGE_PROXY_MAX_SIZE), such as 360,720,1200,2200", maxBox)}
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return slices.Compact(sizes), nil
}
