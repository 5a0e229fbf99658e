package proxy

import (
	"math"
	"net/url"
	"strconv"
	"strings"

	"image-proxy/transform"
)

// request is everything the query string and headers say about the wanted
// output, already validated. It holds no references into Fiber's buffers.
type request struct {
	transform bool // size or format present
	size      int  // 0 = absent
	dprQuery  bool // dpr came from the query (so Sec-CH-DPR does not matter)
	dpr       float64
	format    outputFormat
	algorithm transform.Algorithm
	algoSet   bool   // resize_algorithm present
	quality   int    // 1-100; 0 = absent (the format's setting)
	preset    string // ?preset= as given, checked against the presets later; "" = absent
}

// outputFormat is the requested format before "auto" is resolved.
type outputFormat struct {
	auto   bool
	format transform.Format // FormatUnknown with !auto = absent (source default)
}

// queryValues is the view of the query string the parser needs: every value
// of a key, in order (values). It lets parsing stay independent of Fiber; a
// concrete type rather than a func, so a request's pairs stay on the stack.
type queryValues = *queryPairs

// paramError names the parameter and what is allowed; its text is the public message.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

// formatError lists what ?format= accepts, from transform's format table.
var formatError = "format must be one of " + strings.Join(transform.OutputNames(), ", ") + " or auto."

// parseFormat reads ?format=: an output format of the table, or auto.
func parseFormat(v string) (outputFormat, bool) {
	if strings.EqualFold(v, "auto") {
		return outputFormat{auto: true}, true
	}
	f, ok := transform.ParseFormat(v)
	return outputFormat{format: f}, ok
}

// parseRequest validates the known parameters; unknown ones are ignored so
// CDN cache-busters (?v=3) keep working. secCHDPR is the raw header value.
// It checks syntax and ranges only: whether this server accepts a preset,
// a quality or a size is the gate's decision (controls.go).
func parseRequest(q queryValues, secCHDPR string, maxBox int) (request, error) {
	var r request
	r.dpr = 1
	if err := parseControls(q, &r); err != nil {
		return r, err
	}

	if v, ok, err := single(q, "size"); err != nil {
		return r, err
	} else if ok {
		n, good := parseDigits(v)
		if !good || n < 1 || n > maxBox {
			return r, &paramError{"size must be a whole number from 1 to " + strconv.Itoa(maxBox) + "."}
		}
		r.size = n
		r.transform = true
	}

	if v, ok, err := single(q, "format"); err != nil {
		return r, err
	} else if ok {
		f, good := parseFormat(v)
		if !good {
			return r, &paramError{formatError}
		}
		r.format = f
		r.transform = true
	}

	if v, ok, err := single(q, "dpr"); err != nil {
		return r, err
	} else if ok {
		d, good := parseDecimal(v)
		if !good || d < 1 || d > 10 {
			return r, &paramError{"dpr must be a number from 1.0 to 10.0."}
		}
		r.dpr = d
		r.dprQuery = true
	} else if d, good := parseDecimal(strings.TrimSpace(secCHDPR)); good {
		// A client hint is advisory: clamp it, never refuse the request.
		r.dpr = min(max(d, 1), 10)
	}

	if v, ok, err := single(q, "resize_algorithm"); err != nil {
		return r, err
	} else if ok {
		a, good := transform.ParseAlgorithm(v)
		if !good {
			return r, &paramError{"resize_algorithm must be one of lanczos3, thumbnail or auto."}
		}
		r.algorithm = a
		r.algoSet = true
	}
	return r, nil
}

// box is the effective bounding box: size × dpr, rounded, capped at maxBox.
// 0 means "no resize" (a format-only transform).
func (r request) box(maxBox int) int {
	if r.size == 0 {
		return 0
	}
	return min(int(math.Round(float64(r.size)*r.dpr)), maxBox)
}

// single returns the one value of key; a repeated or empty value is an error.
func single(q queryValues, key string) (string, bool, error) {
	vs := q.values(key)
	switch {
	case len(vs) == 0:
		return "", false, nil
	case len(vs) > 1:
		return "", false, &paramError{key + " must be given only once."}
	case vs[0] == "":
		return "", false, &paramError{key + " must not be empty."}
	}
	return vs[0], true, nil
}

// parseDigits accepts only ASCII digits (no sign, space or exponent).
func parseDigits(s string) (int, bool) {
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

// parseDecimal accepts "2", "2.", "2.5", ".5" — plain decimals, no exponent,
// hex, sign, NaN or infinity, which strconv.ParseFloat would all let through.
func parseDecimal(s string) (float64, bool) {
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

// accepts reports whether an Accept header lists mime with a non-zero q.
// Wildcards do not count: browsers name the modern formats they decode.
func accepts(header, mime string) bool {
	for part := range strings.SplitSeq(header, ",") {
		fields := strings.Split(part, ";")
		if !strings.EqualFold(strings.TrimSpace(fields[0]), mime) {
			continue
		}
		for _, p := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q <= 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}

// acceptClass is the part of Accept that format=auto depends on; it goes
// into the cache key instead of the raw header.
type acceptClass struct{ avif, webp bool }

func classifyAccept(accept string) acceptClass {
	return acceptClass{avif: accepts(accept, "image/avif"), webp: accepts(accept, "image/webp")}
}

func (a acceptClass) String() string {
	s := "auto"
	if a.avif {
		s += "+avif"
	}
	if a.webp {
		s += "+webp"
	}
	return s
}

// outputs are the formats resolve can pick for this class, whatever the
// source: what a format=auto variant's key must fingerprint.
func (a acceptClass) outputs() []transform.Format {
	switch {
	case a.avif:
		return []transform.Format{transform.FormatAVIF}
	case a.webp:
		return []transform.Format{transform.FormatWebP}
	}
	return []transform.Format{transform.FormatJPEG, transform.FormatPNG, transform.FormatGIF}
}

// resolveAuto picks the output of format=auto for a given source format.
func (a acceptClass) resolve(src transform.Format) transform.Format {
	switch {
	case a.avif:
		return transform.FormatAVIF
	case a.webp:
		return transform.FormatWebP
	case src == transform.FormatJPEG || src == transform.FormatPNG || src == transform.FormatGIF:
		return src
	}
	return transform.FormatJPEG
}

// splitTarget splits a raw request target into its still-encoded path and
// query. Working on the raw bytes keeps fasthttp's path normalisation (which
// would resolve "..") out of the way, and skips parsing we do not need.
func splitTarget(target string) (path, query string) {
	if i := strings.Index(target, "://"); i >= 0 && !strings.Contains(target[:i], "/") {
		// absolute-form: drop scheme and authority
		rest := target[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			target = rest[j:]
		} else {
			target = "/"
		}
	}
	target, _, _ = strings.Cut(target, "#")
	path, query, _ = strings.Cut(target, "?")
	return path, query
}

// rawQuery reads values from an encoded query string the way browsers and
// CDNs encode them ("+" is a space). The query is split once and its keys
// decoded; a value is decoded only when its key is asked for (by parameter
// name, which never needs escaping), and a key given once costs no
// allocation.
func rawQuery(query string) queryValues {
	p := &queryPairs{}
	p.split(query)
	return p
}

// queryPairs is a query split at "&" and "=", keys decoded; the first
// maxPairs pairs live in the arrays, the rest in more.
type queryPairs struct {
	n          int
	keys, vals [maxPairs]string
	more       [][2]string
	// fixed values (already decoded) win over the query's: presets, the
	// /r/ form's path segments.
	fixed map[string][]string
	// asked, when set, hears every key looked up: the OpenAPI test lists
	// the parameters the parser reads with it.
	asked func(key string)
}

// fixedQuery is a query of decoded values only.
func fixedQuery(m map[string][]string) queryValues { return &queryPairs{fixed: m} }

const maxPairs = 8

func (p *queryPairs) split(query string) {
	for rest := query; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if strings.ContainsAny(k, "%+") {
			dk, err := url.QueryUnescape(k)
			if err != nil {
				continue // a key that does not decode is nobody's
			}
			k = dk
		}
		if p.n < maxPairs {
			p.keys[p.n], p.vals[p.n] = k, v
		} else {
			p.more = append(p.more, [2]string{k, v})
		}
		p.n++
	}
}

func (p *queryPairs) pair(i int) (k, v string) {
	if i < maxPairs {
		return p.keys[i], p.vals[i]
	}
	kv := p.more[i-maxPairs]
	return kv[0], kv[1]
}

func (p *queryPairs) values(key string) []string {
	if p.asked != nil {
		p.asked(key)
	}
	if v, ok := p.fixed[key]; ok {
		return v
	}
	var out []string
	for i := 0; i < p.n; i++ {
		k, v := p.pair(i)
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if dv, err := url.QueryUnescape(v); err == nil {
				v = dv
			}
		}
		if out == nil && i < maxPairs && p.count(key, i+1) == 0 {
			p.vals[i] = v
			return p.vals[i : i+1 : i+1] // the usual case: given once
		}
		out = append(out, v)
	}
	return out
}

// count is how many pairs from index from on have key.
func (p *queryPairs) count(key string, from int) int {
	n := 0
	for i := from; i < p.n; i++ {
		if k, _ := p.pair(i); k == key {
			n++
		}
	}
	return n
}

// canonical writes the output-affecting parameters the query gave, in one
// fixed order and spelling: parsing it again yields the same request (the
// header hint aside), whatever order, case, aliases or extra parameters the
// original had. It is the form a signature covers.
func (r request) canonical() string {
	var b []byte
	add := func(k, v string) {
		if len(b) > 0 {
			b = append(b, '&')
		}
		b = append(append(append(b, k...), '='), v...)
	}
	if r.dprQuery {
		add("dpr", strconv.FormatFloat(r.dpr, 'f', -1, 64))
	}
	switch {
	case r.format.auto:
		add("format", "auto")
	case r.format.format != transform.FormatUnknown:
		add("format", r.format.format.String())
	}
	if r.preset != "" {
		add("preset", r.preset)
	}
	if r.quality > 0 {
		add("quality", strconv.Itoa(r.quality))
	}
	if r.algoSet {
		add("resize_algorithm", r.algorithm.String())
	}
	if r.size > 0 {
		add("size", strconv.Itoa(r.size))
	}
	return string(b)
}
