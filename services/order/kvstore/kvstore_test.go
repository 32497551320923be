package kvstore

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

// TestBucketsSingleReplicaByDefault: the buckets fit an embedded single server
// unless a replica count is asked for.
func TestBucketsSingleReplicaByDefault(t *testing.T) {
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSnapshots(t.Context(), js, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCheckpoints(t.Context(), js, "", WithReplicas(0)); err != nil {
		t.Fatal(err)
	}
	for _, bucket := range []string{SnapshotBucket, CheckpointBucket} {
		st, err := js.Stream(t.Context(), "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().Config.Replicas; got != 1 {
			t.Errorf("bucket %s has %d replicas, want 1", bucket, got)
		}
	}
}
