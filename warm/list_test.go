package warm

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"image-proxy/request"
)

func TestS3Paths(t *testing.T) {
	skip := []string{"results/", "static/"}
	for _, c := range []struct {
		in   []string
		want []string
		bad  string
	}{
		{nil, []string{""}, ""},
		{[]string{"."}, []string{""}, ""},
		{[]string{"photos/", "cat.jpg", "a//b.jpg"}, []string{"photos", "cat.jpg", "a/b.jpg"}, ""},
		{[]string{"../x.jpg"}, nil, "not a plain path"},
		{[]string{"/etc/passwd"}, nil, "not a plain path"},
		{[]string{"photos/.hidden.jpg"}, nil, "not a plain path"},
		{[]string{"results"}, nil, "lies under results/"},
		{[]string{"static/cat-100.webp"}, nil, "lies under static/"},
		{[]string{"resultsX.jpg"}, []string{"resultsX.jpg"}, ""},
	} {
		got, err := S3Paths(c.in, "", skip)
		if c.bad == "" && (err != nil || !slices.Equal(got, c.want)) || c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("%q: %q %v, want %q %q", c.in, got, err, c.want, c.bad)
		}
	}
	// Under a prefix, the keys checked are the prefix's.
	if _, err := S3Paths([]string{"results"}, "originals/", skip); err != nil {
		t.Errorf("originals/results is an original: %v", err)
	}
}

func TestNameable(t *testing.T) {
	for rel, want := range map[string]bool{
		"cat.jpg": true, "photos/a b.jpg": true, "100%.jpg": true, "a%20b.jpg": true, "ü/ñ.png": true, "a+b?c#d.jpg": true,
		".hidden/a.jpg": false, "a/.b.jpg": false, "photos/": false, "a//b.jpg": false, "a\\b.jpg": false, "": false, "a/../b.jpg": false,
	} {
		if got := nameable(rel); got != want {
			t.Errorf("nameable(%q) = %v, want %v", rel, got, want)
		}
	}
}

// FuzzS3Paths: what is accepted is a path a URL can name, under no
// skipped prefix; what nameable accepts resolves, escaped, to itself.
func FuzzS3Paths(f *testing.F) {
	for _, s := range []string{"photos", "../x", "a/./b", "results/x", ".", "/abs", "a%20b", "a//b/", "\x00", "100%.jpg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := S3Paths([]string{s}, "p/", []string{"p/results/"})
		if err == nil && got[0] != "" && (!nameable(got[0]) || strings.HasPrefix("p/"+got[0]+"/", "p/results/")) {
			t.Errorf("%q accepted as %q", s, got[0])
		}
		if nameable(s) {
			if r, err := request.ResolvePath("/"+url.PathEscape(s), ""); err != nil && !strings.Contains(s, "/") || err == nil && r != s {
				t.Errorf("nameable(%q) but it resolves to %q %v", s, r, err)
			}
		}
	})
}

func FuzzParseS3URL(f *testing.F) {
	for _, s := range []string{"s3://b/p/", "s3://b", "s3:///x", "s3://b/../x", "/dir", "s3://b/p", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bucket, prefix, ok, err := ParseS3URL(s)
		switch {
		case !ok && (err != nil || strings.HasPrefix(s, "s3://")):
			t.Errorf("%q: ok %v err %v", s, ok, err)
		case ok && err == nil && (bucket == "" || strings.Contains(bucket, "/") || prefix != "" && !strings.HasSuffix(prefix, "/") || strings.HasPrefix(prefix, "/")):
			t.Errorf("%q: bucket %q prefix %q", s, bucket, prefix)
		}
	})
}
