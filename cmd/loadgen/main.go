// Command loadgen drives simulated storefront users through the gateway's JSON API,
// or with -mode grpc straight to the services over gRPC (steady load, a flash sale,
// or load under restarts and card-network faults), then waits for every order to
// become final and runs the invariant auditor. loadgen plot and loadgen plot-bench
// draw charts of earlier results.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/eventshop/eventshop/pkg/cli"
	"github.com/eventshop/eventshop/pkg/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(config.ExitStatus(os.Stderr, "loadgen: ", cli.Execute(ctx, newRoot(os.Stdout, os.Stderr), os.Args[1:], os.Stdout, os.Stderr)))
}

// newRoot is loadgen's command tree: a load run, and its charts.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := cli.Command("loadgen [flags]", "drive simulated shoppers, then audit the shop",
		func(ctx context.Context, args []string) error { return runLoad(ctx, args, stdout, stderr) })
	root.Long = "loadgen drives simulated shoppers through the gateway (or over gRPC), waits for every\n" +
		"order to end and runs the auditor (loadgen -h lists the flags)."
	withStderr := func(run func(args []string, stderr io.Writer) error) func(context.Context, []string) error {
		return func(_ context.Context, args []string) error { return run(args, stderr) }
	}
	root.AddCommand(
		cli.Command("plot", "chart throughput and p99 against offered load from loadgen -json reports", withStderr(runPlot)),
		cli.Command("plot-bench", "chart BenchmarkSagaEmbedded's sweep from go test -bench output", withStderr(runPlotBench)),
	)
	return root
}

// errNotOK is a run whose report shows a failure (exit status 1, the report says why).
var errNotOK = errors.New("the run failed; see the report")

// runLoad is one load run, reported on stdout.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return config.UsageError{Err: err}
	}
	rep, err := run(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.Print(stdout)
	}
	if !rep.OK() {
		return errNotOK
	}
	return nil
}
