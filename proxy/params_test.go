package proxy

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"image-proxy/transform"
)

func values(raw string) queryValues { return rawQuery(raw) }

func TestRawQueryMatchesParseQuery(t *testing.T) {
	for _, raw := range []string{"size=1&size=2", "a=%20b&c=d+e", "%73ize=5", "size", "size=", "x=%zz&size=3", "&&size=4&", "format=web%70"} {
		want, _ := url.ParseQuery(raw)
		for _, k := range []string{"size", "a", "c", "format", "x"} {
			got := rawQuery(raw).values(k)
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
		p, q := splitTarget(in)
		if p != want[0] || q != want[1] {
			t.Errorf("%q → %q, %q; want %q", in, p, q, want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		query, hint string
		want        request
		box         int
	}{
		{"", "", request{dpr: 1}, 0},
		{"size=400", "", request{transform: true, size: 400, dpr: 1}, 400},
		{"size=400&dpr=2", "", request{transform: true, size: 400, dpr: 2, dprQuery: true}, 800},
		{"size=400", "2", request{transform: true, size: 400, dpr: 2}, 800},
		{"size=3000&dpr=2", "", request{transform: true, size: 3000, dpr: 2, dprQuery: true}, 4000},
		{"size=333&dpr=1.5", "", request{transform: true, size: 333, dpr: 1.5, dprQuery: true}, 500},
		{"format=WebP", "", request{transform: true, dpr: 1, format: outputFormat{format: transform.FormatWebP}}, 0},
		{"format=auto", "", request{transform: true, dpr: 1, format: outputFormat{auto: true}}, 0},
		{"dpr=3", "", request{dpr: 3, dprQuery: true}, 0},
		{"resize_algorithm=thumbnail", "", request{dpr: 1, algorithm: transform.AlgorithmThumbnail, algoSet: true}, 0},
		{"size=10", "9.99", request{transform: true, size: 10, dpr: 9.99}, 100},
		{"size=10", "1e1", request{transform: true, size: 10, dpr: 1}, 10},
	}
	for _, c := range cases {
		got, err := parseRequest(values(c.query), c.hint, 4000)
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		if got != c.want || got.box(4000) != c.box {
			t.Errorf("%q hint %q: got %+v box %d, want %+v box %d", c.query, c.hint, got, got.box(4000), c.want, c.box)
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
		got, err := resolvePath(raw, "/static/image")
		if err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "/", "a.jpg", "//a.jpg", "/../a", "/a/../b", "/.a", "/a/.b/c", "/%2e%2e/a",
		"/a\\b", "/a%5cb", "/a%00b", "/a/", "/static/image", "/static/image/", "/" + strings.Repeat("x", 2000)} {
		if got, err := resolvePath(raw, "/static/image"); err == nil {
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
		rel, err := resolvePath(raw, "/p")
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
		r, err := parseRequest(values(query), hint, 4000)
		if err != nil {
			if _, ok := err.(*paramError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if r.dpr < 1 || r.dpr > 10 || r.size < 0 || r.size > 4000 || r.box(4000) > 4000 || (r.size > 0 && r.box(4000) < 1) {
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
		got := classifyAccept(c.header)
		if got.avif != c.avif || got.webp != c.webp {
			t.Errorf("%q: %+v", c.header, got)
		}
	}
}

// referenceQuery is the query reader rawQuery replaced (a scan per key):
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
			return // parseRequest asks only for parameter names, never escaped
		}
		q := rawQuery(query)
		got, want := q.values(key), referenceQuery(query, key)
		if len(got) != len(want) || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("%q[%q] = %q, want %q", query, key, got, want)
		}
		if again := q.values(key); strings.Join(again, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("%q[%q] asked twice = %q, want %q", query, key, again, want)
		}
	})
}
