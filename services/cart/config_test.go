package cart_test

import (
	"flag"
	"testing"

	"github.com/eventshop/eventshop/services/cart"
)

func TestStreamReplicasFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 1},
		{[]string{"-stream-replicas", "3"}, 3},
	} {
		var cfg cart.Config
		fs := flag.NewFlagSet("cart", flag.ContinueOnError)
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
	}
}
