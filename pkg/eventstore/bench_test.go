package eventstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

const (
	benchPayload = 256
	// parallelism * GOMAXPROCS goroutines append at once, each to its own stream.
	parallelism = 8
)

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppend compares event-store appends (one event per commit, with optimistic
// concurrency and deduplication) with plain JetStream publishes of the same payload
// size to a stream with the same (file) storage, on one embedded server.
func BenchmarkAppend(b *testing.B) {
	_, nc := natstest.Connect(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	store := eventstore.NewJetStream(js)
	if err := store.EnsureCategory(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, benchPayload)
	event := func() eventstore.Event {
		return eventstore.Event{ID: uuid.NewString(), Type: "bench.Happened", Data: payload,
			Metadata: map[string]string{eventstore.MetaCorrelationID: "c"}}
	}
	var streams atomic.Int64

	b.Run("eventstore/one-stream-occ", func(b *testing.B) {
		defer reportRate(b)
		stream := fmt.Sprintf("bench-s%d", streams.Add(1))
		v := eventstore.NoStream
		for b.Loop() {
			if v, err = store.Append(ctx, stream, v, event()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-publish/one-subject", func(b *testing.B) {
		defer reportRate(b)
		for b.Loop() {
			if _, err := js.Publish(ctx, "raw.one", payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("eventstore/parallel-streams", func(b *testing.B) {
		b.SetParallelism(parallelism)
		defer reportRate(b)
		b.RunParallel(func(pb *testing.PB) {
			stream := fmt.Sprintf("bench-p%d", streams.Add(1))
			v := eventstore.NoStream
			for pb.Next() {
				var err error
				if v, err = store.Append(ctx, stream, v, event()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("raw-publish/parallel-subjects", func(b *testing.B) {
		b.SetParallelism(parallelism)
		defer reportRate(b)
		b.RunParallel(func(pb *testing.PB) {
			subject := fmt.Sprintf("raw.p%d", streams.Add(1))
			for pb.Next() {
				if _, err := js.Publish(ctx, subject, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
