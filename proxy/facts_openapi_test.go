package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// TestFactsMatchTheSchema validates real format=json answers (with and
// without an output, an animation, alpha, a crop) against the served
// description's Facts schema, and a document that breaks it is caught.
func TestFactsMatchTheSchema(t *testing.T) {
	ts := factsServer(t)
	body, _ := servedOpenAPI(t, ts)
	doc, err := libopenapi.NewDocument(body)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	validate := func(target string, resp *http.Response, b []byte) (bool, string) {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		ok, verrs := v.ValidateHttpResponse(req, resp)
		msg := ""
		for _, e := range verrs {
			msg += e.Message + ": " + e.Reason + "; "
			for _, se := range e.SchemaValidationErrors {
				msg += se.Reason + " at " + se.Location + "; "
			}
		}
		return ok, msg
	}
	for _, target := range []string{"/rocket.jpg?format=json", "/rocket.jpg?size=100&format=json&preset=webp",
		"/astronaut-animated.gif?format=json&width=50&height=50&fit=cover", "/coffee.avif?format=json&size=10",
		"/rocket-cmyk.jpg?format=json"} {
		resp, b := ts.get(t, target)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", target, resp.StatusCode)
		}
		if ok, msg := validate(target, resp, b); !ok {
			t.Errorf("%s: %s\n%s", target, msg, b)
		}
	}
	// The check has teeth: an answer without its placeholders fails.
	resp, _ := ts.get(t, "/rocket.jpg?format=json")
	if ok, _ := validate("/rocket.jpg?format=json", resp, []byte(`{"source":{"width":1}}`)); ok {
		t.Error("a broken answer passed the schema")
	}
}
