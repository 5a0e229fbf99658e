package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"image-proxy/request"
)

// rBulkFields are the fields of a POST /r/bulk item: api-s3's path, width
// and target, and sig for a server that signs. The OpenAPI test checks the
// description against this list.
var rBulkFields = []string{"path", "width", "target", "sig"}

// handleRBulk answers POST /r/bulk, api-s3's bulk call (served only with
// IMAGE_PROXY_ENABLE_R_ROUTES): each item is the variant of GET
// /r/{category}/{width}/{target}/{file}, answered as POST /bulk answers.
// The paths are below the root as an /r/ URL's are once the strip prefix
// is gone, so none is stripped from them.
func (s *Server) handleRBulk(c *fiber.Ctx) error {
	return s.serveBulk(c, parseRBulk, "")
}

// parseRBulk reads the JSON array of api-s3 items: at most maxItems, each
// checked and turned into the path and query values its /r/ URL is served
// with. Errors name the item index.
func parseRBulk(body []byte, maxItems int) ([]bulkItem, error) {
	return parseItems(body, maxItems, rBulkItemOf)
}

// rBulkItemOf checks one item: only the known fields; path a plain
// {category}/{file} (a bad one is the request's 400 here, where a GET
// answers 404, since an item names its file in a field of its own rather
// than in a URL); width a JSON integer of 1-4000; target a preset name; sig
// a string or null. The item becomes the main-form path and request.RValues'
// values, as RouteR makes them from the /r/ URL, plus its sig, which signs
// that main form as an /r/ URL's does.
func rBulkItemOf(raw map[string]json.RawMessage) (bulkItem, error) {
	for _, k := range slices.Sorted(maps.Keys(raw)) { // the first by name: the same answer every time
		if !slices.Contains(rBulkFields, k) {
			return bulkItem{}, fmt.Errorf("unknown field %q.", k)
		}
	}
	path, err := rItemPath(raw["path"])
	if err != nil {
		return bulkItem{}, err
	}
	width, err := rItemWidth(raw["width"])
	if err != nil {
		return bulkItem{}, err
	}
	target, err := rItemTarget(raw["target"])
	if err != nil {
		return bulkItem{}, err
	}
	q := map[string]string{}
	for k, v := range request.RValues(width, target) {
		q[k] = v[0]
	}
	if sig, ok := raw["sig"]; ok && string(bytes.TrimSpace(sig)) != "null" {
		var str string
		if json.Unmarshal(sig, &str) != nil {
			return bulkItem{}, errors.New("sig must be a string.")
		}
		q["sig"] = str
	}
	return bulkItem{path: path, query: q}, nil
}

// rItemPath checks an item's path, as it would stand in the /r/ URL
// (percent-encoding decoded once), and returns it as given.
func rItemPath(b json.RawMessage) (string, error) {
	var p string
	if json.Unmarshal(b, &p) != nil || p == "" {
		return "", errors.New("path must be a non-empty string: {category}/{file}, such as products/shoes.jpg.")
	}
	if p[0] == '/' {
		return "", errors.New("path must not start with /: it is {category}/{file}, as in /r/{category}/{width}/{target}/{file}.")
	}
	rel, err := request.ResolvePath("/"+p, "")
	switch {
	case errors.Is(err, request.ErrBadEscape):
		return "", errors.New("path has malformed percent-encoding.")
	case err != nil:
		return "", errors.New("path must be a plain {category}/{file} of at most " + strconv.Itoa(request.MaxPathBytes) +
			" bytes: no empty, hidden (.name) or .. segments, no NUL or backslash.")
	case !strings.Contains(rel, "/"):
		return "", errors.New("path must be {category}/{file}, such as products/shoes.jpg.")
	}
	return p, nil
}

// rItemWidth checks an item's width: a JSON integer (not a string, not a
// fraction or exponent) from 1 to 4000, the /r/ URL's range.
func rItemWidth(b json.RawMessage) (string, error) {
	n, ok := request.ParseDigits(string(bytes.TrimSpace(b)))
	if !ok || n < 1 || n > request.MaxRWidth {
		return "", errors.New("width must be a whole number from 1 to " + strconv.Itoa(request.MaxRWidth) + ", as a JSON number.")
	}
	return strconv.Itoa(n), nil
}

// rItemTarget checks an item's target: a name as ?preset= takes it. Whether
// the server has that preset is the gate's question, as for a GET.
func rItemTarget(b json.RawMessage) (string, error) {
	var t string
	if json.Unmarshal(b, &t) != nil || !request.ValidPresetName(t) {
		return "", errors.New("target must be a preset name (such as phone or desktop) of up to " +
			strconv.Itoa(request.MaxNameBytes) + " letters, digits, - and _.")
	}
	return t, nil
}
