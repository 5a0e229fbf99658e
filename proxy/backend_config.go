package proxy

import (
	"fmt"
	"log/slog"

	"image-proxy/setting"
)

// BackendConfig is the settings of the endpoints for backends: POST
// /convert (off without a token) and POST /bulk. Print it with %v or log it
// with slog: both redact the token.
type BackendConfig struct {
	ConvertToken    string `env:"IMAGE_PROXY_CONVERT_TOKEN"` // empty: POST /convert answers 404
	ConvertMaxBytes int64  `env:"IMAGE_PROXY_CONVERT_MAX_BYTES" envDefault:"26214400"`
	BulkMaxItems    int    `env:"IMAGE_PROXY_BULK_MAX_ITEMS" envDefault:"50"`
}

// minTokenLength keeps a guessable token out: 16 characters of a random
// alphabet are far beyond an online guess.
const minTokenLength = 16

// ConvertEnabled reports whether POST /convert is served.
func (b BackendConfig) ConvertEnabled() bool { return b.ConvertToken != "" }

// String redacts the token, so a config printed whole leaks nothing.
func (b BackendConfig) String() string {
	return fmt.Sprintf("{ConvertToken:%s ConvertMaxBytes:%d BulkMaxItems:%d}", setting.Redact(b.ConvertToken), b.ConvertMaxBytes, b.BulkMaxItems)
}

// GoString keeps %#v from bypassing String.
func (b BackendConfig) GoString() string { return "proxy.BackendConfig" + b.String() }

// LogValue is what slog records: the same fields, the token redacted.
func (b BackendConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("convert_token", setting.Redact(b.ConvertToken)),
		slog.Int64("convert_max_bytes", b.ConvertMaxBytes), slog.Int("bulk_max_items", b.BulkMaxItems))
}

func (b BackendConfig) validate() error {
	if b.ConvertToken != "" && len(b.ConvertToken) < minTokenLength {
		// A secret: name the rule, never the value.
		return fmt.Errorf("invalid setting IMAGE_PROXY_CONVERT_TOKEN: must be at least %d characters, such as the output of `openssl rand -hex 32`", minTokenLength)
	}
	if err := setting.CheckRange("IMAGE_PROXY_CONVERT_MAX_BYTES", b.ConvertMaxBytes, 1024, 1<<32); err != nil {
		return err
	}
	return setting.CheckRange("IMAGE_PROXY_BULK_MAX_ITEMS", int64(b.BulkMaxItems), 1, 1000)
}
