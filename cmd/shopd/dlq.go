package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsauth"
)

// runDLQ lists, shows, replays and drops the dead letters of a running shop (shopd's
// embedded NATS or a split shop's server), as the operator identity.
func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shopd dlq", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats-url", "nats://127.0.0.1:4223", "NATS server of the shop (shopd's embedded one by default)")
	ids := fs.String("nats-identities", filepath.Join("data", "nats-identities"), "directory of the shop's NATS identities; the operator's is used")
	limit := fs.Int("limit", 100, "list at most this many (0: all)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shopd dlq [flags] list | show SEQ | replay SEQ | drop SEQ")
		fmt.Fprintln(stderr, "Dead letters are messages no handler could process. replay publishes one again on its")
		fmt.Fprintln(stderr, "original subject with its own ce-id (handlers take an id once), then removes it; drop")
		fmt.Fprintln(stderr, "removes it for good. SEQ is the number list prints.")
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	verb := fs.Arg(0)
	var seq uint64
	switch {
	case verb == "list" && fs.NArg() == 1:
	case slices.Contains([]string{"show", "replay", "drop"}, verb) && fs.NArg() == 2:
		n, err := strconv.ParseUint(fs.Arg(1), 10, 64)
		if err != nil || n == 0 {
			fs.Usage()
			return fmt.Errorf("dlq %s: SEQ %q is not a positive number", verb, fs.Arg(1))
		}
		seq = n
	default:
		fs.Usage()
		return fmt.Errorf("dlq: want list, show SEQ, replay SEQ or drop SEQ, got %q", fs.Args())
	}

	identities, err := natsauth.Ensure(*ids)
	if err != nil {
		return err
	}
	as, err := identities.Option(natsauth.Operator)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(*url, as, nats.Name("shopd dlq"))
	if err != nil {
		return fmt.Errorf("dlq: connect to %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dls := messaging.NewDeadLetters(js)

	switch verb {
	case "list":
		list, err := dls.List(ctx, *limit)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SEQ\tTIME\tSUBJECT\tCONSUMER\tDELIVERIES\tID\tERROR")
		for _, dl := range list {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", dl.Seq, dl.Time.UTC().Format(time.RFC3339), dl.Subject, dl.Consumer, dl.Deliveries, dl.ID, dl.Error)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead letters\n", len(list))
	case "show":
		dl, err := dls.Get(ctx, seq)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "seq:        %d\ntime:       %s\nsubject:    %s\nconsumer:   %s\ndeliveries: %d\nid:         %s\ntype:       %s\nerror:      %s\nheaders:\n",
			dl.Seq, dl.Time.UTC().Format(time.RFC3339Nano), dl.Subject, dl.Consumer, dl.Deliveries, dl.ID, dl.Type, dl.Error)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range dl.Header {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(stdout, "  %s: %s\n", k, dl.Header.Get(k))
		}
		fmt.Fprintf(stdout, "payload:    %s\n", payloadJSON(dl.Type, dl.Data))
	case "replay":
		dl, err := dls.Replay(ctx, seq)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %d to %s as %s\n", seq, dl.Subject, dl.ID)
	case "drop":
		if err := dls.Drop(ctx, seq); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dropped %d\n", seq)
	}
	return nil
}

// payloadJSON writes a protobuf payload of a type this binary knows as JSON, and
// any other as its size.
func payloadJSON(typ string, data []byte) string {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err != nil {
		return fmt.Sprintf("%d bytes of %s", len(data), typ)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Sprintf("%d bytes, not a %s: %v", len(data), typ, err)
	}
	return protojson.Format(m)
}
