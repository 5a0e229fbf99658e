package apidocs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"image-proxy/imageformat"
)

// The description's format lists are not kept by hand: Pages fills them
// from the format table, so a format added to imageformat is described
// with no edit to openapi.json. The file holds them as the table gives
// them today (it stays a valid document to read), and only these values
// are replaced, found by JSON pointer (RFC 6901); every other byte is
// served as written.
const (
	queryFormats   = "/components/parameters/Format/schema/enum"
	convertNames   = "/components/schemas/ConvertForm/properties/format/enum"
	convertContent = "/paths/~1convert/post/responses/200/content"
)

// sourceContents are the answers that can be any image we read: a
// passthrough sends the original as it is.
var sourceContents = []string{
	"/paths/~1{path}/get/responses/200/content",
	"/paths/~1{path}/get/responses/206/content",
	"/paths/~1{path}/head/responses/200/content",
	"/paths/~1{path}/head/responses/206/content",
	"/paths/~1r~1{category}~1{width}~1{target}~1{path}/get/responses/200/content",
	"/paths/~1r~1{category}~1{width}~1{target}~1{path}/get/responses/206/content",
}

// formatLists are the values the pointers above receive.
type formatLists struct {
	query   []string             // what ?format= takes
	convert []imageformat.Format // what POST /convert offers, its default first
	sources []imageformat.Format // every format we read
}

// factsContents are the answers that can also be format=json's: a GET or
// HEAD of an image path answered 200.
var factsContents = []string{
	"/paths/~1{path}/get/responses/200/content",
	"/paths/~1{path}/head/responses/200/content",
}

// factsContent is format=json's entry in a content map, after the images.
const factsContent = `"application/json":{"schema":{"$ref":"#/components/schemas/Facts"}}`

// tableLists reads the lists from the format table. "auto" and "json" are
// the request grammar's own words, not formats.
func tableLists(convert []imageformat.Format) formatLists {
	l := formatLists{query: append(imageformat.OutputNames(), "auto", "json"), convert: convert}
	for f := range imageformat.Count {
		if f != imageformat.Unknown {
			l.sources = append(l.sources, f)
		}
	}
	return l
}

// values renders the lists as the JSON each pointer receives.
func (l formatLists) values() (map[string]json.RawMessage, error) {
	var names []string
	for _, f := range l.convert {
		names = append(names, f.String())
		names = append(names, f.Aliases()...)
	}
	v := map[string]json.RawMessage{convertContent: contentOf(l.convert)}
	for _, p := range sourceContents {
		v[p] = contentOf(l.sources)
		if slices.Contains(factsContents, p) {
			c := v[p]
			v[p] = append(append(c[:len(c)-1:len(c)-1], ","+factsContent...), '}')
		}
	}
	var err error
	if v[queryFormats], err = json.Marshal(l.query); err != nil {
		return nil, err
	}
	if v[convertNames], err = json.Marshal(names); err != nil {
		return nil, err
	}
	return v, nil
}

// contentOf is a response's content map: one binary body per format,
// keyed by its MIME type, in the given order (hence written by hand: a
// Go map would sort the keys).
func contentOf(formats []imageformat.Format) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range formats {
		if i > 0 {
			b.WriteByte(',')
		}
		mime, _ := json.Marshal(f.MIME()) // a string always marshals
		fmt.Fprintf(&b, `%s:{"schema":{"type":"string","contentMediaType":%s}}`, mime, mime)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// fill returns doc with the format lists replaced.
func fill(doc []byte, l formatLists) ([]byte, error) {
	values, err := l.values()
	if err != nil {
		return nil, err
	}
	return replaceAt(doc, values)
}

// replaceAt returns doc with the value at each pointer of values replaced,
// indented like the line it starts on; every other byte is kept. A
// pointer that names no value is an error: the file and this code must
// agree on where the lists are.
func replaceAt(doc []byte, values map[string]json.RawMessage) ([]byte, error) {
	w := walker{dec: json.NewDecoder(bytes.NewReader(doc)), doc: doc, values: values}
	if err := w.value(""); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("openapi.json: more than one value (%v)", err)
	}
	var missing []string
	for p := range values {
		if !slices.ContainsFunc(w.edits, func(e edit) bool { return e.pointer == p }) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("openapi.json has no value at %s", strings.Join(missing, ", "))
	}
	var out bytes.Buffer
	last := 0
	for _, e := range w.edits { // in document order
		out.Write(doc[last:e.start])
		if err := json.Indent(&out, values[e.pointer], indentOf(doc, e.start), "  "); err != nil {
			return nil, fmt.Errorf("openapi.json at %q: %w", e.pointer, err)
		}
		last = e.end
	}
	out.Write(doc[last:])
	return out.Bytes(), nil
}

// indentOf is the run of spaces that starts the line holding offset i.
func indentOf(doc []byte, i int) string {
	start := bytes.LastIndexByte(doc[:i], '\n') + 1
	end := start
	for end < len(doc) && doc[end] == ' ' {
		end++
	}
	return string(doc[start:end])
}

// walker finds the byte span of each value named in values.
type walker struct {
	dec    *json.Decoder
	doc    []byte
	values map[string]json.RawMessage
	edits  []edit
}

type edit struct {
	pointer    string
	start, end int
}

var pointerEscape = strings.NewReplacer("~", "~0", "/", "~1")

// value reads the value at the decoder's position, whose pointer is ptr.
func (w *walker) value(ptr string) error {
	if _, ok := w.values[ptr]; ok {
		if slices.ContainsFunc(w.edits, func(e edit) bool { return e.pointer == ptr }) {
			return fmt.Errorf("at %q: a key given twice", ptr)
		}
		// The decoder stands after the previous token: the value starts
		// past the separators between them.
		start := int(w.dec.InputOffset())
		for start < len(w.doc) && strings.IndexByte(" \t\r\n:,", w.doc[start]) >= 0 {
			start++
		}
		var skip json.RawMessage
		if err := w.dec.Decode(&skip); err != nil {
			return fmt.Errorf("at %q: %w", ptr, err)
		}
		w.edits = append(w.edits, edit{ptr, start, int(w.dec.InputOffset())})
		return nil
	}
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		for w.dec.More() {
			key, err := w.dec.Token()
			if err != nil {
				return err
			}
			if err := w.value(ptr + "/" + pointerEscape.Replace(key.(string))); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for i := 0; w.dec.More(); i++ {
			if err := w.value(ptr + "/" + strconv.Itoa(i)); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar
	}
	_, err = w.dec.Token() // the closing delimiter
	return err
}
