package request

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"image-proxy/fault"
	"image-proxy/imageformat"
)

func values(raw string) *Query { return RawQuery(raw) }

func TestRawQueryMatchesParseQuery(t *testing.T) {
	for _, raw := range []string{"size=1&size=2", "a=%20b&c=d+e", "%73ize=5", "size", "size=", "x=%zz&size=3", "&&size=4&", "format=web%70"} {
		want, _ := url.ParseQuery(raw)
		for _, k := range []string{"size", "a", "c", "format", "x"} {
			got := RawQuery(raw).Values(k)
			if strings.Join(got, "|") != strings.Join(want[k], "|") || len(got) != len(want[k]) {
				if !(k == "x" && raw == "x=%zz&size=3") { // ParseQuery drops the whole pair
					t.Errorf("%q[%s] = %q, ParseQuery says %q", raw, k, got, want[k])
				}
			}
		}
	}
}

func TestSplitTarget(t *testing.T) {
	cases := map[string][2]string{
		"/a.jpg?size=1":             {"/a.jpg", "size=1"},
		"/a.jpg":                    {"/a.jpg", ""},
		"http://host:8/a/b.jpg?x=1": {"/a/b.jpg", "x=1"},
		"HTTP://host":               {"/", ""},
		"/a.jpg?x=1#frag":           {"/a.jpg", "x=1"},
		"/a/http://b.jpg":           {"/a/http://b.jpg", ""},
		"/%2e%2e/x?u=http://evil/":  {"/%2e%2e/x", "u=http://evil/"},
	}
	for in, want := range cases {
		p, q := SplitTarget(in)
		if p != want[0] || q != want[1] {
			t.Errorf("%q → %q, %q; want %q", in, p, q, want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		query, hint string
		want        Request
		box         int
	}{
		{"", "", Request{DPR: 1}, 0},
		{"size=400", "", Request{Transform: true, Size: 400, DPR: 1}, 400},
		{"size=400&dpr=2", "", Request{Transform: true, Size: 400, DPR: 2, DPRQuery: true}, 800},
		{"size=400", "2", Request{Transform: true, Size: 400, DPR: 2}, 800},
		{"size=3000&dpr=2", "", Request{Transform: true, Size: 3000, DPR: 2, DPRQuery: true}, 4000},
		{"size=333&dpr=1.5", "", Request{Transform: true, Size: 333, DPR: 1.5, DPRQuery: true}, 500},
		{"format=WebP", "", Request{Transform: true, DPR: 1, Output: Output{Format: imageformat.WebP}}, 0},
		{"format=auto", "", Request{Transform: true, DPR: 1, Output: Output{Auto: true}}, 0},
		{"dpr=3", "", Request{DPR: 3, DPRQuery: true}, 0},
		{"resize_algorithm=thumbnail", "", Request{DPR: 1, Algorithm: imageformat.AlgorithmThumbnail, AlgorithmSet: true}, 0},
		{"size=10", "9.99", Request{Transform: true, Size: 10, DPR: 9.99}, 100},
		{"size=10", "1e1", Request{Transform: true, Size: 10, DPR: 1}, 10},
	}
	for _, c := range cases {
		got, err := Parse(values(c.query), c.hint, 4000)
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		if got != c.want || got.Box(4000) != c.box {
			t.Errorf("%q hint %q: got %+v box %d, want %+v box %d", c.query, c.hint, got, got.Box(4000), c.want, c.box)
		}
	}
}

func TestResolvePath(t *testing.T) {
	ok := map[string]string{
		"/a.jpg":             "a.jpg",
		"/dir/a.jpg":         "dir/a.jpg",
		"/with%20space.jpg":  "with space.jpg",
		"/caf%C3%A9.jpg":     "café.jpg",
		"/a%2Fb.jpg":         "a/b.jpg",
		"/static/image/a.jg": "a.jg",
		"/static/imagea.jpg": "static/imagea.jpg",
		"/a..b.jpg":          "a..b.jpg",
	}
	for raw, want := range ok {
		got, err := ResolvePath(raw, "/static/image")
		if err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "/", "a.jpg", "//a.jpg", "/../a", "/a/../b", "/.a", "/a/.b/c", "/%2e%2e/a",
		"/a\\b", "/a%5cb", "/a%00b", "/a/", "/static/image", "/static/image/", "/" + strings.Repeat("x", 2000)} {
		if got, err := ResolvePath(raw, "/static/image"); err == nil {
			t.Errorf("%q: accepted as %q", raw, got)
		}
	}
}

// FuzzResolvePath: whatever the input, an accepted path is relative, has no
// empty, dot or dot-dot segment, no backslash and no NUL.
func FuzzResolvePath(f *testing.F) {
	for _, s := range []string{"/a.jpg", "/../x", "/%2e%2e%2fx", "/a/./b", "/a%5c..%5cb", "/%c0%ae/x", "//x", "/a%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rel, err := ResolvePath(raw, "/p")
		if err != nil {
			return
		}
		if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsAny(rel, "\\\x00") {
			t.Fatalf("%q → %q", raw, rel)
		}
		for _, seg := range strings.Split(rel, "/") {
			if seg == "" || seg[0] == '.' {
				t.Fatalf("%q → %q has segment %q", raw, rel, seg)
			}
		}
	})
}

// FuzzParseRequest: never panics; accepted values are within the contract's ranges.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"size=400&format=webp&dpr=2", "size=&dpr=x", "format=AUTO", "dpr=10.0000001", "size=4000&dpr=10"} {
		f.Add(s, "2")
	}
	f.Fuzz(func(t *testing.T, query, hint string) {
		if !utf8.ValidString(query) {
			return
		}
		r, err := Parse(values(query), hint, 4000)
		if err != nil {
			if fe, ok := err.(*fault.Error); !ok || fe.Kind != fault.BadRequest || fe.Msg == "" || fe.Msg != err.Error() {
				t.Fatalf("error %v of type %T: want a bad request whose text is its public message", err, err)
			}
			return
		}
		if r.DPR < 1 || r.DPR > 10 || r.Size < 0 || r.Size > 4000 || r.Box(4000) > 4000 || (r.Size > 0 && r.Box(4000) < 1) {
			t.Fatalf("%q/%q → %+v", query, hint, r)
		}
	})
}

func TestAccepts(t *testing.T) {
	cases := []struct {
		header string
		avif   bool
		webp   bool
	}{
		{"image/avif,image/webp,image/apng,*/*;q=0.8", true, true},
		{"image/webp,*/*", false, true},
		{"*/*", false, false},
		{"image/*", false, false},
		{"IMAGE/AVIF", true, false},
		{"image/avif;q=0,image/webp;q=0.5", false, true},
		{"image/avif; q=0.0", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		got := ClassifyAccept(c.header)
		if got.AVIF != c.avif || got.WebP != c.webp {
			t.Errorf("%q: %+v", c.header, got)
		}
	}
}

// referenceQuery is the query reader RawQuery replaced (a scan per key):
// FuzzRawQuery holds the split-once reader to its answers.
func referenceQuery(query, key string) []string {
	var out []string
	for rest := query; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if k != key {
			if dk, err := url.QueryUnescape(k); err != nil || dk != key {
				continue
			}
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		out = append(out, v)
	}
	return out
}

// FuzzRawQuery: every key of every query gets the values, in order, that
// the per-key scan gave, past the pairs kept inline too.
func FuzzRawQuery(f *testing.F) {
	for _, s := range []string{"size=1&size=2", "a=%20b&c=d+e", "%73ize=5", "x=%zz&size=3", "&&size=4&",
		"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&a=10&size=11", "s%ize=1&size=%"} {
		f.Add(s, "size")
	}
	f.Fuzz(func(t *testing.T, query, key string) {
		if key == "" || strings.ContainsAny(key, "%+") {
			return // Parse asks only for parameter names, never escaped
		}
		q := RawQuery(query)
		got, want := q.Values(key), referenceQuery(query, key)
		if len(got) != len(want) || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("%q[%q] = %q, want %q", query, key, got, want)
		}
		if again := q.Values(key); strings.Join(again, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("%q[%q] asked twice = %q, want %q", query, key, again, want)
		}
	})
}
