// Package partition splits the work of following an event category among the
// instances of a service that run at once. The category's streams (one per
// aggregate) fall into a fixed number of partitions by a hash of their name
// (eventstore.Partition); each partition is leased to one live instance at a time
// through a NATS key-value bucket, the partitions are balanced over the live instances, and an instance that stops
// or dies gives its partitions up (at once, or when its leases expire) to the
// others. Within an instance, the work on its partitions runs as one function the
// group restarts whenever the set changes.
//
// Why not github.com/synadia-io/orbit.go/pcgroups: it partitions by a token in the
// stored subject. Its static groups need that token in the category's own subjects
// (a stream subject transform), which would change the subject every aggregate
// read and every optimistic-concurrency check of the event store uses; its elastic
// groups copy the category into a work-queue stream, a second JetStream write for
// every event, where the order pipeline is designed for one. Here every instance
// reads the category once and skips the partitions it does not own: reads are
// cheap beside the SQL writes and saga work that partitioning divides.
//
// A lease is fenced only by time: an instance that stalls longer than the lease
// TTL may still work on a partition for a moment after another took it over. The
// work must therefore tolerate a partition worked on twice (idempotent by version
// or id, as every handler of this shop is) and guard its checkpoints (a checkpoint
// moved by the new owner fails the old one's update).
package partition

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/messaging"
)

// DefaultTTL is how long a lease and a membership last without renewal: how long
// the partitions of an instance that died unannounced wait for another owner.
const DefaultTTL = 6 * time.Second

// Config describes a group.
type Config struct {
	// Bucket is the key-value bucket holding the group's members and leases. It is
	// created (or its TTL updated) by Join. Required.
	Bucket string
	// Partitions is the number of partitions, fixed for the life of the data (see
	// Of). Required.
	Partitions int
	// Member names this instance, unique among the instances running at once. Empty
	// takes a random name, which is what a restarted instance should have: its old
	// leases expire rather than being taken for its own.
	Member string
	// TTL is how long a lease or membership lasts unrenewed (default DefaultTTL).
	// Leases are renewed every TTL/3.
	TTL time.Duration
	// Replicas is the bucket's number of replicas (default 1).
	Replicas int
	// Logger receives lease changes (default slog.Default()).
	Logger *slog.Logger
}

// Group is one instance's membership of a group.
type Group struct {
	kv  jetstream.KeyValue
	cfg Config
	log *slog.Logger
}

// Join declares the group's bucket and returns this instance's membership, not yet
// active: Run takes part. It returns an error for an invalid config and the error
// of declaring the bucket.
func Join(ctx context.Context, js jetstream.JetStream, cfg Config) (*Group, error) {
	if cfg.Bucket == "" || cfg.Partitions < 1 {
		return nil, fmt.Errorf("partition: bucket %q with %d partitions: want a bucket and at least one partition", cfg.Bucket, cfg.Partitions)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Member == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		cfg.Member = hex.EncodeToString(b)
	}
	if strings.ContainsAny(cfg.Member, ".*> \t") {
		return nil, fmt.Errorf("partition: member name %q must have no . * > or spaces", cfg.Member)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := messaging.DeclareKeyValue(ctx, js, "partition: bucket "+cfg.Bucket, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "partition leases and members",
		// Every write is a renewal: a key not written for TTL is gone, and with it
		// a dead member and its leases.
		TTL:      cfg.TTL,
		History:  1,
		Replicas: max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, err
	}
	return &Group{kv: kv, cfg: cfg, log: cfg.Logger.With("bucket", cfg.Bucket, "member", cfg.Member)}, nil
}

// Member returns this instance's name in the group.
func (g *Group) Member() string { return g.cfg.Member }

// Partitions returns the group's number of partitions.
func (g *Group) Partitions() int { return g.cfg.Partitions }

// Run takes part in the group until ctx ends: it keeps this instance's membership
// and leases alive, claims its share of the partitions, and runs work with the
// partitions it holds (sorted), again each time that set changes: the previous
// run's context is cancelled and Run waits for it to return before it lets a
// partition go. work also runs with an empty set while this instance holds none.
// When ctx ends Run stops work, gives every lease up, and returns nil. It returns
// work's error (after giving its leases up) when work fails on its own: the caller
// decides whether to run again.
func (g *Group) Run(ctx context.Context, work func(ctx context.Context, owned []int) error) error {
	held := map[int]uint64{} // partition → lease revision
	var (
		cur     []int
		stop    context.CancelFunc = func() {}
		done                       = make(chan error, 1)
		running bool
	)
	start := func(owned []int) {
		wctx, cancel := context.WithCancel(ctx)
		stop, running = cancel, true
		go func() { done <- work(wctx, owned) }()
	}
	halt := func() error {
		if !running {
			return nil
		}
		stop()
		running = false
		err := <-done
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	defer func() {
		_ = halt()
		g.releaseAll(held)
	}()

	start(nil)
	tick := time.NewTicker(g.cfg.TTL / 3)
	defer tick.Stop()
	for {
		want := g.renew(ctx, held)
		owned := slices.Sorted(maps.Keys(held))
		if want != nil {
			owned = slices.DeleteFunc(owned, func(p int) bool { return !slices.Contains(want, p) })
		}
		if !slices.Equal(owned, cur) {
			if err := halt(); err != nil {
				return fmt.Errorf("partition: work on %v: %w", cur, err)
			}
			for p := range held {
				if !slices.Contains(owned, p) {
					g.release(p, held)
				}
			}
			g.log.Info("partitions held", "partitions", owned)
			cur = owned
			start(owned)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			running = false
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("work returned")
			}
			return fmt.Errorf("partition: work on %v: %w", cur, err)
		case <-tick.C:
		}
	}
}

// renew writes this member's heartbeat, renews the leases held and claims the free
// ones this member should have, and returns the partitions it should have (nil
// when that cannot be known). Partitions held but no longer wanted stay in held:
// Run lets them go once their work stopped.
func (g *Group) renew(ctx context.Context, held map[int]uint64) []int {
	rctx, cancel := context.WithTimeout(ctx, g.cfg.TTL/3)
	defer cancel()
	if _, err := g.kv.Put(rctx, "members."+g.cfg.Member, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		// Without a heartbeat nothing here is known; keep what is held until the
		// leases say otherwise.
		g.log.Warn("partition heartbeat failed", "error", err)
	}
	want := g.share(rctx)
	for p, rev := range held {
		next, err := g.kv.Update(rctx, leaseKey(p), []byte(g.cfg.Member), rev)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				g.log.Warn("partition lease lost", "partition", p, "error", err)
				delete(held, p)
			}
			continue
		}
		held[p] = next
	}
	for _, p := range want {
		if _, ok := held[p]; ok {
			continue
		}
		if rev, err := g.kv.Create(rctx, leaseKey(p), []byte(g.cfg.Member)); err == nil {
			held[p] = rev
		}
	}
	return want
}

// share returns the partitions this member should hold: every partition whose
// number, modulo the number of live members, is this member's rank among them.
// It returns nil when the members cannot be listed.
func (g *Group) share(ctx context.Context) []int {
	lister, err := g.kv.ListKeysFiltered(ctx, "members.>")
	if err != nil {
		g.log.Warn("partition members not listed", "error", err)
		return nil
	}
	// The lister stops by itself once it has listed every key.
	var members []string
	for k := range lister.Keys() {
		members = append(members, strings.TrimPrefix(k, "members."))
	}
	if ctx.Err() != nil {
		g.log.Warn("partition members not listed", "error", ctx.Err())
		return nil
	}
	if !slices.Contains(members, g.cfg.Member) {
		members = append(members, g.cfg.Member)
	}
	slices.Sort(members)
	rank := slices.Index(members, g.cfg.Member)
	var out []int
	for p := range g.cfg.Partitions {
		if p%len(members) == rank {
			out = append(out, p)
		}
	}
	return out
}

// release gives lease p up, if it is still this member's.
func (g *Group) release(p int, held map[int]uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.TTL/3)
	defer cancel()
	if err := g.kv.Delete(ctx, leaseKey(p), jetstream.LastRevision(held[p])); err != nil {
		g.log.Warn("partition lease not released; it expires", "partition", p, "error", err)
	}
	delete(held, p)
}

// releaseAll gives every lease and the membership up, so that the others need not
// wait for them to expire.
func (g *Group) releaseAll(held map[int]uint64) {
	for p := range held {
		g.release(p, held)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.TTL/3)
	defer cancel()
	_ = g.kv.Delete(ctx, "members."+g.cfg.Member)
}

func leaseKey(p int) string { return "leases." + strconv.Itoa(p) }
