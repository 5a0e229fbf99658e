package request

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"

	"image-proxy/fault"
	"image-proxy/metrics"
)

// A signed URL carries sig = base64url without padding (RFC 4648 §5) of
// HMAC-SHA256(key, message), where
//
//	message = path + "?" + canonical
//
// path is the image's path below the root, percent-decoded, with a leading
// "/": what remains after Traefik's prefix stripping or
// IMAGE_PROXY_STRIP_PATH, so a site signs the same string wherever the
// proxy is mounted. canonical is Request.Canonical: the output parameters
// the URL gives (background, blur, dpr, fit, focus, format, gravity,
// height, preset, quality, resize_algorithm, size, width), in that order
// (the names sorted), as key=value joined by "&", each value in its one
// spelling; other parameters (sig itself, cache-busters) are not covered. The "?" is
// always there, so no path can pass for a path plus parameters. An /r/ URL
// is signed as the main-form URL it stands for.
//
// The README's "Locking it down" section is the same text for sites.

// signedMessage is the string a signature covers.
func signedMessage(rel string, r Request) string {
	return "/" + rel + "?" + r.Canonical()
}

// signature is the sig value of message under key.
func signature(key []byte, message string) string {
	return base64.RawURLEncoding.EncodeToString(mac(key, message))
}

func mac(key []byte, message string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(message))
	return h.Sum(nil)
}

// verify checks the sig parameter against every key, in constant time per
// key. Without keys, or for a plain passthrough with
// IMAGE_PROXY_SIGN_PASSTHROUGH=false, there is nothing to check.
func (g *Gate) verify(rel string, r Request, q *Query) error {
	if len(g.keys) == 0 || (!r.Transform && !g.signPassthrough) {
		return nil
	}
	missing := newRefusal(metrics.RefusalSignatureMissing, fault.Forbidden, "This URL needs a signature (sig).")
	invalid := newRefusal(metrics.RefusalSignatureInvalid, fault.Forbidden, "The signature (sig) does not match this URL.")
	vs := q.Values("sig")
	switch {
	case len(vs) == 0 || vs[0] == "":
		return missing
	case len(vs) > 1:
		return invalid
	}
	got, err := base64.RawURLEncoding.DecodeString(vs[0])
	if err != nil || len(got) != sha256.Size {
		return invalid
	}
	message := signedMessage(rel, r)
	ok := false
	for _, k := range g.keys {
		// Every key is tried, so the time does not say which one matched.
		ok = hmac.Equal(mac(k, message), got) || ok
	}
	if !ok {
		return invalid
	}
	return nil
}

// SignURL returns target (a path and query as a client requests it, such
// as "/photos/cat.jpg?size=400&format=webp") with the sig parameter that
// c's current key gives it appended; the rest of the query stays as it
// was, minus any sig. stripPath is IMAGE_PROXY_STRIP_PATH and maxBox
// IMAGE_PROXY_MAX_SIZE, as the server reads them. It is `image-proxy sign`.
func SignURL(c ControlsConfig, stripPath string, maxBox int, target string) (string, error) {
	if c.SigningKey == "" {
		return "", errors.New("IMAGE_PROXY_SIGNING_KEY is not set")
	}
	rawPath, rawQ := SplitTarget(target)
	if !strings.HasPrefix(target, "/") {
		return "", errors.New("give the URL's path and query, starting with /, such as '/photos/cat.jpg?size=400'")
	}
	rel, err := ResolvePath(rawPath, StripPrefix(stripPath))
	if err != nil {
		return "", errors.New("the path " + rawPath + " is not one this server serves (" + err.Error() + ")")
	}
	q := RawQuery(rawQ)
	if c.EnableRRoutes {
		if rel, q, err = RouteR(rel, q); err != nil {
			return "", err
		}
	}
	r, err := Parse(q, "", maxBox)
	if err != nil {
		return "", err
	}
	var kept []string
	for p := range strings.SplitSeq(rawQ, "&") {
		k, _, _ := strings.Cut(p, "=")
		if dk, err := url.QueryUnescape(k); p != "" && k != "sig" && (err != nil || dk != "sig") {
			kept = append(kept, p)
		}
	}
	kept = append(kept, "sig="+signature([]byte(c.SigningKey), signedMessage(rel, r)))
	return rawPath + "?" + strings.Join(kept, "&"), nil
}
