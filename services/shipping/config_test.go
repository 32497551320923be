package shipping_test

import (
	"context"
	"flag"
	"testing"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/shipping"
)

func TestStreamReplicasFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 1},
		{[]string{"-stream-replicas", "3"}, 3},
	} {
		var cfg shipping.Config
		fs := flag.NewFlagSet("shipping", flag.ContinueOnError)
		cfg.RegisterFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
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

// TestStreamsSingleReplicaByDefault: a Config that leaves StreamReplicas at zero
// declares streams an embedded single server can host.
func TestStreamsSingleReplicaByDefault(t *testing.T) {
	h := start(t, sqltest.Open(t, sqldb.SQLite), nil)
	for _, name := range []string{messaging.CommandStream, messaging.EventStream, messaging.DLQStream} {
		st, err := h.js.Stream(context.Background(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if got := st.CachedInfo().Config.Replicas; got != 1 {
			t.Errorf("stream %s: %d replicas, want 1", name, got)
		}
	}
}
