package request

import (
	"strconv"
	"strings"
)

// MaxRWidth is the largest width of the api-s3 URL form.
const MaxRWidth = 4000

// RouteR rewrites the api-s3 URL form, served with
// IMAGE_PROXY_ENABLE_R_ROUTES:
//
//	r/{category}/{width}/{target}/{path...}
//
// is served as {category}/{path} with size={width}, preset={target} and
// format=webp. Those three replace any the query gives; its other
// parameters (dpr, quality, sig, cache-busters) apply as in the main form.
// Other paths pass unchanged. rel is ResolvePath's result. Fewer segments
// are ErrBadPath (no file there: a 404); a width that is not 1-4000 is a
// bad request.
func RouteR(rel string, q *Query) (string, *Query, error) {
	rest, ok := strings.CutPrefix(rel, "r/")
	if !ok {
		return rel, q, nil
	}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) < 4 {
		return "", nil, ErrBadPath
	}
	category, width, target, path := parts[0], parts[1], parts[2], parts[3]
	if n, good := ParseDigits(width); !good || n < 1 || n > MaxRWidth {
		return "", nil, badRequest("the width in /r/{category}/{width}/{target}/{path} must be a whole number from 1 to " + strconv.Itoa(MaxRWidth) + ".")
	}
	q.fixed = RValues(width, target)
	return category + "/" + path, q, nil
}

// RValues is what the width and target of the /r/ form stand for: the
// main form's size, preset and format=webp, replacing any the query gives.
// GET /r/… and the items of POST /r/bulk both go through it, so both name
// the same variant (bytes, ETag, signed message).
func RValues(width, target string) map[string][]string {
	return map[string][]string{"size": {width}, "preset": {target}, "format": {"webp"}}
}
