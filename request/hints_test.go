package request

import (
	"strings"
	"testing"

	"image-proxy/setting"
)

func hintGate(t *testing.T, list, sizes string) *Gate {
	t.Helper()
	g, err := NewGate(ControlsConfig{AllowQuality: true, AllowedSizes: sizes,
		Presets: "hero=size:800;q=quality:80;tall=height:300",
		Hints:   HintsConfig{ClientHints: list, SaveDataQuality: 40}}, 4000, newRefusals())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestWidthHint: Sec-CH-Width becomes the width of a transform that gives
// neither size nor width, rounded up; a hint that does not read is
// ignored, one too large capped; Vary names the header exactly when it
// could have changed the answer.
func TestWidthHint(t *testing.T) {
	steps, sizes := hintGate(t, "dpr,width,save-data", ""), hintGate(t, "dpr, Width", "360,720,1200")
	for _, c := range []struct {
		g             *Gate
		query         string
		h             Hints
		width, height int
		vary          Vary
	}{
		{steps, "format=webp", Hints{Width: "750"}, 800, 0, VaryWidth | VarySaveData},
		{steps, "format=webp", Hints{Width: "800"}, 800, 0, VaryWidth | VarySaveData},
		{steps, "format=webp", Hints{Width: "1"}, 100, 0, VaryWidth | VarySaveData},
		{steps, "format=webp", Hints{Width: " 401 "}, 500, 0, VaryWidth | VarySaveData},
		{steps, "format=webp", Hints{Width: "99999999999999"}, 4000, 0, VaryWidth | VarySaveData}, // huge: capped
		{steps, "format=webp", Hints{Width: "3999"}, 4000, 0, VaryWidth | VarySaveData},
		{steps, "format=webp", Hints{Width: "0"}, 0, 0, VaryWidth | VarySaveData},                      // zero: ignored
		{steps, "format=webp", Hints{Width: "-300"}, 0, 0, VaryWidth | VarySaveData},                   // negative: ignored
		{steps, "format=webp", Hints{Width: "wide"}, 0, 0, VaryWidth | VarySaveData},                   // not a number: ignored
		{steps, "format=webp", Hints{Width: "300.5"}, 0, 0, VaryWidth | VarySaveData},                  // not whole: ignored
		{steps, "format=webp", Hints{Width: "1e3"}, 0, 0, VaryWidth | VarySaveData},                    // no exponents
		{steps, "format=webp", Hints{}, 0, 0, VaryWidth | VarySaveData},                                // absent: still varies
		{steps, "height=300&quality=70", Hints{Width: "750", DPR: "2"}, 800, 600, VaryDPR | VaryWidth}, // height to device px
		{steps, "height=300&quality=70&dpr=2", Hints{Width: "750", DPR: "3"}, 800, 600, VaryWidth},
		{steps, "size=300", Hints{Width: "750"}, 0, 0, VaryDPR | VarySaveData}, // size given: no hint
		{steps, "width=300", Hints{Width: "750"}, 300, 0, VaryDPR | VarySaveData},
		{steps, "preset=hero", Hints{Width: "750"}, 0, 0, VaryDPR | VarySaveData}, // the preset's size
		{steps, "", Hints{Width: "750", DPR: "2", SaveData: "on"}, 0, 0, 0},       // passthrough
		{sizes, "format=webp", Hints{Width: "700"}, 720, 0, VaryWidth},
		{sizes, "format=webp", Hints{Width: "721"}, 1200, 0, VaryWidth},
		{sizes, "format=webp", Hints{Width: "5000"}, 1200, 0, VaryWidth},
		{sizes, "format=webp", Hints{Width: "10"}, 360, 0, VaryWidth},
		{sizes, "preset=tall", Hints{Width: "700", DPR: "2"}, 720, 600, VaryDPR | VaryWidth},
	} {
		r, vary, err := c.g.Hinted("a.jpg", values(c.query), c.h)
		if err != nil || r.Width != c.width || r.Height != c.height || vary != c.vary {
			t.Errorf("%q %+v: width %d height %d vary %q (%v), want %d, %d, %q", c.query, c.h, r.Width, r.Height, vary, err,
				c.width, c.height, c.vary)
		}
		if c.width > 0 && c.query != "width=300" {
			if w, _ := r.Sides(4000); w != c.width {
				t.Errorf("%q %+v: effective width %d, want %d (dpr must not multiply a hint)", c.query, c.h, w, c.width)
			}
		}
	}
}

// TestSaveDataHint lowers the quality of a transform that fixes none.
func TestSaveDataHint(t *testing.T) {
	g := hintGate(t, "save-data", "")
	for _, c := range []struct {
		query, saveData string
		quality         int
		vary            Vary
	}{
		{"size=100", "on", 40, VarySaveData},
		{"size=100", "On ", 40, VarySaveData},
		{"size=100", "", 0, VarySaveData},
		{"size=100", "off", 0, VarySaveData},
		{"size=100&quality=90", "on", 90, 0},
		{"preset=q", "on", 80, 0},
		{"size=100&format=json", "on", 0, 0}, // the answer has no quality
	} {
		r, vary, err := g.Hinted("a.jpg", values(c.query), Hints{SaveData: c.saveData, DPR: "2", Width: "500"})
		if err != nil || r.Quality != c.quality || vary != c.vary {
			t.Errorf("%q Save-Data %q: quality %d vary %q (%v), want %d %q", c.query, c.saveData, r.Quality, vary, err, c.quality, c.vary)
		}
		if r.DPR != 1 || r.Width != 0 {
			t.Errorf("%q: dpr %v width %d: hints not honoured were applied", c.query, r.DPR, r.Width)
		}
	}
}

// TestHintsSetting: empty is the default (dpr); none honours nothing;
// anything else is refused, the setting named.
func TestHintsSetting(t *testing.T) {
	for list, acceptCH := range map[string]string{"": "Sec-CH-DPR", "dpr": "Sec-CH-DPR", "none": "",
		"width,dpr,save-data": "Sec-CH-DPR, Sec-CH-Width", "save-data": ""} {
		if got := hintGate(t, list, "").AcceptCH(); got != acceptCH {
			t.Errorf("%q: Accept-CH %q, want %q", list, got, acceptCH)
		}
	}
	r, vary, _ := hintGate(t, "none", "").Hinted("a.jpg", values("size=100"), Hints{DPR: "2"})
	if r.DPR != 1 || vary != 0 {
		t.Errorf("none: dpr %v vary %q", r.DPR, vary)
	}
	for _, c := range []HintsConfig{{ClientHints: "dpr,viewport"}, {ClientHints: "dpr,"}, {SaveDataQuality: 101}, {SaveDataQuality: -1}} {
		err := ControlsConfig{Hints: c}.Validate(4000)
		var se *setting.Error
		if err == nil || !strings.Contains(err.Error(), "IMAGE_PROXY_") {
			t.Errorf("%+v: %v, want a setting error", c, err)
		} else if c.ClientHints != "" && (!asSetting(err, &se) || se.Name != "IMAGE_PROXY_CLIENT_HINTS") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func asSetting(err error, se **setting.Error) bool {
	e, ok := err.(*setting.Error)
	*se = e
	return ok
}

func TestVaryString(t *testing.T) {
	for v, want := range map[Vary]string{0: "", VaryDPR: "Sec-CH-DPR", VaryWidth | VarySaveData: "Sec-CH-Width, Width, Save-Data",
		VaryDPR | VaryWidth | VarySaveData: "Sec-CH-DPR, Sec-CH-Width, Width, Save-Data"} {
		if got := v.String(); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
}

// FuzzWidthHint: any header value reads as no hint or a width from 1 to
// the cap, and only all-digit values read as a width.
func FuzzWidthHint(f *testing.F) {
	for _, s := range []string{"750", "0", "-1", "1e3", " 12 ", "99999999999999", "", "0000000000000", "1.5", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		w, ok := WidthHint(v, 4000)
		if !ok {
			return
		}
		if w < 1 || w > 4000 || strings.Trim(strings.TrimSpace(v), "0123456789") != "" {
			t.Errorf("%q: %d", v, w)
		}
	})
}
