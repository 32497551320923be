package resilience_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// countingJS is a real JetStream client that counts publish attempts.
type countingJS struct {
	jetstream.JetStream
	attempts atomic.Int64
}

func (c *countingJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	c.attempts.Add(1)
	return c.JetStream.PublishMsg(ctx, m, opts...)
}

// newPublisher starts an embedded JetStream server with an ORDERS stream on orders.>.
func newPublisher(t *testing.T, opts ...resilience.Option) (*resilience.Publisher, *countingJS, func()) {
	t.Helper()
	srv, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	cjs := &countingJS{JetStream: js}
	base := []resilience.Option{
		resilience.WithLogger(quiet),
		resilience.WithRetry(3, time.Microsecond, time.Microsecond, time.Minute),
	}
	return resilience.NewPublisher(cjs, "nats", append(base, opts...)...), cjs, srv.Close
}

func msg(subject string) *nats.Msg {
	return &nats.Msg{Subject: subject, Data: []byte("payload")}
}

func TestPublisherPublishes(t *testing.T) {
	p, cjs, _ := newPublisher(t)
	for i := range 3 {
		ack, err := p.Publish(context.Background(), msg("orders.1"), jetstream.WithMsgID("m"+string(rune('a'+i))))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if ack.Stream != "ORDERS" || ack.Sequence != uint64(i+1) {
			t.Fatalf("ack = %+v, want ORDERS seq %d", ack, i+1)
		}
	}
	if n := cjs.attempts.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

func TestPublisherBreaker(t *testing.T) {
	tests := []struct {
		name         string
		subject      string
		shutdown     bool
		wantErr      error
		wantAttempts int64 // for the two calls that trip the breaker
	}{
		// Nothing is stored on no-responders, so it is always retried.
		{name: "stream missing", subject: "nostream.1", wantErr: jetstream.ErrNoStreamResponse, wantAttempts: 6},
		// The deadline is the caller's whole budget: nothing is left to retry with.
		{name: "server shut down", subject: "orders.1", shutdown: true, wantErr: context.DeadlineExceeded, wantAttempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, cjs, shutdown := newPublisher(t,
				resilience.WithBreaker(2, time.Hour),
				resilience.WithTimeout(200*time.Millisecond))
			if tt.shutdown {
				shutdown()
			}
			for i := range 2 {
				_, err := p.Publish(context.Background(), msg(tt.subject))
				if !errors.Is(err, tt.wantErr) || errors.Is(err, resilience.ErrCircuitOpen) {
					t.Fatalf("publish %d: %v, want %v", i, err, tt.wantErr)
				}
			}
			if n := cjs.attempts.Load(); n != tt.wantAttempts {
				t.Fatalf("%d attempts, want %d", n, tt.wantAttempts)
			}
			_, err := p.Publish(context.Background(), msg(tt.subject))
			if !errors.Is(err, resilience.ErrCircuitOpen) {
				t.Fatalf("publish after threshold: %v, want ErrCircuitOpen", err)
			}
			if n := cjs.attempts.Load(); n != tt.wantAttempts {
				t.Fatalf("open breaker let a publish through: %d attempts", n)
			}
		})
	}
}

func TestPublisherConcurrencyConflictIsAnAnswer(t *testing.T) {
	p, cjs, _ := newPublisher(t, resilience.WithBreaker(1, time.Hour))
	ctx := context.Background()
	if _, err := p.Publish(ctx, msg("orders.1")); err != nil {
		t.Fatalf("first publish: %v", err)
	}

	_, err := p.Publish(ctx, msg("orders.1"), jetstream.WithExpectLastSequence(5))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		t.Fatalf("conflicting publish: %v, want API error %d", err, jetstream.JSErrCodeStreamWrongLastSequence)
	}
	if n := cjs.attempts.Load(); n != 2 {
		t.Fatalf("%d attempts, want 2: a conflict is never retried", n)
	}

	ack, err := p.Publish(ctx, msg("orders.1"), jetstream.WithExpectLastSequence(1))
	if err != nil {
		t.Fatalf("publish after conflict: %v; a conflict must not open the breaker", err)
	}
	if ack.Sequence != 2 {
		t.Fatalf("seq = %d, want 2", ack.Sequence)
	}
}

func TestPublisherCallerCancelDoesNotCount(t *testing.T) {
	p, _, _ := newPublisher(t, resilience.WithBreaker(1, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Publish(ctx, msg("orders.1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled publish: %v, want context.Canceled", err)
	}
	if _, err := p.Publish(context.Background(), msg("orders.1")); err != nil {
		t.Fatalf("publish after a cancelled one: %v", err)
	}
}

// gatedJS holds every publish until released, so a test can fill the bulkhead.
type gatedJS struct {
	jetstream.JetStream
	entered chan struct{}
	release chan struct{}
}

func (g *gatedJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.JetStream.PublishMsg(ctx, m, opts...)
}

func TestPublisherBulkhead(t *testing.T) {
	_, cjs, _ := newPublisher(t)
	g := &gatedJS{JetStream: cjs.JetStream, entered: make(chan struct{}), release: make(chan struct{})}
	p := resilience.NewPublisher(g, "nats", resilience.WithLogger(quiet), resilience.WithBulkhead(1, time.Millisecond))

	first := make(chan error, 1)
	go func() {
		_, err := p.Publish(context.Background(), msg("orders.1"))
		first <- err
	}()
	<-g.entered
	if _, err := p.Publish(context.Background(), msg("orders.1")); !errors.Is(err, resilience.ErrBulkheadFull) {
		t.Fatalf("publish beyond capacity: %v, want ErrBulkheadFull", err)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatalf("in-flight publish: %v", err)
	}
	go func() { <-g.entered }()
	if _, err := p.Publish(context.Background(), msg("orders.1")); err != nil {
		t.Fatalf("publish once the slot freed: %v", err)
	}
}
