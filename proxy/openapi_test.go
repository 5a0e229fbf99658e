package proxy

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"image-proxy/apidocs"
	"image-proxy/imageformat"
	"image-proxy/request"
)

// openAPIDoc is the part of the description the checks below read. The
// document itself (its validity, its format lists) is apidocs' to test;
// here it is compared with the router and the parsers, which live here.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func servedOpenAPI(t *testing.T, ts *testServer) ([]byte, openAPIDoc) {
	t.Helper()
	resp, body := ts.get(t, apidocs.OpenAPIPath)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return body, doc
}

// openAPIPath maps a Fiber route path to the description's.
func openAPIPath(p string) string {
	if p == "/*" {
		return "/{path}"
	}
	return p
}

// TestOpenAPIMatchesRouter: every route is described, every described
// operation is a route. The server has every optional route (the /r/
// routes are on), so the description is checked against all of them.
func TestOpenAPIMatchesRouter(t *testing.T) {
	ts := withControls(t, rControls())
	_, doc := servedOpenAPI(t, ts)
	routed := map[string]bool{}
	for _, r := range ts.App().GetRoutes(true) {
		p, m := openAPIPath(r.Path), strings.ToLower(r.Method)
		routed[m+" "+p] = true
		ops, ok := doc.Paths[p]
		switch {
		case !ok:
			t.Errorf("route %s %s is not in /openapi.json", r.Method, r.Path)
		case ops[m] != nil:
		case m == "head" && ops["get"] != nil:
			// Fiber serves HEAD with every GET; describing the GET covers it.
		case p == "/{path}" && ops["get"] != nil:
			// Every other method on an image path is the documented 405.
			if !strings.Contains(string(ops["get"]), `"405"`) {
				t.Errorf("%s: the 405 for other methods is not described", p)
			}
		default:
			t.Errorf("route %s %s is not described", r.Method, r.Path)
		}
	}
	// The api-s3 form is served by the image route.
	routed["get /r/{category}/{width}/{target}/{path}"] = routed["get /{path}"]
	for p, ops := range doc.Paths {
		for m := range ops {
			if !routed[m+" "+p] {
				t.Errorf("/openapi.json describes %s %s, which no route serves", strings.ToUpper(m), p)
			}
		}
	}
}

// TestOpenAPIParametersMatchParsers: the query parameters of GET /{path}
// are exactly those the request grammar reads (request.QueryKeys, which
// request.TestQueryKeysAreWhatTheCodeReads holds to the code); the form
// fields of /convert and the item fields of /bulk and /r/bulk are exactly those their parsers take.
func TestOpenAPIParametersMatchParsers(t *testing.T) {
	_, doc := servedOpenAPI(t, newTestServer(t, nil))
	var get struct {
		Parameters []struct {
			Ref string `json:"$ref"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(doc.Paths["/{path}"]["get"], &get); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, p := range get.Parameters {
		c, ok := doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
		if !ok {
			t.Errorf("parameter %s is not defined", p.Ref)
		}
		if c.In == "query" {
			documented = append(documented, c.Name)
		}
	}
	sort.Strings(documented)
	if read := request.QueryKeys(); !slices.Equal(documented, read) {
		t.Errorf("GET /{path} documents query parameters %v; the parser reads %v", documented, read)
	}
	for _, c := range []struct {
		schema string
		fields []string
	}{
		{"ConvertForm", append([]string{"file"}, convertFields...)},
		{"BulkItem", append([]string{"path"}, bulkFields...)},
		{"RBulkItem", rBulkFields},
	} {
		var props []string
		for k := range doc.Components.Schemas[c.schema].Properties {
			props = append(props, k)
		}
		sort.Strings(props)
		want := slices.Sorted(slices.Values(c.fields))
		if !slices.Equal(props, want) {
			t.Errorf("%s documents %v; the parser takes %v", c.schema, props, want)
		}
	}
}

// TestOpenAPIFormatsMatchParsers: the values the description gives for
// ?format= and for /convert's format field are exactly the names the
// parsers take, among every name of the format table.
func TestOpenAPIFormatsMatchParsers(t *testing.T) {
	ts := newTestServer(t, nil)
	body, _ := servedOpenAPI(t, ts)
	var doc struct {
		Components struct {
			Parameters struct {
				Format struct {
					Schema struct{ Enum []string }
				}
			}
			Schemas struct {
				ConvertForm struct {
					Properties struct {
						Format struct{ Enum []string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	query, convert := doc.Components.Parameters.Format.Schema.Enum, doc.Components.Schemas.ConvertForm.Properties.Format.Enum
	names := []string{"auto", "bmp"}
	for f := range imageformat.Count {
		names = append(append(names, f.String()), f.Aliases()...)
	}
	for _, name := range names {
		resp, _ := ts.get(t, "/rocket.jpg?size=16&format="+name)
		if taken := resp.StatusCode == 200; taken != slices.Contains(query, name) {
			t.Errorf("?format=%s answers %d; the description lists %v", name, resp.StatusCode, query)
		}
		_, err := parseConvert(map[string]string{"format": name}, 4000)
		if taken := err == nil; taken != slices.Contains(convert, name) {
			t.Errorf("/convert format=%s: %v; the description lists %v", name, err, convert)
		}
	}
}
