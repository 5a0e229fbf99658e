package apidocs

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"image-proxy/imageformat"
)

// today is the format table as it was when the lists began to be filled
// from it, written out so that this test does not move with the table.
var today = formatLists{
	query:   []string{"avif", "jpeg", "jpg", "png", "webp", "gif", "auto"},
	convert: []imageformat.Format{imageformat.WebP, imageformat.AVIF, imageformat.JPEG, imageformat.PNG},
	sources: []imageformat.Format{imageformat.JPEG, imageformat.PNG, imageformat.WebP, imageformat.GIF,
		imageformat.AVIF, imageformat.HEIF, imageformat.TIFF, imageformat.JXL, imageformat.SVG},
}

// TestFillKeepsTheFile: filled with the lists the file holds, the
// description is the file byte for byte: filling moves nothing else, and
// its indentation is the file's.
func TestFillKeepsTheFile(t *testing.T) {
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := fill(file, today)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, file) {
		i := 0
		for i < min(len(got), len(file)) && got[i] == file[i] {
			i++
		}
		t.Fatalf("filled description differs from the file at byte %d: %.80q, file %.80q", i, got[i:], file[i:])
	}
}

// TestFormatListsFollowTheTable: every format list of the served
// description is the table's (or, for /convert, the one given), and no
// other place of it lists formats or image types.
func TestFormatListsFollowTheTable(t *testing.T) {
	convert := []imageformat.Format{imageformat.WebP, imageformat.JPEG} // not the file's
	pages, err := Pages(convert)
	if err != nil {
		t.Fatal(err)
	}
	doc := page(t, pages, OpenAPIPath)
	var known []imageformat.Format
	for f := range imageformat.Count {
		if f != imageformat.Unknown {
			known = append(known, f)
		}
	}
	want := map[string][]string{
		queryFormats:   append(imageformat.OutputNames(), "auto", "json"),
		convertNames:   {"webp", "jpeg", "jpg"},
		convertContent: mimes(convert),
	}
	for _, p := range sourceContents {
		want[p] = mimes(known)
		if slices.Contains(factsContents, p) {
			want[p] = append(want[p], "application/json") // format=json's answer
		}
	}
	for p, w := range want {
		if got := listAt(t, doc, p); !slices.Equal(got, w) {
			t.Errorf("%s lists %v, want %v", p, got, w)
		}
	}
	var tree any
	if err := json.Unmarshal(doc, &tree); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, p := range formatPlaces(tree, "", known) {
		found[p] = true
		if _, filled := want[p]; !filled {
			t.Errorf("%s lists formats that are not filled from the table", p)
		}
	}
	for p := range want {
		if !found[p] {
			t.Errorf("the search for format lists missed %s", p)
		}
	}
}

func mimes(formats []imageformat.Format) []string {
	var m []string
	for _, f := range formats {
		m = append(m, f.MIME())
	}
	return m
}

// listAt is the array at pointer p, or the keys of the object there, in
// document order.
func listAt(t *testing.T, doc []byte, p string) []string {
	t.Helper()
	raw := json.RawMessage(doc)
	for _, part := range strings.Split(p, "/")[1:] {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		raw = obj[strings.NewReplacer("~1", "/", "~0", "~").Replace(part)]
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	open, err := dec.Token()
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	var list []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		list = append(list, tok.(string))
		if open == json.Delim('{') {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
	}
	return list
}

// formatPlaces are the pointers of every enum that names an image format
// and every content map with an image type as a key.
func formatPlaces(v any, ptr string, known []imageformat.Format) []string {
	var places []string
	names := func(s string) bool {
		return slices.ContainsFunc(known, func(f imageformat.Format) bool {
			return s == f.String() || slices.Contains(f.Aliases(), s) || s == f.MIME()
		})
	}
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := ptr + "/" + pointerEscape.Replace(k)
			if names(k) {
				places = append(places, ptr)
			}
			if list, ok := e.([]any); ok && k == "enum" && slices.ContainsFunc(list, func(x any) bool { s, _ := x.(string); return names(s) }) {
				places = append(places, p)
			}
			places = append(places, formatPlaces(e, p, known)...)
		}
	case []any:
		for i, e := range v {
			places = append(places, formatPlaces(e, ptr+"/"+strconv.Itoa(i), known)...)
		}
	}
	return places
}

func TestReplaceAt(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		values    map[string]string
		want, err string
	}{
		{"nested object", "{\n  \"a\": {\n    \"b\": [\n      1\n    ],\n    \"c\": 2\n  }\n}\n",
			map[string]string{"/a/b": `["x",{"y":[]}]`},
			"{\n  \"a\": {\n    \"b\": [\n      \"x\",\n      {\n        \"y\": []\n      }\n    ],\n    \"c\": 2\n  }\n}\n", ""},
		{"two, in document order", `{"z": 1, "a": [0, {"k": true}]}`,
			map[string]string{"/a/1/k": `false`, "/z": `{"q":1}`},
			"{\"z\": {\n  \"q\": 1\n}, \"a\": [0, {\"k\": false}]}", ""},
		{"escaped key", `{"/x~": "old", "~1": 1}`, map[string]string{"/~1x~0": `"new"`}, `{"/x~": "new", "~1": 1}`, ""},
		{"the whole document", `  [1]`, map[string]string{"": `[2]`}, "  [\n    2\n  ]", ""},
		{"nothing there", `{"a": {"b": 1}}`, map[string]string{"/a/c": `1`, "/a/b": `2`}, "", "openapi.json has no value at /a/c"},
		{"array index past the end", `{"a": [1]}`, map[string]string{"/a/1": `1`}, "", "openapi.json has no value at /a/1"},
		{"broken document", `{"a": [1}`, map[string]string{"/a/0": `2`}, "", "openapi.json: invalid character '}'"},
		{"broken value", `{"a": 1}`, map[string]string{"/a": `[`}, "", `openapi.json at "/a": unexpected end of JSON input`},
		{"a key twice", `{"a": 1, "a": 2}`, map[string]string{"/a": `3`}, "", `openapi.json: at "/a": a key given twice`},
		{"two documents", `{"a": 1} {}`, map[string]string{"/a": `3`}, "", "openapi.json: more than one value"},
		{"empty", ``, map[string]string{"": `3`}, "", `openapi.json: at "": EOF`},
	} {
		values := map[string]json.RawMessage{}
		for p, v := range c.values {
			values[p] = json.RawMessage(v)
		}
		got, err := replaceAt([]byte(c.doc), values)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == "" && string(got) != c.want:
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

// FuzzReplaceAt: on any document, replacing any one value either fails
// or gives a document where that value, and only it, has changed.
func FuzzReplaceAt(f *testing.F) {
	f.Add([]byte(`{"a": {"b": [1, 2]}, "c": "d"}`), "/a/b/1", []byte(`{"x": [true]}`))
	f.Add([]byte("[\n  {\n    \"~\": null\n  }\n]"), "/0/~0", []byte(`"s"`))
	f.Fuzz(func(t *testing.T, doc []byte, ptr string, value []byte) {
		if !json.Valid(value) {
			return
		}
		got, err := replaceAt(doc, map[string]json.RawMessage{ptr: value})
		if err != nil {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("replacing %s in %q with %q gives invalid %q", ptr, doc, value, got)
		}
		var before, after, want any
		_ = json.Unmarshal(doc, &before)
		_ = json.Unmarshal(got, &after)
		_ = json.Unmarshal(value, &want)
		if !setAt(&before, ptr, want) {
			t.Fatalf("%s was replaced in %q but names no value", ptr, doc)
		}
		if b, _ := json.Marshal(before); !bytes.Equal(b, mustMarshal(t, after)) {
			t.Fatalf("replacing %s in %q with %q gives %q", ptr, doc, value, got)
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setAt sets the value at pointer p of a decoded document.
func setAt(v *any, p string, value any) bool {
	if p == "" {
		*v = value
		return true
	}
	if !strings.HasPrefix(p, "/") {
		return false
	}
	head, rest, deeper := strings.Cut(p[1:], "/")
	if deeper {
		rest = "/" + rest
	}
	head = strings.NewReplacer("~1", "/", "~0", "~").Replace(head)
	switch c := (*v).(type) {
	case map[string]any:
		e, ok := c[head]
		if ok && setAt(&e, rest, value) {
			c[head] = e
			return true
		}
	case []any:
		i, err := strconv.Atoi(head)
		if err == nil && i >= 0 && i < len(c) && strconv.Itoa(i) == head && setAt(&c[i], rest, value) {
			return true
		}
	}
	return false
}
