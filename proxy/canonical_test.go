package proxy

import (
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
		r, err := parseRequest(values(c.query), "", 4000)
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
		got := r.canonical()
		if got != c.canonical {
			t.Errorf("%q → %q, want %q", c.query, got, c.canonical)
		}
		again, err := parseRequest(values(got), "", 4000)
		if err != nil || again != r || again.canonical() != got {
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
		r, err := parseRequest(values(query), "", 4000)
		if err != nil {
			return
		}
		again, err := parseRequest(values(r.canonical()), "", 4000)
		if err != nil || again != r {
			t.Fatalf("%q → %q → %+v (%v), want %+v", query, r.canonical(), again, err, r)
		}
	})
}
