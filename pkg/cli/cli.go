// Package cli is how the shop's binaries take subcommands (shopd audit, order
// projections rebuild, loadgen plot): cobra finds the command, lists the commands in
// help and suggests one for a typo, and each command parses its own flags with a
// standard flag.FlagSet through pkg/config.
//
// Cobra's own flags are not used: flags stay standard flag sets, read with their
// SHOP_* environment variables by pkg/config, because deploy/manifest checks the
// Kubernetes manifests against the flags it reads from each binary's source, and one
// kind of flag set keeps that check (and `<binary> <command> -h`) simple. Cobra was
// picked over ff because it is the most used command library in Go, stable (ff's
// command package, v4, is still in alpha), and needs nothing from us but the tree.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Command returns a command named use whose run gets every argument after the
// command's name, flags included: run parses them, so `-h` prints its flag set.
func Command(use, short string, run func(ctx context.Context, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short,
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		SilenceUsage:       true,
		SilenceErrors:      true,
		RunE:               func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), args) },
	}
}

// Group returns a command that only holds subcommands (the "projections" of
// "projections rebuild"); alone, it prints its help, and with a word that is none of
// its commands it fails, suggesting the nearest.
func Group(use, short string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{Use: use, Short: short, SilenceUsage: true, SilenceErrors: true, SuggestionsMinimumDistance: 2,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return errors.New(msg)
		},
	}
	g.AddCommand(subs...)
	return g
}

// Execute runs root with args, help going to stdout and cobra's messages to
// stderr. It returns the command's error; asking for help (`help`, `-h`) is none.
func Execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) error {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SilenceUsage, root.SilenceErrors = true, true
	root.CompletionOptions.DisableDefaultCmd = true
	err := root.ExecuteContext(ctx)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
