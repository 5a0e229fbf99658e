package transform

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Hostile SVGs: none may hang, read files or render unbounded canvases.
func TestHostileSVG(t *testing.T) {
	laughs := `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">` +
		`<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">` +
		`<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">` +
		`<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>` +
		`<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><text y="20">&h;</text></svg>`
	var uses strings.Builder
	uses.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100"><defs><rect id="l0" width="1" height="1"/>`)
	for i := 1; i <= 24; i++ {
		uses.WriteString(`<g id="l` + itoa(i) + `"><use xlink:href="#l` + itoa(i-1) + `"/><use xlink:href="#l` + itoa(i-1) + `"/></g>`)
	}
	uses.WriteString(`</defs><use xlink:href="#l24"/></svg>`)
	cases := map[string]string{
		"billion laughs":  laughs,
		"exponential use": uses.String(),
		"external file image": `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="50" height="50">` +
			`<image xlink:href="file:///etc/passwd" width="50" height="50"/><image xlink:href="pipe.jpg" width="50" height="50"/></svg>`,
		"external entity": `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>` +
			`<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50"><text y="20">&x;</text></svg>`,
		"network reference": `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="50" height="50">` +
			`<image xlink:href="http://10.255.255.1/x.png" width="50" height="50"/></svg>`,
		"huge canvas":    `<svg xmlns="http://www.w3.org/2000/svg" width="1000000" height="1000000"><rect width="10" height="10"/></svg>`,
		"self reference": `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="50" height="50"><g id="a"><use xlink:href="#a"/></g></svg>`,
	}
	for name, svg := range cases {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			res, err := New(DefaultConfig()).Render(context.Background(), []byte(svg), Options{Box: 64, Format: FormatPNG})
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			if err == nil && strings.Contains(string(res.Data), "root:") {
				t.Error("file contents leaked into the output")
			}
			if name == "huge canvas" && KindOf(err) != KindTooLarge && KindOf(err) != KindInvalidImage {
				t.Errorf("huge canvas: %v", err)
			}
		})
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
