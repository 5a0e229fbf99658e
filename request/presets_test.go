package request

import (
	"testing"
)

// FuzzParsePresets: the preset parser never panics, and what it accepts
// is a table of valid names whose every value obeys the query's ranges and
// wins over any request.
func FuzzParsePresets(f *testing.F) {
	for _, s := range []string{"phone=size:400,quality:75,format:webp;desktop=size:1200,quality:85",
		" a = dpr : 2 ; ; b=resize_algorithm:thumbnail,format:auto", "x=size:1,size:2", "=;=,:", "p=quality:101",
		"card=width:1200,height:630,fit:cover,gravity:smart;face=focus:0.3, 0.7,fit:cover", "a=focus:1,0,blur:2,background:ffffff00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		table, err := parsePresets(spec, 4000)
		if err != nil {
			return
		}
		anyRequest := Request{Transform: true, Size: 77, DPR: 3.5, DPRQuery: true, Quality: 33, AlgorithmSet: true, Preset: "x"}
		for name, p := range table {
			if !validName(name, false) {
				t.Fatalf("%q: name %q accepted", spec, name)
			}
			if p == (Request{DPR: 1}) {
				t.Fatalf("%q: preset %q sets nothing", spec, name)
			}
			if p.Size < 0 || p.Size > 4000 || p.Quality < 0 || p.Quality > 100 || p.DPR < 1 || p.DPR > 10 || p.Preset != "" {
				t.Fatalf("%q: preset %q out of range: %+v", spec, name, p)
			}
			r := p.over(anyRequest)
			if p.Size > 0 && r.Size != p.Size || p.Quality > 0 && r.Quality != p.Quality || p.DPRQuery && r.DPR != p.DPR ||
				p.AlgorithmSet && r.Algorithm != p.Algorithm || p.Output != (Output{}) && r.Output != p.Output {
				t.Fatalf("%q: preset %q %+v did not win over %+v: %+v", spec, name, p, anyRequest, r)
			}
			if p.Width > 0 && r.Width != p.Width || p.Height > 0 && r.Height != p.Height || p.Focus.Set && r.Focus != p.Focus ||
				p.Fit != 0 && r.Fit != p.Fit || p.Gravity != 0 && r.Gravity != p.Gravity || p.Blur > 0 && r.Blur != p.Blur ||
				p.Background.Set && r.Background != p.Background || p.conflicts() != nil {
				t.Fatalf("%q: preset %q %+v: shape did not win over %+v, or conflicts: %+v", spec, name, p, anyRequest, r)
			}
		}
	})
}
