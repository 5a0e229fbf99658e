package proxy

import (
	"errors"
	"net/url"
	"strings"
)

// maxPathBytes bounds the decoded path; Linux refuses longer ones anyway
// (PATH_MAX) and there is no reason to pass them further.
const maxPathBytes = 1024

var (
	errBadEscape = errors.New("malformed percent-encoding")
	errBadPath   = errors.New("path refused")
)

// stripPrefix normalises IMAGE_PROXY_STRIP_PATH ("static/image/",
// "/static/image", ...) to "/static/image" ("" when unset or "/").
func stripPrefix(setting string) string {
	s := strings.Trim(setting, "/")
	if s == "" {
		return ""
	}
	return "/" + s
}

// resolvePath turns the raw request path into a path relative to the root,
// or errBadPath for anything that is not a plain downward path: every form
// that could leave the root, and every hidden segment, gives a 404 without
// touching the file system. Percent-encoding is decoded exactly once.
func resolvePath(raw, prefix string) (string, error) {
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", errBadEscape
	}
	if prefix != "" {
		if rest, ok := strings.CutPrefix(p, prefix); ok && (rest == "" || rest[0] == '/') {
			p = rest
		}
	}
	rel, ok := strings.CutPrefix(p, "/")
	if !ok || rel == "" || len(rel) > maxPathBytes {
		return "", errBadPath
	}
	if strings.ContainsAny(rel, "\\\x00") {
		return "", errBadPath
	}
	for seg := range strings.SplitSeq(rel, "/") {
		// Empty segments ("//etc", trailing "/") and any segment starting
		// with "." (., .., .git, .env) are refused.
		if seg == "" || seg[0] == '.' {
			return "", errBadPath
		}
	}
	return rel, nil
}
