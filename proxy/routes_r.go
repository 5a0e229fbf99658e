package proxy

import (
	"strconv"
	"strings"
)

// maxRWidth is the largest width of the api-s3 URL form.
const maxRWidth = 4000

// routeR rewrites the api-s3 URL form, with IMAGE_PROXY_ENABLE_R_ROUTES:
//
//	r/{category}/{width}/{target}/{path...}
//
// is served as {category}/{path} with size={width}, preset={target} and
// format=webp. Those three replace any the query gives; its other
// parameters (dpr, quality, sig, cache-busters) apply as in the main form.
// Other paths pass unchanged. Fewer segments are a missing file (404); a
// width that is not 1-4000 is a bad request.
func routeR(rel string, q queryValues) (string, queryValues, error) {
	rest, ok := strings.CutPrefix(rel, "r/")
	if !ok {
		return rel, q, nil
	}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) < 4 {
		return "", nil, errBadPath
	}
	category, width, target, path := parts[0], parts[1], parts[2], parts[3]
	if n, good := parseDigits(width); !good || n < 1 || n > maxRWidth {
		return "", nil, &paramError{"the width in /r/{category}/{width}/{target}/{path} must be a whole number from 1 to " + strconv.Itoa(maxRWidth) + "."}
	}
	q.fixed = rFixed(width, target)
	return category + "/" + path, q, nil
}

// rFixed is what the width and target of the /r/ form stand for: the main
// form's size, preset and format=webp, replacing any the query gives. GET
// /r/… and the items of POST /r/bulk both go through it, so both name the
// same variant (bytes, ETag, signed message).
func rFixed(width, target string) map[string][]string {
	return map[string][]string{"size": {width}, "preset": {target}, "format": {"webp"}}
}
