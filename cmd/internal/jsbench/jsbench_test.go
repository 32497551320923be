package jsbench_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/cmd/internal/jsbench"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

func TestPublishRateMeasuresAndCleansUp(t *testing.T) {
	srv, nc := natstest.Connect(t)
	ctx := context.Background()
	rate, err := jsbench.PublishRate(ctx, srv.ClientURL(), 4, 500)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Fatalf("rate %v, want > 0", rate)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for name := range js.StreamNames(ctx).Name() {
		t.Errorf("stream %s left behind", name)
	}
}

func TestPublishRateRejectsBadInput(t *testing.T) {
	if _, err := jsbench.PublishRate(context.Background(), "nats://127.0.0.1:1", 0, 10); err == nil {
		t.Fatal("publishers 0 accepted")
	}
	if _, err := jsbench.PublishRate(context.Background(), "nats://127.0.0.1:1", 1, 10); err == nil {
		t.Fatal("unreachable server accepted")
	}
}
