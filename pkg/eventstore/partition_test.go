package eventstore_test

import (
	"fmt"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
)

func TestPartitionIsStableAndInRange(t *testing.T) {
	seen := map[int]bool{}
	for i := range 1000 {
		s := fmt.Sprintf("order-%d", i)
		p := eventstore.Partition(s, 8)
		if p < 0 || p >= 8 || eventstore.Partition(s, 8) != p {
			t.Fatalf("Partition(%q) = %d", s, p)
		}
		seen[p] = true
	}
	if len(seen) != 8 {
		t.Errorf("1000 streams fell in %d of %d partitions", len(seen), 8)
	}
}
