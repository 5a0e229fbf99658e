package proxy

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"testing"

	"image-proxy/request"
)

var itemMessage = regexp.MustCompile(`^(item [0-9]+: .+|The body must be a JSON array of items.*|The array must hold at least one item\.)$`)

// FuzzParseBulk: any body either parses into at most maxItems items, each
// with a path and only known fields, agreeing with encoding/json on what
// the array holds, or is refused with a 400 whose message names the item
// index or the body's shape. Each parsed item then goes through the GET
// parser without panicking.
func FuzzParseBulk(f *testing.F) {
	for _, s := range []string{
		`[{"path":"rocket.jpg","size":400,"format":"webp"}]`,
		`[{"path":"a.jpg","size":"10","dpr":2.5,"quality":80,"preset":"thumb","sig":"abc"},{"path":"b.png","format":"auto"}]`,
		`[{"path":"a.jpg","size":null}]`, `[]`, `[1]`, `{}`, `[{"path":""}]`, `[{"path":"a","x":1}]`,
		`[{"path":"a","size":true}]`, `[{"path":"a","size":-1e9}]`, `[{"path":"a"}] x`, `[{"path":"a"},`,
	} {
		f.Add([]byte(s))
	}
	const maxItems = 5
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := parseBulk(body, maxItems)
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) || !itemMessage.MatchString(pe.msg) {
				t.Fatalf("refusal %v is not a 400 naming the item or the body", err)
			}
			if status, _ := classify(err); status != 400 {
				t.Fatalf("refusal %v answers %d", err, status)
			}
			return
		}
		var generic []map[string]any
		if json.Unmarshal(body, &generic) != nil {
			t.Fatalf("accepted %q, which encoding/json refuses as an array of objects", body)
		}
		if len(items) == 0 || len(items) > maxItems || len(items) != len(generic) {
			t.Fatalf("%d items from %q (encoding/json: %d)", len(items), body, len(generic))
		}
		for i, it := range items {
			if it.path == "" || it.path != generic[i]["path"] {
				t.Fatalf("item %d: path %q, encoding/json %v", i, it.path, generic[i]["path"])
			}
			for k := range it.query {
				if !slices.Contains(bulkFields, k) {
					t.Fatalf("item %d: unknown field %q kept", i, k)
				}
			}
			_, _ = request.Parse(it.values(), "", 4000)
		}
	})
}
