package proxy

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"image-proxy/request"
)

// openAPIDoc is the part of the description the checks below read.
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
	resp, body := ts.get(t, "/openapi.json")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return body, doc
}

// TestOpenAPIIsValid validates the served document against the OpenAPI
// 3.1 schema.
func TestOpenAPIIsValid(t *testing.T) {
	body, doc := servedOpenAPI(t, newTestServer(t, nil))
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	d, err := libopenapi.NewDocument(body)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("building the validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s (%v)", e.Message, e.Reason, e.SchemaValidationErrors)
		}
	}
	if _, errs := d.BuildV3Model(); len(errs) > 0 {
		t.Errorf("model: %v", errs)
	}
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
