// Package imageformat is the pure part of the format table: the formats
// image-proxy reads and writes, their names, aliases and MIME types, which
// can be encoded, and the resampling algorithms. The request grammar and
// transform both read it; the loaders and savers stay in transform, the
// only package that talks to libvips. It imports nothing of the project.
package imageformat

import "slices"

// Format is an image format we accept as a source or produce as output.
// The values are stored in cached entries: append new formats, never
// renumber.
type Format uint8

const (
	Unknown Format = iota
	JPEG
	PNG
	WebP
	GIF
	AVIF
	HEIF
	TIFF
	JXL
	SVG
	Count // number of formats, Unknown included
)

type spec struct {
	name    string   // short lower-case name, also a metrics label
	aliases []string // further names accepted for an output format
	mime    string
	// outputRank is where the contract lists the format among output
	// formats, from 1; 0 means it is never encoded.
	outputRank int
}

// table is read-only: indexed by Format, never written.
var table = [Count]spec{
	Unknown: {name: "unknown", mime: "application/octet-stream"},
	JPEG:    {name: "jpeg", aliases: []string{"jpg"}, mime: "image/jpeg", outputRank: 2},
	PNG:     {name: "png", mime: "image/png", outputRank: 3},
	WebP:    {name: "webp", mime: "image/webp", outputRank: 4},
	GIF:     {name: "gif", mime: "image/gif", outputRank: 5},
	AVIF:    {name: "avif", mime: "image/avif", outputRank: 1},
	HEIF:    {name: "heif", mime: "image/heif"},
	TIFF:    {name: "tiff", mime: "image/tiff"},
	JXL:     {name: "jxl", mime: "image/jxl"},
	SVG:     {name: "svg", mime: "image/svg+xml"},
}

func (f Format) spec() *spec {
	if f < Count {
		return &table[f]
	}
	return &table[Unknown]
}

// String is the short lower-case name, also used as a metrics label.
func (f Format) String() string { return f.spec().name }

// MIME is the Content-Type of a body in this format.
func (f Format) MIME() string { return f.spec().mime }

// CanEncode reports whether f is one of the output formats of the contract.
func (f Format) CanEncode() bool { return f.spec().outputRank > 0 }

// Aliases are the further names Parse accepts for f.
func (f Format) Aliases() []string { return slices.Clone(f.spec().aliases) }

// Parse resolves an output format's name or alias, case-insensitively.
// Formats we only read are not accepted.
func Parse(name string) (Format, bool) {
	for f := range Count {
		s := f.spec()
		if s.outputRank == 0 {
			continue
		}
		if EqualFold(name, s.name) || slices.ContainsFunc(s.aliases, func(a string) bool { return EqualFold(name, a) }) {
			return f, true
		}
	}
	return Unknown, false
}

// Outputs lists the formats a render can produce, in Format order. A
// render without a format produces one of these too (the source's format
// when it can be encoded, else PNG or JPEG).
func Outputs() []Format {
	var out []Format
	for f := range Count {
		if f.CanEncode() {
			out = append(out, f)
		}
	}
	return out
}

// OutputNames lists every name Parse accepts, in the contract's order,
// each format's aliases right after its name.
func OutputNames() []string {
	outputs := Outputs()
	slices.SortFunc(outputs, func(a, b Format) int { return a.spec().outputRank - b.spec().outputRank })
	var names []string
	for _, f := range outputs {
		names = append(names, f.spec().name)
		names = append(names, f.spec().aliases...)
	}
	return names
}

// EqualFold folds ASCII only: strings.EqualFold would also take the
// Kelvin sign for a "k".
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
