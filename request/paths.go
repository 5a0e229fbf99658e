package request

import (
	"errors"
	"net/url"
	"strings"
)

// MaxPathBytes bounds the decoded path; Linux refuses longer ones anyway
// (PATH_MAX) and there is no reason to pass them further.
const MaxPathBytes = 1024

var (
	// ErrBadEscape is a path whose percent-encoding does not decode.
	ErrBadEscape = errors.New("malformed percent-encoding")
	// ErrBadPath is a path no file can be at: it would leave the root, or
	// names a hidden or empty segment.
	ErrBadPath = errors.New("path refused")
)

// StripPrefix normalises IMAGE_PROXY_STRIP_PATH ("static/image/",
// "/static/image", ...) to "/static/image" ("" when unset or "/").
func StripPrefix(setting string) string {
	s := strings.Trim(setting, "/")
	if s == "" {
		return ""
	}
	return "/" + s
}

// ResolvePath turns the raw request path into a path relative to the root,
// or ErrBadPath for anything that is not a plain downward path: every form
// that could leave the root, and every hidden segment, is refused without
// touching the file system. Percent-encoding is decoded exactly once.
// prefix is StripPrefix's result; it is removed when the path starts with
// it.
func ResolvePath(raw, prefix string) (string, error) {
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", ErrBadEscape
	}
	if prefix != "" {
		if rest, ok := strings.CutPrefix(p, prefix); ok && (rest == "" || rest[0] == '/') {
			p = rest
		}
	}
	rel, ok := strings.CutPrefix(p, "/")
	if !ok || rel == "" || len(rel) > MaxPathBytes {
		return "", ErrBadPath
	}
	if strings.ContainsAny(rel, "\\\x00") {
		return "", ErrBadPath
	}
	for seg := range strings.SplitSeq(rel, "/") {
		// Empty segments ("//etc", trailing "/") and any segment starting
		// with "." (., .., .git, .env) are refused.
		if seg == "" || seg[0] == '.' {
			return "", ErrBadPath
		}
	}
	return rel, nil
}

// PlainPath checks a path given unescaped, outside a URL (a bucket key
// less its prefix, a path in a purge's JSON), by the rules a request's
// path meets: it returns the path relative to the root (one leading '/'
// dropped) and true, or false for a path no request could name.
func PlainPath(p string) (string, bool) {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "", false
	}
	got, err := ResolvePath((&url.URL{Path: "/" + p}).EscapedPath(), "")
	return got, err == nil && got == p
}
