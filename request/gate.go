package request

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"image-proxy/fault"
	"image-proxy/metrics"
)

// refusal is a request the controls turn away: a fault error (its kind and
// public message) and the reason it is counted under (metrics.Refusal…).
type refusal struct {
	reason string
	err    *fault.Error
}

func newRefusal(reason string, k fault.Kind, msg string) *refusal {
	return &refusal{reason: reason, err: &fault.Error{Kind: k, Msg: msg}}
}

func (r *refusal) Error() string { return r.err.Error() }

// Unwrap lets fault.As (and the HTTP layer's error table) find the kind.
func (r *refusal) Unwrap() error { return r.err }

// Gate holds the controls in the form requests are checked against: every
// URL form (GET, /r/, the items of POST /bulk and /r/bulk) goes through
// it. It is built once and never written after, so it is safe for
// concurrent use.
type Gate struct {
	maxBox          int
	presets         presetTable
	allowQuality    bool
	sizes           []int // ascending; nil = every size
	snap            bool
	keys            [][]byte // the current key first; nil = no signatures
	signPassthrough bool
	hints           hintSet
	refusals        *prometheus.CounterVec // by reason: metrics.Metrics.Refusals
}

// NewGate checks c (as Validate does) and builds its gate. maxBox is
// IMAGE_PROXY_MAX_SIZE; refusals counts every refusal by its reason label
// (metrics.Metrics.Refusals).
func NewGate(c ControlsConfig, maxBox int, refusals *prometheus.CounterVec) (*Gate, error) {
	if err := c.Validate(maxBox); err != nil {
		return nil, err
	}
	presets, _ := c.presetTable(maxBox)
	sizes, _ := parseSizes(c.AllowedSizes, maxBox)
	hints, _ := c.Hints.parse()
	g := &Gate{maxBox: maxBox, presets: presets, allowQuality: c.AllowQuality, sizes: sizes, hints: hints,
		snap: c.SnapSizes, signPassthrough: c.SignPassthrough, refusals: refusals}
	for _, k := range []string{c.SigningKey, c.SigningKeyPrevious} {
		if k != "" {
			g.keys = append(g.keys, []byte(k))
		}
	}
	return g, nil
}

// Request is the one way from an image path and its query to the request
// to serve, for every URL form: syntax and ranges (Parse), the signature,
// the preset, the quality and the size rules, in that order. rel is the
// decoded path below the root (ResolvePath's result, after RouteR), q the
// query, secCHDPR the raw Sec-CH-DPR header. Every refusal is counted.
func (g *Gate) Request(rel string, q *Query, secCHDPR string) (Request, error) {
	r, _, err := g.Hinted(rel, q, Hints{DPR: secCHDPR})
	return r, err
}

// Item is the one step from a bulk item's path and query values to a
// request, the same as a GET's: the path resolved and decoded once (prefix
// stripped as IMAGE_PROXY_STRIP_PATH strips it from a URL, "" for paths
// that are already below it), the values through Request. dprHint is the
// bulk request's Sec-CH-DPR. An item must ask for a transform.
func (g *Gate) Item(rawPath, prefix string, q *Query, dprHint string) (string, Request, error) {
	if !strings.HasPrefix(rawPath, "/") {
		rawPath = "/" + rawPath // as in the URL: the leading slash is optional
	}
	rel, pathErr := ResolvePath(rawPath, prefix)
	if errors.Is(pathErr, ErrBadEscape) {
		return "", Request{}, badRequest("path has malformed percent-encoding.")
	} else if pathErr != nil {
		// No file can be there: the parameters still get checked, the
		// signature (over a path that does not exist) does not.
		req, err := Parse(q, dprHint, g.maxBox)
		if err == nil {
			err = fault.New(fault.NotFound, "", pathErr)
		}
		return "", req, err
	}
	req, err := g.Request(rel, q, dprHint)
	if err != nil {
		return "", req, err
	}
	if req.JSON {
		return "", req, errBulkJSON
	}
	if !req.Transform {
		return "", req, badRequest("a bulk item needs size, format, quality, preset or a shape parameter (width, height, fit, gravity, focus, background, blur).")
	}
	return rel, req, nil
}

func (g *Gate) refuse(err error) error {
	if rf, ok := err.(*refusal); ok {
		g.refusals.WithLabelValues(rf.reason).Inc()
	}
	return err
}

// apply resolves the preset, applies the client hints (hints.go), then
// checks the quality and the size.
func (g *Gate) apply(r Request, h Hints) (Request, Vary, error) {
	r, fixed, err := g.preset(r)
	if err != nil {
		return r, 0, err
	}
	r, vary := g.hint(r, h)
	switch {
	case fixed:
		return r, vary, nil // a preset's size is always allowed
	case r.Width > 0 || r.Height > 0:
		r, err = g.checkSides(r)
	default:
		r, err = g.checkSize(r)
	}
	return r, vary, err
}

// preset lays the preset over r and checks the quality and the shape;
// fixed: the preset sets the box.
func (g *Gate) preset(r Request) (Request, bool, error) {
	var p Request
	if r.Preset != "" {
		var ok bool
		if p, ok = g.presets[r.Preset]; !ok {
			return r, false, newRefusal(metrics.RefusalUnknownPreset, fault.BadRequest, g.presets.unknownMessage())
		}
	}
	if r.Quality > 0 && p.Quality == 0 && !g.allowQuality {
		return r, false, newRefusal(metrics.RefusalQualityNotAllowed, fault.BadRequest,
			"quality is not accepted by this server: presets and its settings decide it.")
	}
	r = p.over(r)
	if err := r.CheckShape(); err != nil {
		return r, false, err // a parameter error, as Parse's are: not a refusal of the controls
	}
	return r, p.fixesBox(), nil
}

// checkSides holds width and height to the allowed sizes: each given side
// must be one, or, with snapping, the box is scaled by the one factor that
// brings its larger side up to the next allowed size (so it keeps its
// aspect ratio; the other side need not be a listed size). A Sec-CH-DPR
// hint is advisory, as for size.
func (g *Gate) checkSides(r Request) (Request, error) {
	if g.sizes == nil {
		return r, nil
	}
	w, h := r.Sides(g.maxBox)
	if g.allowed(w, h) {
		return r, nil
	}
	if g.snap {
		big := max(w, h)
		i, _ := slices.BinarySearch(g.sizes, big)
		f := float64(g.sizes[min(i, len(g.sizes)-1)]) / float64(big)
		r.Width, r.Height, r.DPR = scaleSide(w, f, g.maxBox), scaleSide(h, f, g.maxBox), 1
		return r, nil
	}
	if !r.DPRQuery && g.allowed(r.Width, r.Height) {
		r.DPR = 1
		return r, nil
	}
	return r, newRefusal(metrics.RefusalSizeNotAllowed, fault.BadRequest,
		"width and height × dpr must each come to one of "+g.sizeList()+" pixels; they come to "+
			strconv.Itoa(w)+" × "+strconv.Itoa(h)+".")
}

// allowed reports whether each side given (not 0) is an allowed size.
func (g *Gate) allowed(sides ...int) bool {
	for _, n := range sides {
		if n != 0 && !slices.Contains(g.sizes, n) {
			return false
		}
	}
	return true
}

// sizeList is the allowed sizes, as a refusal lists them.
func (g *Gate) sizeList() string {
	list := make([]string, len(g.sizes))
	for i, n := range g.sizes {
		list[i] = strconv.Itoa(n)
	}
	return strings.Join(list, ", ")
}

// checkSize holds the effective box to the allowed sizes: as asked, or
// snapped up to the next one. A Sec-CH-DPR hint is advisory and never the
// reason for a refusal: when its box is not allowed, the size is tried at
// dpr 1.
func (g *Gate) checkSize(r Request) (Request, error) {
	if g.sizes == nil || r.Size == 0 {
		return r, nil
	}
	box := r.Box(g.maxBox)
	if slices.Contains(g.sizes, box) {
		return r, nil
	}
	if g.snap {
		i, _ := slices.BinarySearch(g.sizes, box)
		r.Size, r.DPR = g.sizes[min(i, len(g.sizes)-1)], 1
		return r, nil
	}
	if !r.DPRQuery && slices.Contains(g.sizes, r.Size) {
		r.DPR = 1
		return r, nil
	}
	return r, newRefusal(metrics.RefusalSizeNotAllowed, fault.BadRequest,
		"size × dpr must come to one of "+g.sizeList()+" pixels; size "+strconv.Itoa(r.Size)+
			" × dpr "+strconv.FormatFloat(r.DPR, 'f', -1, 64)+" comes to "+strconv.Itoa(box)+".")
}
