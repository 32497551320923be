package order_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/eventshop/eventshop/services/order"
	"github.com/eventshop/eventshop/services/order/projection"
)

// parseConfig returns the config the order service's flags make of args.
func parseConfig(t *testing.T, args []string) order.Config {
	t.Helper()
	var cfg order.Config
	fs := flag.NewFlagSet("order", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestStreamReplicasFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 1},
		{[]string{"-stream-replicas", "3"}, 3},
	} {
		cfg := parseConfig(t, tc.args)
		if cfg.StreamReplicas != tc.want {
			t.Errorf("%v: StreamReplicas = %d, want %d", tc.args, cfg.StreamReplicas, tc.want)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%v: Validate: %v", tc.args, err)
		}
		cfg.StreamReplicas = -1
		if cfg.Validate() == nil {
			t.Errorf("%v: Validate accepted stream-replicas -1", tc.args)
		}
	}
}

// -event-store takes jetstream (the default), memory or an EventStoreDB connection
// string; anything else, or a connection string the client cannot read, is refused
// with the flag's name, before anything is started.
func TestEventStoreFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" refused
	}{
		{nil, order.EventStoreJetStream},
		{[]string{"-event-store", "memory"}, order.EventStoreMemory},
		{[]string{"-event-store", "esdb://127.0.0.1:2113?tls=false"}, "esdb://127.0.0.1:2113?tls=false"},
		{[]string{"-event-store", "esdb+discover://cluster.example.com:2113"}, "esdb+discover://cluster.example.com:2113"},
		// deploy/k8s/overlays/prod-eventstoredb's, on a machine without the CA file
		// it names: the client reads the file when it reads the string.
		{[]string{"-event-store", "esdb+discover://eventstoredb.eventshop-infra.svc.cluster.local:2113?tlsCAFile=/nonexistent/ca.crt"}, ""},
		{[]string{"-event-store", "postgres://127.0.0.1/test"}, ""},
		{[]string{"-event-store", "esdb://127.0.0.1:2113?tls=perhaps"}, ""},
		{[]string{"-event-store", "JetStream"}, ""},
	} {
		cfg := parseConfig(t, tc.args)
		err := cfg.Validate()
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%v: accepted", tc.args)
		case tc.want == "" && !strings.Contains(err.Error(), "event-store"):
			t.Errorf("%v: error %q does not name event-store", tc.args, err)
		case tc.want != "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && cfg.EventStore != tc.want:
			t.Errorf("%v: EventStore = %q, want %q", tc.args, cfg.EventStore, tc.want)
		}
	}
}

// -read-cache defaults to the cache's default size; 0 turns it off; a negative size
// is refused with the flag's name.
func TestReadCacheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int // -1 refused
	}{
		{nil, projection.DefaultOrderCacheSize},
		{[]string{"-read-cache", "0"}, 0},
		{[]string{"-read-cache", "100"}, 100},
		{[]string{"-read-cache", "-1"}, -1},
	} {
		cfg := parseConfig(t, tc.args)
		err := cfg.Validate()
		switch {
		case tc.want < 0 && (err == nil || !strings.Contains(err.Error(), "read-cache")):
			t.Errorf("%v: error %v, want one naming read-cache", tc.args, err)
		case tc.want >= 0 && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want >= 0 && cfg.ReadCache != tc.want:
			t.Errorf("%v: ReadCache = %d, want %d", tc.args, cfg.ReadCache, tc.want)
		}
	}
}
