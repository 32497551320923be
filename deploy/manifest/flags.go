package manifest

import (
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
)

// Binary is what one deployable binary accepts, read from its code.
type Binary struct {
	// Flags holds every flag the binary defines, with its default; the environment
	// variable of each is config.EnvName of its name.
	Flags *flag.FlagSet
	// ListenFlag names the flag whose value is the listen address ("grpc-addr").
	ListenFlag string
	// HealthPaths are the HTTP paths probes may use; empty means the binary serves
	// grpc.health.v1 on its listen port and probes must be gRPC probes.
	HealthPaths []string
}

// flagNameArg gives, for each flag.FlagSet method that defines a flag, the position
// of its name argument.
var flagNameArg = map[string]int{
	"Bool": 0, "BoolVar": 1, "BoolFunc": 0, "Duration": 0, "DurationVar": 1,
	"Float64": 0, "Float64Var": 1, "Func": 0, "Int": 0, "IntVar": 1, "Int64": 0,
	"Int64Var": 1, "String": 0, "StringVar": 1, "TextVar": 1, "Uint": 0, "UintVar": 1,
	"Uint64": 0, "Uint64Var": 1, "Var": 1,
}

// MainFlags reads the Go file at path (a cmd/<name>/main.go) and returns the names
// of the flags it defines itself on the flag set named fsName, beyond those a
// Config.RegisterFlags adds. Calls that pass fsName to anything else than
// a variable's RegisterFlags (the Config's), config.Parse or config.Usage would hide
// flags from this reading, so they are errors.
//
// MainFlags returns the parse error for a file that is not Go, and an error naming
// the position of every flag whose name is not a string literal and of every call
// that hands the flag set to an unknown function.
func MainFlags(path, fsName string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	imported := map[string]bool{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imported[name] = true
	}
	var (
		names []string
		errs  []error
	)
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if recv, ok := sel.X.(*ast.Ident); ok && recv.Name == fsName {
			pos, defines := flagNameArg[sel.Sel.Name]
			if !defines || pos >= len(call.Args) {
				return true
			}
			lit, ok := call.Args[pos].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				errs = append(errs, fmt.Errorf("%s: flag name is not a string literal", fset.Position(call.Pos())))
				return true
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", fset.Position(lit.Pos()), err))
				return true
			}
			names = append(names, name)
			return true
		}
		for _, a := range call.Args {
			if id, ok := a.(*ast.Ident); ok && id.Name == fsName && !knownFlagSetUser(sel, imported) {
				errs = append(errs, fmt.Errorf("%s: flag set passed to %s, whose flags cannot be read here", fset.Position(call.Pos()), exprString(sel)))
			}
		}
		return true
	})
	return names, errors.Join(errs...)
}

// knownFlagSetUser reports whether a call handing over the flag set is one whose
// flags are accounted for: a method RegisterFlags of a variable (the Config, whose
// flags the caller of BinaryFlags registers), or config.Parse and config.Usage. A
// package's RegisterFlags (telemetry.RegisterFlags) is not.
func knownFlagSetUser(sel *ast.SelectorExpr, imported map[string]bool) bool {
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return false
	}
	if sel.Sel.Name == "RegisterFlags" && !imported[x.Name] {
		return true
	}
	return x.Name == "config" && imported["config"] && (sel.Sel.Name == "Parse" || sel.Sel.Name == "Usage")
}

func exprString(sel *ast.SelectorExpr) string {
	if id, ok := sel.X.(*ast.Ident); ok {
		return id.Name + "." + sel.Sel.Name
	}
	return sel.Sel.Name
}

// BinaryFlags returns the flags of a binary: those register defines (a
// Config.RegisterFlags) plus those MainFlags finds in mainFile on fsName. It returns
// the error of MainFlags, and an error naming a flag defined twice (which would make
// the binary panic at start).
func BinaryFlags(register func(*flag.FlagSet), mainFile, fsName string) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(mainFile, flag.ContinueOnError)
	register(fs)
	extra, err := MainFlags(mainFile, fsName)
	if err != nil {
		return nil, err
	}
	for _, name := range extra {
		if fs.Lookup(name) != nil {
			return nil, fmt.Errorf("%s: flag -%s defined twice", mainFile, name)
		}
		fs.String(name, "", "defined in "+mainFile)
	}
	return fs, nil
}
