package proxy

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// plainHeaderValue reports whether v reaches the handler byte for byte:
// non-empty, no control characters (a client would refuse them or fold
// them) and no surrounding whitespace (parsers strip it).
func plainHeaderValue(v string) bool {
	if v == "" || v != strings.Trim(v, " \t") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// strictRange is RFC 9110's grammar for one byte range, digits only.
var strictRange = regexp.MustCompile(`^bytes=(?:([0-9]+)-([0-9]*)|-([0-9]+))$`)

// rfcRange is RFC 9110 14.1.2 for a header of strictRange, in parseRange's
// encoding (ok=false: ignore the header; first<0: not satisfiable).
// defined is false when a number overflows int64: the RFC says such a
// first-pos is unsatisfiable and such a last-pos means the end, and a server
// may equally ignore the header; parseRange ignores it.
func rfcRange(h string, size int64) (first, last int64, ok, defined bool) {
	m := strictRange.FindStringSubmatch(h)
	if m == nil {
		return 0, 0, false, false
	}
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if m[3] != "" { // suffix-range
		n, fine := num(m[3])
		if !fine {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return -1, -1, true, true
		}
		return max(size-n, 0), size - 1, true, true
	}
	a, fine := num(m[1])
	if !fine {
		return 0, 0, false, false
	}
	b := int64(math.MaxInt64)
	if m[2] != "" {
		if b, fine = num(m[2]); !fine {
			return 0, 0, false, false
		}
		if b < a { // syntactically invalid: the header is ignored
			return 0, 0, false, true
		}
	}
	if a >= size {
		return -1, -1, true, true
	}
	return a, min(b, size-1), true, true
}

// FuzzParseRange: whatever the header and size, a range parseRange accepts
// lies inside the body, and on a header of the RFC's strict grammar it is
// exactly the RFC's answer. Through the server, every 206 carries a
// Content-Range inside the file and exactly those bytes.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=100-", "bytes=-10", "bytes=10-99999999", "bytes=99999999-",
		"bytes=0-1,5-6", "pages=1-2", "bytes=-0", "bytes=5-3", "bytes= 1-2", "bytes=+1-+2", "bytes=--1",
		"bytes=0-9223372036854775807", "bytes=9223372036854775808-", "bytes=-9223372036854775808", "Bytes=0-1", "bytes=-"} {
		f.Add(s, int64(264))
	}
	f.Add("bytes=0-", int64(0))
	f.Add("bytes=-1", int64(1))
	f.Add("bytes=0-0", int64(math.MaxInt64))

	// A small file keeps each round trip cheap.
	ts := newTestServer(f, nil)
	const path = "/variants/badge.svg"
	file, err := os.ReadFile(filepath.Join(ts.root, path))
	if err != nil {
		f.Fatal(err)
	}
	fileSize := int64(len(file))

	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -(size + 1) // every non-negative size, MaxInt64 included
		}
		first, last, ok := parseRange(h, size)
		switch {
		case !ok:
		case first < 0:
			if first != -1 || last != -1 {
				t.Fatalf("%q, size %d: unsatisfiable as %d-%d, want -1,-1", h, size, first, last)
			}
		case first > last || last >= size:
			t.Fatalf("%q, size %d: range %d-%d outside the body", h, size, first, last)
		}
		if wf, wl, wok, defined := rfcRange(h, size); defined && (ok != wok || first != wf || last != wl) {
			t.Fatalf("%q, size %d: got %d-%d ok=%v, RFC 9110 says %d-%d ok=%v", h, size, first, last, ok, wf, wl, wok)
		}

		if !plainHeaderValue(h) {
			return
		}
		resp, body := ts.get(t, path, "Range", h)
		first, last, ok = parseRange(h, fileSize)
		cr := resp.Header.Get("Content-Range")
		switch resp.StatusCode {
		case 200:
			if ok && first >= 0 {
				t.Fatalf("%q: 200 for the satisfiable range %d-%d", h, first, last)
			}
			if cr != "" || !bytes.Equal(body, file) {
				t.Fatalf("%q: 200 with Content-Range %q and %d of %d bytes", h, cr, len(body), fileSize)
			}
		case 206:
			var a, b, n int64
			if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &a, &b, &n); err != nil || cr != fmt.Sprintf("bytes %d-%d/%d", a, b, n) {
				t.Fatalf("%q: 206 with Content-Range %q", h, cr)
			}
			if n != fileSize || a < 0 || a > b || b >= n {
				t.Fatalf("%q: Content-Range %q for a %d-byte file", h, cr, fileSize)
			}
			if !bytes.Equal(body, file[a:b+1]) || resp.ContentLength != b-a+1 {
				t.Fatalf("%q: 206 %q with %d bytes (Content-Length %d) that are not the file's", h, cr, len(body), resp.ContentLength)
			}
			if a != first || b != last {
				t.Fatalf("%q: served %d-%d, parseRange says %d-%d", h, a, b, first, last)
			}
		case 416:
			if !ok || first >= 0 || cr != fmt.Sprintf("bytes */%d", fileSize) || len(body) != 0 {
				t.Fatalf("%q: 416 with Content-Range %q and %d body bytes", h, cr, len(body))
			}
		default:
			t.Fatalf("%q: status %d", h, resp.StatusCode)
		}
	})
}

// FuzzConditional: If-None-Match uses the weak comparison and If-Modified-
// Since whole seconds; through the server, If-None-Match wins over
// If-Modified-Since (RFC 9110 13.1.3), a 304 has no body and keeps the ETag,
// and anything else is the whole file.
func FuzzConditional(f *testing.F) {
	ts := newTestServer(f, nil)
	const path = "/variants/badge.svg"
	const variant = path + "?size=20"
	file, err := os.ReadFile(filepath.Join(ts.root, path))
	if err != nil {
		f.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(ts.root, path))
	if err != nil {
		f.Fatal(err)
	}
	mod := fi.ModTime()
	resp, _ := ts.get(f, path)
	etag := resp.Header.Get("ETag")
	resp, _ = ts.get(f, variant)
	variantETag := resp.Header.Get("ETag")
	if etag == "" || variantETag == "" || etag == variantETag {
		f.Fatalf("ETags %q and %q", etag, variantETag)
	}

	lm := mod.UTC().Format(http.TimeFormat)
	for _, s := range [][2]string{
		{etag, ""}, {"W/" + etag, ""}, {`"x", ` + etag, ""}, {"*", ""}, {" * ", ""}, {`"x"`, lm}, {"", lm},
		{"", "Thu, 01 Jan 1970 00:00:00 GMT"}, {"", "Monday, 02-Jan-06 15:04:05 GMT"}, {"", "Mon Jan  2 15:04:05 2006"},
		{variantETag, lm}, {strings.ToUpper(etag), ""}, {etag[:len(etag)-1], ""}, {"W/W/" + etag, ""}, {",,," + etag + ",", "x"},
	} {
		f.Add(s[0], s[1], mod.Unix(), uint32(mod.Nanosecond()))
	}
	f.Add("", "Mon, 01 Jan 0001 00:00:00 GMT", int64(-62135596800), uint32(0))

	// Keep modification times where HTTP dates can name them.
	const minUnix, maxUnix = -62135596800, 253402300799 // years 1 and 9999
	f.Fuzz(func(t *testing.T, inm, ims string, secs int64, nanos uint32) {
		span := int64(maxUnix - minUnix)
		m := time.Unix(minUnix+(secs%span+span)%span, int64(nanos%1e9))

		got := etagMatches(inm, etag)
		if got && strings.TrimSpace(inm) != "*" && !strings.Contains(inm, etag) {
			t.Fatalf("If-None-Match %q matched %s without naming it", inm, etag)
		}
		for _, h := range []string{inm + ", " + etag, "W/" + etag + "," + inm} {
			if !etagMatches(h, etag) {
				t.Fatalf("If-None-Match %q does not match %s", h, etag)
			}
		}

		nm := notModifiedSince(ims, m)
		at, perr := http.ParseTime(ims)
		if want := perr == nil && m.Unix() <= at.Unix(); nm != want {
			t.Fatalf("If-Modified-Since %q against %v: %v, want %v", ims, m, nm, want)
		}
		if notModifiedSince(ims, time.Time{}) {
			t.Fatalf("If-Modified-Since %q: an unknown modification time counts as not modified", ims)
		}
		if perr == nil {
			// Whole seconds: any instant within the header's second is not
			// modified since it; the next second is.
			if !notModifiedSince(ims, at.Add(999*time.Millisecond)) || notModifiedSince(ims, at.Add(time.Second)) {
				t.Fatalf("If-Modified-Since %q is not compared at one-second precision", ims)
			}
		}

		var headers []string
		if plainHeaderValue(inm) {
			headers = append(headers, "If-None-Match", inm)
		} else {
			inm = ""
		}
		if plainHeaderValue(ims) {
			headers = append(headers, "If-Modified-Since", ims)
		} else {
			ims = ""
		}
		for _, c := range []struct {
			target, etag string
			ims          bool // If-Modified-Since must be evaluated
		}{{path, etag, true}, {variant, variantETag, false}} {
			resp, body := ts.get(t, c.target, headers...)
			want := 200
			if etagMatches(inm, c.etag) || (inm == "" && c.ims && notModifiedSince(ims, mod)) {
				want = 304
			}
			// A variant may answer If-Modified-Since or not (today it does
			// not: its ETag is the cheap check).
			if inm == "" && !c.ims && notModifiedSince(ims, mod) && resp.StatusCode == 304 {
				want = 304
			}
			if resp.StatusCode != want {
				t.Fatalf("%s with If-None-Match %q, If-Modified-Since %q: status %d, want %d", c.target, inm, ims, resp.StatusCode, want)
			}
			if resp.Header.Get("ETag") != c.etag {
				t.Fatalf("%s: ETag %q, want %q", c.target, resp.Header.Get("ETag"), c.etag)
			}
			switch {
			case want == 304 && len(body) != 0:
				t.Fatalf("%s: 304 with %d body bytes", c.target, len(body))
			case want == 200 && c.target == path && !bytes.Equal(body, file):
				t.Fatalf("%s: 200 with %d bytes that are not the file", c.target, len(body))
			case want == 200 && len(body) == 0:
				t.Fatalf("%s: 200 without a body", c.target)
			}
		}
	})
}
