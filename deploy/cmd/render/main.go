// Command render runs kustomize in-process on each kustomization directory given and
// writes each rendering to -out as <dir with / replaced by _>.yaml, for tools that
// read files (istioctl validate and analyze) where no kustomize binary is installed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/eventshop/eventshop/deploy/manifest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	out := fs.String("out", "bin/render", "directory the renderings are written to")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: render [-out dir] kustomization-dir...\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no kustomization directory given")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, dir := range fs.Args() {
		y, err := manifest.Build(dir)
		if err != nil {
			return err
		}
		name := strings.Trim(strings.NewReplacer("/", "_", ".", "").Replace(filepath.Clean(dir)), "_") + ".yaml"
		if err := os.WriteFile(filepath.Join(*out, name), y, 0o644); err != nil {
			return err
		}
		fmt.Println(filepath.Join(*out, name))
	}
	return nil
}
