// Package apidocs is the description of the HTTP API and the page that
// shows it: the OpenAPI document (openapi.json) and the vendored Redoc
// viewer (docs/, written by `make docs-viewer`). It knows no HTTP
// framework: each page is its bytes and the headers it is served with,
// and proxy gives each a route. Keeping them here leaves proxy's code HTTP
// rather than a quarter JavaScript.
package apidocs

import (
	"embed"

	"image-proxy/imageformat"
)

// The viewer is vendored from a pinned npm release; its licences sit
// beside it in docs/ but are not served.
//
//go:embed openapi.json docs/index.html docs/redoc.standalone.js
var files embed.FS

// The paths the pages answer at. index.html names the other two.
const (
	OpenAPIPath = "/openapi.json"
	DocsPath    = "/docs"
	ScriptPath  = "/docs/redoc.standalone.js"
)

// docsCSP lets the page load nothing from anywhere but this server.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// cacheControl: the pages change only with a new binary, and the ETag
// makes a revalidation after five minutes cheap.
const cacheControl = "public, max-age=300"

// A Page is one document served as is: GET Path answers Body with Header.
// The server adds the ETag (a hash of Body) and answers If-None-Match.
type Page struct {
	Path   string
	Body   []byte
	Header []Field // set in this order
}

// A Field is one response header.
type Field struct{ Name, Value string }

// Pages returns the description, the page that renders it and the
// page's script. The description's format lists come from the format
// table, and convert is what POST /convert offers, its default first (the
// endpoint decides that, not this package). Each call builds the pages
// anew: the caller keeps them for the server's life.
func Pages(convert []imageformat.Format) ([]Page, error) {
	var pages []Page
	for _, p := range []struct {
		path, file, contentType string
		csp                     bool
	}{
		{OpenAPIPath, "openapi.json", "application/json; charset=utf-8", false},
		{DocsPath, "docs/index.html", "text/html; charset=utf-8", true},
		{ScriptPath, "docs/redoc.standalone.js", "text/javascript; charset=utf-8", false},
	} {
		body, err := files.ReadFile(p.file)
		if err == nil && p.path == OpenAPIPath {
			body, err = fill(body, tableLists(convert))
		}
		if err != nil {
			return nil, err
		}
		page := Page{Path: p.path, Body: body, Header: []Field{{"Content-Type", p.contentType}}}
		if p.csp {
			page.Header = append(page.Header, Field{"Content-Security-Policy", docsCSP})
		}
		page.Header = append(page.Header, Field{"Cache-Control", cacheControl}, Field{"X-Content-Type-Options", "nosniff"})
		pages = append(pages, page)
	}
	return pages, nil
}
