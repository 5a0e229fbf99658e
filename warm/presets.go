package warm

import (
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/fault"
	"image-proxy/request"
)

// Preset is a preset to warm: its name and the request `?preset=NAME`
// resolves to on a live GET.
type Preset struct {
	Name    string
	Request request.Request
}

// ParsePresets reads "thumb,hero": names of the presets controls define
// (IMAGE_PROXY_PRESETS, and the built-ins of the /r/ routes). Each is
// resolved by the gate live requests go through, from the query
// `preset=NAME`, so the warmed variant is the one a visitor's request
// builds, whatever parameters presets come to carry. "" is no presets.
//
// Refused: a preset whose format is auto (its output depends on each
// visitor's Accept header, as format=auto is refused in the format list),
// and a name made of digits only, whose exported file would be named like
// a size's (cat-360.webp).
func ParsePresets(s string, controls request.ControlsConfig, maxBox int) ([]Preset, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	const allowed = "names of presets this server defines (IMAGE_PROXY_PRESETS), separated by commas"
	names, err := splitList(s, allowed)
	if err != nil {
		return nil, err
	}
	gate, err := presetGate(controls, maxBox)
	if err != nil {
		return nil, err
	}
	var out []Preset
	for _, name := range names {
		if onlyDigits(name) {
			return nil, &ListError{name, "presets whose names are not numbers (" + strconv.Quote(name) + " is one: its exported file would be named like a size's)"}
		}
		req, err := gate.Request("warm", request.FixedQuery(map[string][]string{"preset": {name}}), "")
		if err != nil {
			msg := err.Error()
			if fe, ok := fault.As(err); ok && fe.Msg != "" {
				msg = fe.Msg
			}
			return nil, &ListError{name, allowed + "; " + strconv.Quote(name) + " is not one (" + msg + ")"}
		}
		if req.Output.Auto {
			return nil, &ListError{name, "presets with a fixed format or none (" + strconv.Quote(name) + " has format auto, which depends on each visitor's Accept header)"}
		}
		if !slices.ContainsFunc(out, func(p Preset) bool { return p.Name == name }) {
			out = append(out, Preset{Name: name, Request: req})
		}
	}
	return out, nil
}

// presetGate is the live requests' gate without signatures: warm asks for
// `?preset=NAME` itself, with nothing to sign. Its refusals count nowhere.
func presetGate(c request.ControlsConfig, maxBox int) (*request.Gate, error) {
	c.SigningKey, c.SigningKeyPrevious = "", ""
	uncounted := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warm_preset_refusals"}, []string{"reason"})
	return request.NewGate(c, maxBox, uncounted)
}

func onlyDigits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}
