package manifest

import (
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"slices"
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
// of the flags it defines itself on the flag set named fsName, and which of the
// variables named in registered it calls v.RegisterFlags(fs) on (their flags are the
// caller's to add). Any other call handing fsName over would hide flags from this
// reading, so it is an error; config.Parse and config.Usage are the exceptions.
//
// MainFlags returns the parse error for a file that is not Go, and an error naming
// the position of every flag whose name is not a string literal and of every call
// that hands the flag set to an unknown function.
func MainFlags(path, fsName string, registered ...string) (flags, calls []string, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, nil, err
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
		names  []string
		errs   []error
		called = map[string]bool{}
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
		if recv, ok := sel.X.(*ast.Ident); ok && sel.Sel.Name == "RegisterFlags" && slices.Contains(registered, recv.Name) && !imported[recv.Name] {
			called[recv.Name] = true
			return true
		}
		for _, a := range call.Args {
			if id, ok := a.(*ast.Ident); ok && id.Name == fsName && !knownFlagSetUser(sel, imported) {
				errs = append(errs, fmt.Errorf("%s: flag set passed to %s, whose flags cannot be read here", fset.Position(call.Pos()), exprString(sel)))
			}
		}
		return true
	})
	for _, r := range registered {
		if called[r] {
			calls = append(calls, r)
		}
	}
	return names, calls, errors.Join(errs...)
}

// knownFlagSetUser reports whether a call handing over the flag set defines no
// flags: config.Parse and config.Usage.
func knownFlagSetUser(sel *ast.SelectorExpr, imported map[string]bool) bool {
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "config" && imported["config"] && (sel.Sel.Name == "Parse" || sel.Sel.Name == "Usage")
}

func exprString(sel *ast.SelectorExpr) string {
	if id, ok := sel.X.(*ast.Ident); ok {
		return id.Name + "." + sel.Sel.Name
	}
	return sel.Sel.Name
}

// BinaryFlags returns the flags of a binary: those the functions of registers define,
// for each variable of main.go (the key, e.g. "cfg") whose RegisterFlags it calls,
// plus those MainFlags finds in mainFile on fsName. It returns the error of
// MainFlags, an error if main calls none of registers (its Config is missing), and an
// error naming a flag defined twice (which would make the binary panic at start).
func BinaryFlags(mainFile, fsName string, registers map[string]func(*flag.FlagSet)) (_ *flag.FlagSet, err error) {
	vars := make([]string, 0, len(registers))
	for v := range registers {
		vars = append(vars, v)
	}
	extra, calls, err := MainFlags(mainFile, fsName, vars...)
	if err != nil {
		return nil, err
	}
	if len(calls) == 0 {
		return nil, fmt.Errorf("%s: calls RegisterFlags on none of %v", mainFile, vars)
	}
	fs := flag.NewFlagSet(mainFile, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defer func() {
		// flag panics on a name defined twice, as the binary itself would.
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %v", mainFile, r)
		}
	}()
	for _, v := range calls {
		registers[v](fs)
	}
	for _, name := range extra {
		if fs.Lookup(name) != nil {
			return nil, fmt.Errorf("%s: flag -%s defined twice", mainFile, name)
		}
		fs.String(name, "", "defined in "+mainFile)
	}
	return fs, nil
}
