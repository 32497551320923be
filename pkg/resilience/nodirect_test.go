package resilience_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const grpcImport = "google.golang.org/grpc"

// directDials are the grpc functions that open a connection without pkg/resilience.
var directDials = []string{"NewClient", "Dial", "DialContext"}

// findDirectDials parses every .go file under root, except directories skip reports
// (paths relative to root, slash-separated), and returns "file:line: what" for each use
// of a direct dial function, whatever name the file imports grpc under. Generated code
// may dial (grpc-gateway's Register*HandlerFromEndpoint does), but then the generated
// function that dials is itself forbidden to every hand-written file.
func findDirectDials(root string, skip func(rel string) bool) ([]string, error) {
	type parsed struct {
		rel string
		f   *ast.File
	}
	var written []parsed
	generatedDialers := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules" || skip(rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parse %s: %w", rel, err)
		}
		if !ast.IsGenerated(f) {
			written = append(written, parsed{rel, f})
			return nil
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.IsExported() && len(directDialsIn(f, fn.Body)) > 0 {
				generatedDialers[fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var found []string
	for _, w := range written {
		for _, u := range directDialsIn(w.f, w.f) {
			found = append(found, fmt.Sprintf("%s:%d: grpc.%s", w.rel, fset.Position(u.at).Line, u.fn))
		}
		ast.Inspect(w.f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && generatedDialers[sel.Sel.Name] {
				if _, ok := sel.X.(*ast.Ident); ok {
					found = append(found, fmt.Sprintf("%s:%d: generated %s dials directly", w.rel, fset.Position(sel.Pos()).Line, sel.Sel.Name))
				}
			}
			return true
		})
	}
	return found, nil
}

type use struct {
	at token.Pos
	fn string
}

// directDialsIn returns the direct dials in node, resolving grpc's import name in f.
func directDialsIn(f *ast.File, node ast.Node) []use {
	var names []string // names this file gives google.golang.org/grpc
	dot := false
	for _, imp := range f.Imports {
		if p, err := strconv.Unquote(imp.Path.Value); err != nil || p != grpcImport {
			continue
		}
		switch {
		case imp.Name == nil:
			names = append(names, "grpc")
		case imp.Name.Name == ".":
			dot = true
		case imp.Name.Name != "_":
			names = append(names, imp.Name.Name)
		}
	}
	if (len(names) == 0 && !dot) || node == nil {
		return nil
	}
	var uses []use
	ast.Inspect(node, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			// Any reference counts, not only a call: `dial := grpc.NewClient` bypasses too.
			if x, ok := n.X.(*ast.Ident); ok && slices.Contains(names, x.Name) && slices.Contains(directDials, n.Sel.Name) {
				uses = append(uses, use{n.Pos(), n.Sel.Name})
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && dot && slices.Contains(directDials, id.Name) {
				uses = append(uses, use{id.Pos(), id.Name})
			}
		}
		return true
	})
	return uses
}

// repoRoot walks up from the working directory to the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working directory")
		}
		dir = parent
	}
}

// TestNoDirectGRPCClient keeps pkg/resilience the only way to open a gRPC client, so
// no call in the repository escapes the deadline, bulkhead, breaker and retry.
func TestNoDirectGRPCClient(t *testing.T) {
	t.Run("checker catches an aliased dial and a generated dialer", func(t *testing.T) {
		got, err := findDirectDials(filepath.Join("testdata", "directdial"), func(string) bool { return false })
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"aliased.go:11: grpc.NewClient",
			"gateway.go:10: generated RegisterFooHandlerFromEndpoint dials directly",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("violations = %q, want %q", got, want)
		}
	})

	t.Run("repository", func(t *testing.T) {
		root := repoRoot(t)
		got, err := findDirectDials(root, func(rel string) bool { return rel == "pkg/resilience" })
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range got {
			t.Errorf("%s: dial through resilience.Dial instead", v)
		}
	})
}
