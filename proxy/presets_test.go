package proxy

import (
	"testing"
)

// FuzzParsePresets: the preset parser never panics, and what it accepts
// is a table of valid names whose every value obeys the query's ranges and
// wins over any request.
func FuzzParsePresets(f *testing.F) {
	for _, s := range []string{"phone=size:400,quality:75,format:webp;desktop=size:1200,quality:85",
		" a = dpr : 2 ; ; b=resize_algorithm:thumbnail,format:auto", "x=size:1,size:2", "=;=,:", "p=quality:101"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		table, err := parsePresets(spec, 4000)
		if err != nil {
			return
		}
		anyRequest := request{transform: true, size: 77, dpr: 3.5, dprQuery: true, quality: 33, algoSet: true, preset: "x"}
		for name, p := range table {
			if !validName(name, false) {
				t.Fatalf("%q: name %q accepted", spec, name)
			}
			if p == (request{dpr: 1}) {
				t.Fatalf("%q: preset %q sets nothing", spec, name)
			}
			if p.size < 0 || p.size > 4000 || p.quality < 0 || p.quality > 100 || p.dpr < 1 || p.dpr > 10 || p.preset != "" {
				t.Fatalf("%q: preset %q out of range: %+v", spec, name, p)
			}
			r := p.over(anyRequest)
			if p.size > 0 && r.size != p.size || p.quality > 0 && r.quality != p.quality || p.dprQuery && r.dpr != p.dpr ||
				p.algoSet && r.algorithm != p.algorithm || p.format != (outputFormat{}) && r.format != p.format {
				t.Fatalf("%q: preset %q %+v did not win over %+v: %+v", spec, name, p, anyRequest, r)
			}
		}
	})
}
