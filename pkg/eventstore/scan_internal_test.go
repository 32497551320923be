package eventstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

// A category subscription that stays idle long enough for its ordered consumer to
// be replaced goes on from the event after the last one it handled: no gap, no
// repeat, across several replacements.
func TestSubscriptionGoesOnAcrossIdleReplacements(t *testing.T) {
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := NewJetStream(js)
	s.scanIdle = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	got := make(chan Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- s.SubscribeCategory(ctx, "idle", 0, func(_ context.Context, e Event) error {
			got <- e
			return nil
		})
	}()
	var want []string
	for round := range 3 {
		for i := range 3 {
			id := fmt.Sprintf("idle-%d-%d", round, i)
			if _, err := s.Append(ctx, "idle-"+id, NoStream, Event{ID: id, Type: "t", Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
		}
		time.Sleep(3 * s.scanIdle) // idle: the consumer is replaced
	}
	for i, id := range want {
		select {
		case e := <-got:
			if e.ID != id {
				t.Fatalf("event %d: %s, want %s", i, e.ID, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d (%s) never came", i, id)
		}
	}
	select {
	case e := <-got:
		t.Fatalf("extra event %s", e.ID)
	case <-time.After(3 * s.scanIdle):
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("subscription ended with %v", err)
	}
}
