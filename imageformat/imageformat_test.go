package imageformat

import (
	"slices"
	"strings"
	"testing"
)

func TestTableIsConsistent(t *testing.T) {
	seen := map[string]Format{}
	var ranks []int
	for f := range Count {
		s := f.spec()
		if s.name == "" || s.mime == "" {
			t.Errorf("format %d has no name or MIME type", f)
		}
		for _, n := range append([]string{s.name}, s.aliases...) {
			key := strings.ToLower(n)
			if g, dup := seen[key]; dup {
				t.Errorf("name %q is both %s and %s", n, g, f)
			}
			seen[key] = f
		}
		if s.outputRank > 0 {
			ranks = append(ranks, s.outputRank)
			if s.mime == table[Unknown].mime {
				t.Errorf("output %s has no MIME type of its own", f)
			}
		} else if len(s.aliases) > 0 {
			t.Errorf("%s is never encoded but has aliases", f)
		}
	}
	slices.Sort(ranks)
	for i, r := range ranks {
		if r != i+1 {
			t.Fatalf("output ranks %v are not 1..%d", ranks, len(ranks))
		}
	}
	if Format(200).String() != "unknown" || Format(200).MIME() != "application/octet-stream" || Format(200).CanEncode() {
		t.Error("a format beyond the table is not the unknown one")
	}
}

func TestOutputs(t *testing.T) {
	want := []Format{JPEG, PNG, WebP, GIF, AVIF}
	if got := Outputs(); !slices.Equal(got, want) {
		t.Errorf("Outputs() = %v, want %v", got, want)
	}
	if got := OutputNames(); !slices.Equal(got, []string{"avif", "jpeg", "jpg", "png", "webp", "gif"}) {
		t.Errorf("OutputNames() = %v", got)
	}
}

func TestAlgorithmNames(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Algorithm
		ok   bool
	}{
		{"auto", AlgorithmAuto, true}, {"LANCZOS3", AlgorithmLanczos3, true}, {"thumbnail", AlgorithmThumbnail, true},
		{"", AlgorithmAuto, false}, {"lanczos", AlgorithmAuto, false}, {"\u212auto", AlgorithmAuto, false},
	} {
		got, ok := ParseAlgorithm(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseAlgorithm(%q) = %s, %v", c.in, got, ok)
		}
		var a Algorithm
		if err := a.UnmarshalText([]byte(c.in)); (err == nil) != c.ok {
			t.Errorf("UnmarshalText(%q): %v", c.in, err)
		}
	}
	if err := new(Algorithm).UnmarshalText([]byte("bicubic")); err == nil || err.Error() != `invalid value "bicubic": must be lanczos3, thumbnail or auto` {
		t.Errorf("UnmarshalText error: %v", err)
	}
}
