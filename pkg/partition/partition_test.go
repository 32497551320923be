package partition_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/partition"
	"github.com/eventshop/eventshop/pkg/poll"
)

const parts = 8

// board records which member works on which partition right now, and every time
// two worked on one at once.
type board struct {
	mu       sync.Mutex
	owner    map[int]string
	overlaps []string
}

func (b *board) work(member string) func(ctx context.Context, owned []int) error {
	return func(ctx context.Context, owned []int) error {
		b.mu.Lock()
		for _, p := range owned {
			if o, ok := b.owner[p]; ok && o != member {
				b.overlaps = append(b.overlaps, fmt.Sprintf("partition %d: %s and %s", p, o, member))
			}
			b.owner[p] = member
		}
		b.mu.Unlock()
		<-ctx.Done()
		b.mu.Lock()
		for _, p := range owned {
			if b.owner[p] == member {
				delete(b.owner, p)
			}
		}
		b.mu.Unlock()
		return nil
	}
}

// held returns the partitions each member works on.
func (b *board) held() map[string][]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]int{}
	for p, m := range b.owner {
		out[m] = append(out[m], p)
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

type member struct {
	nc   *nats.Conn
	stop context.CancelFunc
	done chan error
}

func join(t *testing.T, srv *natsembed.Server, b *board, name string) *member {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	g, err := partition.Join(context.Background(), js, partition.Config{Bucket: "test_partitions", Partitions: parts, Member: name, TTL: 900 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{nc: nc, stop: cancel, done: make(chan error, 1)}
	go func() { m.done <- g.Run(ctx, b.work(name)) }()
	t.Cleanup(func() { cancel(); <-m.done })
	return m
}

func waitFor(t *testing.T, b *board, what string, ok func(map[string][]int) bool) {
	t.Helper()
	poll.NoError(t, func() error {
		if held := b.held(); !ok(held) {
			return fmt.Errorf("%s: held %v", what, held)
		}
		return nil
	})
}

func split(want ...int) func(map[string][]int) bool {
	return func(h map[string][]int) bool {
		var sizes []int
		total := 0
		for _, ps := range h {
			sizes = append(sizes, len(ps))
			total += len(ps)
		}
		slices.Sort(sizes)
		return total == parts && slices.Equal(sizes, want)
	}
}

// Members share the partitions evenly; one that leaves hands its partitions over
// at once, one that dies does so when its leases expire, one that joins gets its
// share; and no partition is ever worked on by two members at once.
func TestMembersSharePartitions(t *testing.T) {
	srv := natstest.Start(t)
	b := &board{owner: map[int]string{}}

	join(t, srv, b, "a")
	waitFor(t, b, "one member holds all", split(parts))
	bm := join(t, srv, b, "b")
	waitFor(t, b, "two members hold half each", split(parts/2, parts/2))

	// b leaves: its leases are given up, a takes them.
	bm.stop()
	if err := <-bm.done; err != nil {
		t.Fatalf("b: Run = %v", err)
	}
	bm.done <- nil // for the cleanup
	waitFor(t, b, "a holds all after b left", split(parts))

	// c joins, then dies without a word (its connection cut): a takes c's
	// partitions after their leases expire.
	cm := join(t, srv, b, "c")
	waitFor(t, b, "a and c hold half each", split(parts/2, parts/2))
	cm.nc.Close()
	cm.stop()
	<-cm.done
	cm.done <- nil
	start := time.Now()
	waitFor(t, b, "a holds all after c died", func(h map[string][]int) bool { return len(h["a"]) == parts })
	t.Logf("c's partitions taken over after %v", time.Since(start).Round(10*time.Millisecond))

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.overlaps) > 0 {
		t.Errorf("partitions worked on by two members at once: %v", b.overlaps)
	}
}

func TestJoinRefusesBadConfig(t *testing.T) {
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []partition.Config{
		{Bucket: "", Partitions: 4},
		{Bucket: "b", Partitions: 0},
		{Bucket: "b", Partitions: 4, Member: "a.b"},
	} {
		if _, err := partition.Join(context.Background(), js, cfg); err == nil {
			t.Errorf("Join(%+v) = nil error", cfg)
		}
	}
}
