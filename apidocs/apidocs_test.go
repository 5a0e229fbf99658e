package apidocs

import (
	"encoding/json"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// page returns the body of the page at path, failing when there is none.
func page(t *testing.T, pages []Page, path string) []byte {
	t.Helper()
	for _, p := range pages {
		if p.Path == path {
			return p.Body
		}
	}
	t.Fatalf("no page at %s", path)
	return nil
}

func openAPI(t *testing.T) []byte {
	t.Helper()
	pages, err := Pages(nil)
	if err != nil {
		t.Fatal(err)
	}
	return page(t, pages, OpenAPIPath)
}

// TestOpenAPIIsValid validates the served document against the OpenAPI
// 3.1 schema.
func TestOpenAPIIsValid(t *testing.T) {
	body := openAPI(t)
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
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
