// Package config reads a binary's configuration from command-line flags, falling back
// to SHOP_* environment variables for every flag not given. Flags stay the single
// source of truth, so deployment manifests can be checked against what a binary defines.
//
// This is kept instead of a flag library's environment support (ff's, or viper's
// beside cobra, which pkg/cli uses for commands): it is forty lines over the standard
// flag package, and it reports every bad variable of a start at once, naming each.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvPrefix starts the name of every environment variable that can set a flag.
const EnvPrefix = "SHOP_"

// EnvName returns the environment variable that sets the flag named flagName:
// "nats-url" becomes "SHOP_NATS_URL".
func EnvName(flagName string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return EnvPrefix + strings.ToUpper(r.Replace(flagName))
}

// Parse parses args into fs, then sets every flag not given in args from its
// environment variable (see EnvName), if that variable is set. An explicit flag
// always wins over the environment.
//
// Parse returns the error of fs.Parse for bad arguments (flag.ErrHelp for -h), and an
// error naming the variable for each environment value the flag rejects; several bad
// variables are joined into one error.
func Parse(fs *flag.FlagSet, args []string) error {
	return parse(fs, args, os.LookupEnv)
}

func parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		name := EnvName(f.Name)
		v, ok := lookup(name)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s=%q (flag -%s): %w", name, v, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// Usage returns a flag.FlagSet Usage function that lists, after the flags, the
// environment variable each one can be set from.
func Usage(fs *flag.FlagSet) func() {
	return func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
		fs.PrintDefaults()
		fmt.Fprintf(out, "\nEvery flag not given on the command line is read from its environment variable:\n")
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(out, "  -%s  <-  %s\n", f.Name, EnvName(f.Name))
		})
	}
}

// UsageError marks a mistake on the command line (exit status 2).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

func (e UsageError) Unwrap() error { return e.Err }

// ExitStatus is the process's exit status for err, a command's result: 0 for none
// (or a request for help), 2 for a UsageError, 1 for any other, which it prints to
// stderr after prefix. It is here, beside the flags, so that every binary maps its
// errors alike without depending on a command library.
func ExitStatus(stderr io.Writer, prefix string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, prefix+err.Error())
	if errors.As(err, new(UsageError)) {
		return 2
	}
	return 1
}
