package request

import (
	"errors"
	"strings"
)

// format=json is an answer mode, not an output format: the answer
// describes the source and, with transform parameters, the output they
// make (its width, height and format), with the placeholders a page paints
// while the image loads. A preset's format is the output's; no preset can
// set json (errPresetJSON), so a preset can never turn an image URL into
// a JSON one or back.

// JSONVersion is the version of the JSON answer, part of its variant's
// key: a change to what the answer holds changes every JSON key (and
// ETag), and no image key.
const JSONVersion = "json1"

// isJSON reports whether a format value asks for the JSON answer.
func isJSON(v string) bool { return strings.EqualFold(v, "json") }

var errPresetJSON = errors.New("format:json is not a preset's format: json is an answer mode the URL asks for (?format=json), and a preset's format is the output it describes")

// errBulkJSON refuses format=json as a bulk item: an item's part is an
// image.
var errBulkJSON = badRequest("format=json is not available in a bulk request: ask GET /{path}?format=json for each image.")
