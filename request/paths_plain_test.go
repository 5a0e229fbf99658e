package request

import (
	"slices"
	"strings"
	"testing"
)

func TestPlainPath(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"photos/cat.jpg", "photos/cat.jpg", true},
		{"/photos/cat.jpg", "photos/cat.jpg", true},
		{"my caté.jpg", "my caté.jpg", true},
		{"100%.jpg", "100%.jpg", true},
		{"a?b.jpg", "a?b.jpg", true},
		{"", "", false},
		{"/", "", false},
		{"../x.jpg", "", false},
		{"a/../x.jpg", "", false},
		{".env", "", false},
		{"a/.git/config", "", false},
		{"a//b.jpg", "", false},
		{"//a.jpg", "", false},
		{"a\\..\\b", "", false},
	}
	for _, c := range cases {
		got, ok := PlainPath(c.in)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("PlainPath(%q) = %q, %t; want %q, %t", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzPlainPath(f *testing.F) {
	for _, s := range []string{"photos/cat.jpg", "/a", "../x", "a%2F..", ".env", "a//b", "100%.jpg", "é/ü.png"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, ok := PlainPath(p)
		if !ok {
			return
		}
		segs := strings.Split(got, "/")
		if slices.Contains(segs, "..") || slices.Contains(segs, "") || strings.HasPrefix(got, "/") {
			t.Fatalf("PlainPath(%q) = %q: not a plain downward path", p, got)
		}
		for _, s := range segs {
			if strings.HasPrefix(s, ".") {
				t.Fatalf("PlainPath(%q) = %q: hidden segment", p, got)
			}
		}
	})
}
