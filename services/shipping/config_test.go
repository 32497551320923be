package shipping_test

import (
	"context"
	"testing"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

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
