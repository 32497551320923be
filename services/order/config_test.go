package order_test

import (
	"flag"
	"testing"

	"github.com/eventshop/eventshop/services/order"
)

func TestStreamReplicasFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 1},
		{[]string{"-stream-replicas", "3"}, 3},
	} {
		var cfg order.Config
		fs := flag.NewFlagSet("order", flag.ContinueOnError)
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
