package request

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestQueryKeysAreWhatTheCodeReads holds QueryKeys (which the OpenAPI
// test compares with the documented parameters) to the code: it lists the
// keys of every single(q, "…") and q.Values("…") in the package, and every
// look-up must name its key as a literal, so none escapes the list.
func TestQueryKeysAreWhatTheCodeReads(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var read []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var key ast.Expr
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name == "single" && len(call.Args) == 2 {
					key = call.Args[1]
				}
			case *ast.SelectorExpr:
				if pkg, isIdent := fn.X.(*ast.Ident); isIdent && imported(f, pkg.Name) {
					return true // slices.Values and the like
				}
				if fn.Sel.Name == "Values" && len(call.Args) == 1 {
					key = call.Args[0]
				}
			}
			if key == nil {
				return true
			}
			lit, ok := key.(*ast.BasicLit)
			if !ok {
				if id, isIdent := key.(*ast.Ident); isIdent && id.Name == "key" && inSingle(f, call) {
					return true // single's own look-up, of the key its caller names
				}
				t.Errorf("%s: a query look-up whose key is not a literal", fset.Position(call.Pos()))
				return true
			}
			k, _ := strconv.Unquote(lit.Value)
			if !slices.Contains(read, k) {
				read = append(read, k)
			}
			return true
		})
	}
	slices.Sort(read)
	if !slices.Equal(read, QueryKeys()) {
		t.Errorf("the code reads %v; QueryKeys lists %v", read, QueryKeys())
	}
}

// imported reports whether name is a package f imports (by its last path
// element: the package has no renamed imports).
func imported(f *ast.File, name string) bool {
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == name || strings.HasSuffix(p, "/"+name) {
			return true
		}
	}
	return false
}

// inSingle reports whether call is inside func single.
func inSingle(f *ast.File, call *ast.CallExpr) bool {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "single" && fd.Pos() <= call.Pos() && call.End() <= fd.End() {
			return true
		}
	}
	return false
}

// TestParseReadsParsedKeys: each key Parse reads is refused when given
// twice, so every listed key is one it looks at.
func TestParseReadsParsedKeys(t *testing.T) {
	for _, k := range parsedKeys {
		_, err := Parse(values(k+"=1&"+k+"=1"), "", 4000)
		if err == nil || err.Error() != k+" must be given only once." {
			t.Errorf("%s twice: %v", k, err)
		}
	}
}
