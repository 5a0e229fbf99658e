package request

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCanonicalRoundTrip: a query and its canonical form parse to the same
// request, and the canonical form is a fixed point, in the manner of a URL
// grammar's parse/generate tests.
func TestCanonicalRoundTrip(t *testing.T) {
	cases := []struct{ query, canonical string }{
		{"", ""},
		{"size=400", "size=400"},
		{"format=WEBP&size=400&v=3", "format=webp&size=400"},
		{"format=jpg", "format=jpeg"},
		{"format=Auto&dpr=2&size=10", "dpr=2&format=auto&size=10"},
		{"dpr=1.50&size=333", "dpr=1.5&size=333"},
		{"dpr=2.", "dpr=2"},
		{"resize_algorithm=THUMBNAIL&size=1", "resize_algorithm=thumbnail&size=1"},
		{"%73ize=5&format=png+", ""}, // "png " is refused below
		{"size=0012", "size=12"},
		{"utm_source=x&size=9&fbclid=y", "size=9"},
		{"quality=075&size=9", "quality=75&size=9"},
		{"size=9&preset=Phone&sig=abc&quality=1", "preset=Phone&quality=1&size=9"},
		{"resize_algorithm=auto&preset=p&dpr=10&format=jpg&quality=100&size=1",
			"dpr=10&format=jpeg&preset=p&quality=100&resize_algorithm=auto&size=1"},
	}
	for _, c := range cases {
		r, err := Parse(values(c.query), "", 4000)
		if c.query == "%73ize=5&format=png+" {
			if err == nil {
				t.Errorf("%q: format with a trailing space accepted", c.query)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		got := r.Canonical()
		if got != c.canonical {
			t.Errorf("%q → %q, want %q", c.query, got, c.canonical)
		}
		again, err := Parse(values(got), "", 4000)
		if err != nil || again != r || again.Canonical() != got {
			t.Errorf("%q: canonical %q parses to %+v (%v), want %+v", c.query, got, again, err, r)
		}
	}
}

// FuzzCanonical: for any accepted query the canonical form round-trips.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"size=400&format=webp&dpr=2", "format=AUTO", "dpr=.5", "resize_algorithm=lanczos3&size=4000&dpr=10",
		"quality=07&preset=a-B_9&sig=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		if !utf8.ValidString(query) {
			return
		}
		r, err := Parse(values(query), "", 4000)
		if err != nil {
			return
		}
		again, err := Parse(values(r.Canonical()), "", 4000)
		if err != nil || again != r {
			t.Fatalf("%q → %q → %+v (%v), want %+v", query, r.Canonical(), again, err, r)
		}
	})
}

// parseURL is the grammar's part of serving a URL: the target split, its
// path resolved (no strip prefix), the /r/ form rewritten when rRoutes,
// the query parsed.
func parseURL(target string, rRoutes bool) (string, Request, error) {
	rawPath, rawQ := SplitTarget(target)
	rel, err := ResolvePath(rawPath, "")
	if err != nil {
		return "", Request{}, err
	}
	q := RawQuery(rawQ)
	if rRoutes {
		if rel, q, err = RouteR(rel, q); err != nil {
			return "", Request{}, err
		}
	}
	r, err := Parse(q, "", 4000)
	return rel, r, err
}

// canonicalURL writes a parsed URL in its one form: the main form, the
// path escaped once, then the canonical query.
func canonicalURL(rel string, r Request) string {
	return (&url.URL{Path: "/" + rel}).EscapedPath() + "?" + r.Canonical()
}

// TestURLRoundTrip: a URL parses to a path and a request; its canonical
// form parses to the same path and request, and is a fixed point. The /r/
// form's canonical URL is the main form it stands for.
func TestURLRoundTrip(t *testing.T) {
	cases := []struct {
		target, canonical string
		rRoutes           bool
	}{
		{"/rocket.jpg", "/rocket.jpg?", false},
		{"/rocket.jpg?size=400&format=WEBP&v=3#top", "/rocket.jpg?format=webp&size=400", false},
		{"http://cdn.example/a/b.png?dpr=2.0&size=0100", "/a/b.png?dpr=2&size=100", false},
		{"/caf%C3%A9%20au%20lait.jpg?quality=075", "/caf%C3%A9%20au%20lait.jpg?quality=75", false},
		{"/a%2Fb.jpg?resize_algorithm=Lanczos3", "/a/b.jpg?resize_algorithm=lanczos3", false},
		{"/x+y%3F%25.jpg?%73ize=5", "/x+y%3F%25.jpg?size=5", false},
		{"/r/variants/0200/phone/astronaut.png?size=9&format=png&dpr=2", "/variants/astronaut.png?dpr=2&format=webp&preset=phone&size=200", true},
		{"/r/variants/200/phone/astronaut.png", "/r/variants/200/phone/astronaut.png?", false},
		{"/r/c/1/Desk_top/a/b%20c.jpg?quality=5", "/c/a/b%20c.jpg?format=webp&preset=Desk_top&quality=5&size=1", true},
	}
	for _, c := range cases {
		rel, r, err := parseURL(c.target, c.rRoutes)
		if err != nil {
			t.Errorf("%s: %v", c.target, err)
			continue
		}
		got := canonicalURL(rel, r)
		if got != c.canonical {
			t.Errorf("%s → %s, want %s", c.target, got, c.canonical)
		}
		again, r2, err := parseURL(got, c.rRoutes)
		if err != nil || again != rel || r2 != r || canonicalURL(again, r2) != got {
			t.Errorf("%s: canonical %s parses to %q %+v (%v), want %q %+v", c.target, got, again, r2, err, rel, r)
		}
	}
}

// FuzzURLRoundTrip: for any URL the grammar accepts, the canonical URL
// parses to the same path and request. With the /r/ routes on, a rewritten
// path that itself starts with r/ (an /r/ URL whose category is "r") has
// no main form the server would serve as such: it is left out.
func FuzzURLRoundTrip(f *testing.F) {
	for _, s := range []string{"/rocket.jpg?size=400&format=webp&dpr=2", "/a%2Fb/c%20d.jpg?format=AUTO&v=1",
		"/r/cat/100/phone/x.jpg?dpr=3", "http://h/x.png?quality=07&preset=a-B_9&sig=x", "/%E2%82%AC+%25.gif?size=1"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, target string, rRoutes bool) {
		if !utf8.ValidString(target) {
			return
		}
		rel, r, err := parseURL(target, rRoutes)
		if err != nil || rRoutes && strings.HasPrefix(rel, "r/") {
			return
		}
		canonical := canonicalURL(rel, r)
		again, r2, err := parseURL(canonical, rRoutes)
		if err != nil || again != rel || r2 != r || canonicalURL(again, r2) != canonical {
			t.Fatalf("%q → %q → %q %+v (%v), want %q %+v", target, canonical, again, r2, err, rel, r)
		}
	})
}
