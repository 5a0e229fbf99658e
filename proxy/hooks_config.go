package proxy

import (
	"fmt"
	"log/slog"

	"image-proxy/setting"
)

// HooksConfig is the settings of the endpoints that change what is
// stored: POST /events/s3 (a bucket's notifications) and POST /purge, each
// off without its token. Two tokens, since a bucket's webhook should not
// hold the right to purge anything. Print it with %v or log it with slog:
// both redact the tokens.
type HooksConfig struct {
	EventsToken string `env:"IMAGE_PROXY_EVENTS_TOKEN"` // empty: POST /events/s3 answers 404
	PurgeToken  string `env:"IMAGE_PROXY_PURGE_TOKEN"`  // empty: POST /purge answers 404
}

// String redacts the tokens, so a config printed whole leaks nothing.
func (h HooksConfig) String() string {
	return fmt.Sprintf("{EventsToken:%s PurgeToken:%s}", setting.Redact(h.EventsToken), setting.Redact(h.PurgeToken))
}

// GoString keeps %#v from bypassing String.
func (h HooksConfig) GoString() string { return "proxy.HooksConfig" + h.String() }

// LogValue is what slog records: whether each endpoint is on, never a token.
func (h HooksConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("events", h.EventsToken != ""), slog.Bool("purge", h.PurgeToken != ""))
}

func (h HooksConfig) validate() error {
	for _, t := range []struct{ name, v string }{
		{"IMAGE_PROXY_EVENTS_TOKEN", h.EventsToken},
		{"IMAGE_PROXY_PURGE_TOKEN", h.PurgeToken},
	} {
		if t.v != "" && len(t.v) < minTokenLength {
			// A secret: name the rule, never the value.
			return fmt.Errorf("invalid setting %s: must be at least %d characters, such as the output of `openssl rand -hex 32`", t.name, minTokenLength)
		}
	}
	return nil
}
