package request

import (
	"fmt"

	"image-proxy/imageformat"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// presetKeys are the parameters a preset may set.
var presetKeys = []string{"size", "format", "quality", "dpr", "resize_algorithm",
	"width", "height", "fit", "gravity", "focus", "background", "blur"}

// builtinPresets are the api-s3 targets, defined when the /r/ routes are
// on unless IMAGE_PROXY_PRESETS names them itself.
const builtinPresets = "phone=quality:75;desktop=quality:85"

// MaxNameBytes bounds a preset name, in settings and in ?preset=.
const MaxNameBytes = 64

// presetTable maps a preset's name to the parameters it sets, parsed by the
// same rules as a query: the fields it leaves unset are zero (DPRQuery and
// AlgorithmSet false).
type presetTable map[string]Request

// presetTable is the table requests see: the built-ins when the /r/ routes
// are on, then IMAGE_PROXY_PRESETS over them.
func (c ControlsConfig) presetTable(maxBox int) (presetTable, error) {
	t := presetTable{}
	if c.EnableRRoutes {
		builtin, err := parsePresets(builtinPresets, maxBox)
		if err != nil {
			panic("request: the built-in presets do not parse: " + err.Error())
		}
		maps.Copy(t, builtin)
	}
	own, err := parsePresets(c.Presets, maxBox)
	if err != nil {
		return nil, fmt.Errorf("invalid setting IMAGE_PROXY_PRESETS=%q: %w", c.Presets, err)
	}
	maps.Copy(t, own)
	return t, nil
}

// parsePresets reads "name=key:value,key:value;name=…". Spaces around the
// separators are ignored, and so are empty entries (a trailing ";"). The
// error names the offending entry.
func parsePresets(spec string, maxBox int) (presetTable, error) {
	t := presetTable{}
	for entry := range strings.SplitSeq(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, body, ok := strings.Cut(entry, "=")
		name = strings.TrimSpace(name)
		bad := func(msg string) error { return fmt.Errorf("entry %q: %s", entry, msg) }
		_, dup := t[name]
		switch {
		case !ok:
			return nil, bad("must be name=key:value,…, such as phone=size:400,quality:75")
		case !validName(name, false):
			return nil, bad("the name must be 1 to 64 lowercase letters, digits, - and _")
		case dup:
			return nil, bad("names must be unique: " + name + " is defined twice")
		}
		p, err := parsePreset(body, maxBox)
		if err != nil {
			return nil, bad(err.Error())
		}
		t[name] = p
	}
	return t, nil
}

// parsePreset reads one preset's "key:value,…" with Parse, so a preset's
// values obey exactly the rules of the query. focus's value has a comma of
// its own ("focus:0.5,0.25"): a piece without a colon continues the value
// before it when that is a focus, where it used to be an error.
func parsePreset(body string, maxBox int) (Request, error) {
	q := map[string][]string{}
	last := ""
	for pair := range strings.SplitSeq(body, ",") {
		k, v, ok := strings.Cut(pair, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok && last == "focus" && !strings.Contains(q[last][0], ","):
			q[last][0] += "," + k
			continue
		case !ok:
			return Request{}, fmt.Errorf("%q must be key:value, such as size:400", strings.TrimSpace(pair))
		case !slices.Contains(presetKeys, k):
			return Request{}, fmt.Errorf("keys must be one of %s, not %q", strings.Join(presetKeys, ", "), k)
		case q[k] != nil:
			return Request{}, fmt.Errorf("each key must be set once: %s is set twice", k)
		}
		q[k] = []string{v}
		last = k
	}
	p, err := Parse(FixedQuery(q), "", maxBox)
	if err == nil {
		err = p.conflicts()
	}
	if err == nil && p.JSON {
		err = errPresetJSON
	}
	if err != nil {
		return Request{}, err
	}
	p.Transform = false // not a parameter: over sets it
	return p, nil
}

// ValidPresetName reports whether s is a preset name as ?preset= (and an
// /r/ URL's target) may spell it: letters of either case, digits, - and _,
// at most MaxNameBytes. Whether the server has that preset is the gate's
// question.
func ValidPresetName(s string) bool { return validName(s, true) }

// validName is the syntax of a preset name. Settings take lowercase names
// only; a query may spell anything of the same alphabet (and is then
// refused as unknown unless it matches a name exactly).
func validName(s string, anyCase bool) bool {
	if s == "" || len(s) > MaxNameBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || anyCase && c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// over returns r with every parameter the preset p sets replaced by p's
// value: the request's own values, Sec-CH-DPR included, cannot change them.
func (p Request) over(r Request) Request {
	if p.Size > 0 {
		r.Size = p.Size
	}
	if p.Output != (Output{}) {
		r.Output = p.Output
	}
	if p.Quality > 0 {
		r.Quality = p.Quality
	}
	if p.DPRQuery {
		r.DPR, r.DPRQuery = p.DPR, true
	}
	if p.AlgorithmSet {
		r.Algorithm, r.AlgorithmSet = p.Algorithm, true
	}
	return p.overShape(r)
}

// overShape is over for the shape parameters.
func (p Request) overShape(r Request) Request {
	if p.Width > 0 {
		r.Width = p.Width
	}
	if p.Height > 0 {
		r.Height = p.Height
	}
	if p.Fit != imageformat.FitUnset {
		r.Fit = p.Fit
	}
	if p.Gravity != imageformat.GravityUnset {
		r.Gravity = p.Gravity
	}
	if p.Focus.Set {
		r.Focus = p.Focus
	}
	if p.Background.Set {
		r.Background = p.Background
	}
	if p.Blur > 0 {
		r.Blur = p.Blur
	}
	return r
}

// fixesBox reports whether the preset sets the box: its sizes are the
// operator's, always allowed.
func (p Request) fixesBox() bool { return p.Size > 0 || p.Width > 0 || p.Height > 0 }

// unknownMessage is the 400 for a ?preset= the table lacks.
func (t presetTable) unknownMessage() string {
	if len(t) == 0 {
		return "preset is not available: this server defines no presets."
	}
	return "preset must be one of " + strings.Join(slices.Sorted(maps.Keys(t)), ", ") + "."
}

// parseControls reads the parameters the controls act on: quality and
// preset. Their presence makes a transform.
func parseControls(q *Query, r *Request) error {
	if v, ok, err := single(q, "quality"); err != nil {
		return err
	} else if ok {
		n, good := ParseDigits(v)
		if !good || n < 1 || n > 100 {
			return badRequest("quality must be a whole number from 1 to 100.")
		}
		r.Quality = n
		r.Transform = true
	}
	if v, ok, err := single(q, "preset"); err != nil {
		return err
	} else if ok {
		if !validName(v, true) {
			return badRequest("preset must be a name of up to " + strconv.Itoa(MaxNameBytes) + " letters, digits, - and _.")
		}
		r.Preset = v
		r.Transform = true
	}
	return nil
}
