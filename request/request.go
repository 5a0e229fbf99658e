// Package request is image-proxy's URL grammar as pure functions: path
// safety, the query and its canonical form, presets, allowed sizes,
// quality, signatures (and SignURL), the /r/ form, and the Variant a
// request names with its cache key and ETag. The gate (gate.go) applies
// the operator's controls to every URL form the same way.
//
// It imports no HTTP framework, no libvips binding and no cache: the HTTP
// layer (proxy) hands it strings and gets values and errors back. Its
// errors are fault errors (fault.BadRequest, fault.Forbidden,
// fault.NotFound) whose text is the public message.
package request

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"image-proxy/fault"
	"image-proxy/imageformat"
)

// Request is everything the query string and headers say about the wanted
// output, already validated. It holds no references into the caller's
// buffers. The zero value with DPR 1 is a plain passthrough.
type Request struct {
	Transform    bool    // size, format, quality, preset or a shape parameter present
	Size         int     // 0 = absent
	DPR          float64 // 1 to 10
	DPRQuery     bool    // dpr came from the query (so Sec-CH-DPR does not matter)
	Output       Output
	Algorithm    imageformat.Algorithm
	AlgorithmSet bool   // resize_algorithm present
	Quality      int    // 1-100; 0 = absent (the format's setting)
	Preset       string // ?preset= as given, checked against the presets by the gate; "" = absent
	// JSON: format=json, the answer mode that describes the source and
	// the output the other parameters make instead of encoding it
	// (facts.go). Output then stays what a preset sets, or the source's.
	JSON bool

	// The shape (shape.go): each zero when absent.
	Width, Height int                    // the box's sides before dpr; 0 = absent
	Fit           imageformat.Fit        // FitUnset behaves as contain
	Gravity       imageformat.Gravity    // GravityUnset is the centre
	Focus         imageformat.Focus      // a focal point of the upright source
	Background    imageformat.Background // unset: opaque white
	Blur          float64                // Gaussian sigma in output pixels; 0 = none
}

// Output is the requested format before "auto" is resolved.
type Output struct {
	Auto   bool
	Format imageformat.Format // Unknown with !Auto = absent (source default)
}

// parsedKeys are the query parameters Parse reads, each through single:
// the documentation's parameter list is checked against them (with "sig",
// which the gate reads: QueryKeys), and TestQueryKeysAreWhatTheCodeReads
// holds the code to them.
var parsedKeys = []string{"background", "blur", "dpr", "fit", "focus", "format", "gravity", "height",
	"preset", "quality", "resize_algorithm", "size", "width"}

// QueryKeys lists, sorted, every query parameter the grammar reads: those
// Parse reads and sig, which the gate's signature check reads.
func QueryKeys() []string {
	return slices.Sorted(slices.Values(append(slices.Clone(parsedKeys), "sig")))
}

// badRequest is a parameter error: its text is the public message.
func badRequest(msg string) error { return fault.New(fault.BadRequest, msg, nil) }

// formatError lists what ?format= accepts, from the format table.
var formatError = "format must be one of " + strings.Join(imageformat.OutputNames(), ", ") + ", auto or json."

// parseFormat reads ?format=: an output format of the table, or auto.
func parseFormat(v string) (Output, bool) {
	if strings.EqualFold(v, "auto") {
		return Output{Auto: true}, true
	}
	f, ok := imageformat.Parse(v)
	return Output{Format: f}, ok
}

// Parse validates the known parameters; unknown ones are ignored so CDN
// cache-busters (?v=3) keep working. secCHDPR is the raw header value. It
// checks syntax and ranges only: whether this server accepts a preset, a
// quality or a size is the gate's decision.
func Parse(q *Query, secCHDPR string, maxBox int) (Request, error) {
	var r Request
	r.DPR = 1
	if err := parseControls(q, &r); err != nil {
		return r, err
	}

	if v, ok, err := single(q, "size"); err != nil {
		return r, err
	} else if ok {
		n, good := ParseDigits(v)
		if !good || n < 1 || n > maxBox {
			return r, badRequest("size must be a whole number from 1 to " + strconv.Itoa(maxBox) + ".")
		}
		r.Size = n
		r.Transform = true
	}

	if v, ok, err := single(q, "format"); err != nil {
		return r, err
	} else if ok && isJSON(v) {
		r.JSON = true
	} else if ok {
		f, good := parseFormat(v)
		if !good {
			return r, badRequest(formatError)
		}
		r.Output = f
		r.Transform = true
	}

	if v, ok, err := single(q, "dpr"); err != nil {
		return r, err
	} else if ok {
		d, good := ParseDecimal(v)
		if !good || d < 1 || d > 10 {
			return r, badRequest("dpr must be a number from 1.0 to 10.0.")
		}
		r.DPR = d
		r.DPRQuery = true
	} else if d, good := ParseDecimal(strings.TrimSpace(secCHDPR)); good {
		// A client hint is advisory: clamp it, never refuse the request.
		r.DPR = min(max(d, 1), 10)
	}

	if v, ok, err := single(q, "resize_algorithm"); err != nil {
		return r, err
	} else if ok {
		a, good := imageformat.ParseAlgorithm(v)
		if !good {
			return r, badRequest("resize_algorithm must be one of lanczos3, thumbnail or auto.")
		}
		r.Algorithm = a
		r.AlgorithmSet = true
	}
	return r, parseShape(q, &r, maxBox)
}

// Box is the effective bounding box: size × dpr, rounded, capped at maxBox.
// 0 means "no resize" (a format-only transform).
func (r Request) Box(maxBox int) int {
	if r.Size == 0 {
		return 0
	}
	return min(int(math.Round(float64(r.Size)*r.DPR)), maxBox)
}

// single returns the one value of key; a repeated or empty value is an error.
func single(q *Query, key string) (string, bool, error) {
	vs := q.Values(key)
	switch {
	case len(vs) == 0:
		return "", false, nil
	case len(vs) > 1:
		return "", false, badRequest(key + " must be given only once.")
	case vs[0] == "":
		return "", false, badRequest(key + " must not be empty.")
	}
	return vs[0], true, nil
}

// ParseDigits reads a whole number of the grammar: ASCII digits only (no
// sign, space or exponent), at most 9 of them.
func ParseDigits(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// ParseDecimal reads a decimal of the grammar: "2", "2.", "2.5", ".5" —
// plain decimals, no exponent, hex, sign, NaN or infinity, which
// strconv.ParseFloat would all let through.
func ParseDecimal(s string) (float64, bool) {
	if s == "" || len(s) > 16 {
		return 0, false
	}
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return 0, false
		}
	}
	if digits == 0 || dots > 1 {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// Canonical writes the output-affecting parameters the query gave, in one
// fixed order and spelling: parsing it again yields the same request (the
// header hint aside), whatever order, case, aliases or extra parameters the
// original had. It is the form a signature covers.
func (r Request) Canonical() string {
	var b []byte
	add := func(k, v string) {
		if len(b) > 0 {
			b = append(b, '&')
		}
		b = append(append(append(b, k...), '='), v...)
	}
	if r.Background.Set {
		add("background", r.Background.String())
	}
	if r.Blur > 0 {
		add("blur", strconv.FormatFloat(r.Blur, 'f', -1, 64))
	}
	if r.DPRQuery {
		add("dpr", strconv.FormatFloat(r.DPR, 'f', -1, 64))
	}
	if r.Fit != imageformat.FitUnset {
		add("fit", r.Fit.String())
	}
	if r.Focus.Set {
		add("focus", r.Focus.String())
	}
	switch {
	case r.JSON:
		add("format", "json")
	case r.Output.Auto:
		add("format", "auto")
	case r.Output.Format != imageformat.Unknown:
		add("format", r.Output.Format.String())
	}
	if r.Gravity != imageformat.GravityUnset {
		add("gravity", r.Gravity.String())
	}
	if r.Height > 0 {
		add("height", strconv.Itoa(r.Height))
	}
	if r.Preset != "" {
		add("preset", r.Preset)
	}
	if r.Quality > 0 {
		add("quality", strconv.Itoa(r.Quality))
	}
	if r.AlgorithmSet {
		add("resize_algorithm", r.Algorithm.String())
	}
	if r.Size > 0 {
		add("size", strconv.Itoa(r.Size))
	}
	if r.Width > 0 {
		add("width", strconv.Itoa(r.Width))
	}
	return string(b)
}
