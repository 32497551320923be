// Command tracepic draws one trace from Jaeger's HTTP query API as a waterfall PNG:
// a row per span, indented by depth, on one time axis, coloured by service, with
// the NATS hops between a producer and its consumer drawn as arrows.
//
//	go run ./cmd/tracepic -trace <id> -out trace.png
//	go run ./cmd/tracepic -out trace.png            # the latest POST /api/v1/orders through the gateway
//	go run ./cmd/tracepic -in answer.json -out trace.png
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tracepic:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tracepic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jaegerURL := fs.String("jaeger", "http://127.0.0.1:16686", "Jaeger query service base URL")
	traceID := fs.String("trace", "", "trace id to draw (empty: the latest trace of -service whose root span matches -method and -path)")
	service := fs.String("service", "gateway", "service whose latest trace is drawn when -trace is empty")
	method := fs.String("method", "POST", "HTTP method of the root span when -trace is empty (empty: any)")
	path := fs.String("path", "/api/v1/orders", "URL path of the root span when -trace is empty (empty: any)")
	in := fs.String("in", "", "draw the first trace of this saved query API answer instead of asking Jaeger")
	out := fs.String("out", "trace.png", "PNG file to write")
	width := fs.Int("width", 1400, "picture width in pixels")
	title := fs.String("title", "", "title line (default: the root span)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	match := func(root Span) bool {
		return (*method == "" || root.Tags["http.request.method"] == *method) &&
			(*path == "" || root.Tags["url.path"] == *path)
	}
	tr, err := load(ctx, *in, Client{BaseURL: *jaegerURL}, *traceID, *service, match)
	if errors.Is(err, ErrNoTrace) && *in == "" {
		// The services export spans in batches, a few seconds apart.
		return fmt.Errorf("%w (a trace reaches Jaeger a few seconds after it ends; try again)", err)
	}
	if err != nil {
		return err
	}
	if *title == "" {
		if r, ok := tr.Root(); ok {
			*title = fmt.Sprintf("%s: %s", r.Service, r.Name)
			if m, path := r.Tags["http.request.method"], r.Tags["url.path"]; m != "" && path != "" {
				*title = fmt.Sprintf("%s: %s %s (span %q)", r.Service, m, path, r.Name)
			}
		}
	}
	var buf bytes.Buffer
	if err := Render(&buf, tr, RenderOptions{Width: *width, Title: *title}); err != nil {
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: trace %s, %d spans\n", *out, tr.TraceID, len(tr.Spans))
	return nil
}

func load(ctx context.Context, in string, c Client, id, service string, match func(Span) bool) (Trace, error) {
	if in != "" {
		f, err := os.Open(in)
		if err != nil {
			return Trace{}, err
		}
		defer f.Close()
		trs, err := DecodeTraces(f)
		if err != nil {
			return Trace{}, fmt.Errorf("%s: %w", in, err)
		}
		return trs[0], nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if id != "" {
		return c.Trace(ctx, id)
	}
	return c.Latest(ctx, service, match, 20)
}
