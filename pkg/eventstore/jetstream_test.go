package eventstore_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/eventstore/eventstoretest"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

func TestJetStreamConformanceEmbedded(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return embeddedJetStream(t) })
}

// embeddedJetStream returns a store on an embedded server of the test's own.
func embeddedJetStream(t *testing.T) *eventstore.JetStream {
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.NewJetStream(js)
}

// TestJetStreamConformanceExternal runs the suite against a separately started server,
// which outlives the test: every store gets its own stream prefix and deletes its
// streams when the test ends.
func TestJetStreamConformanceExternal(t *testing.T) {
	url := os.Getenv("SHOP_TEST_NATS_URL")
	if url == "" {
		t.Skip("set SHOP_TEST_NATS_URL (e.g. nats://127.0.0.1:4222) to run the conformance suite against an external nats-server with JetStream")
	}
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
		if err != nil {
			t.Fatalf("connect %s: %v", url, err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		prefix := strings.ToUpper(eventstoretest.Category("ESTEST_")) + "_"
		t.Cleanup(func() { deleteStreams(t, js, prefix) })
		return eventstore.NewJetStream(js, eventstore.WithStreamPrefix(prefix))
	})
}

func deleteStreams(t *testing.T, js jetstream.JetStream, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var doomed []string
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) {
			doomed = append(doomed, name)
		}
	}
	if err := names.Err(); err != nil {
		t.Errorf("list streams: %v", err)
	}
	for _, name := range doomed {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Errorf("delete stream %s: %v", name, err)
		}
	}
}

// A broker that cannot answer is an outage the caller may retry, not a fault of the
// request: the store says so with ErrUnavailable, and only then; and it does not wait
// for the connection to come back longer than its own operation deadline, however
// long the caller would wait.
func TestJetStreamUnavailableWhileTheServerIsDown(t *testing.T) {
	srv := natstest.Start(t)
	connect := func(opts ...nats.Option) jetstream.JetStream {
		nc, err := srv.Connect(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	// No reconnect buffer: while the server is away a publish fails at once.
	unbuffered := eventstore.NewJetStream(connect(nats.ReconnectBufSize(-1)))
	// The client's default: requests wait in the reconnect buffer.
	buffered := eventstore.NewJetStream(connect(), eventstore.WithOperationTimeout(300*time.Millisecond))
	ctx := context.Background()
	ev := func(id string) eventstore.Event {
		return eventstore.Event{ID: id, Type: "test.Happened", Data: []byte("x")}
	}
	if _, err := unbuffered.Append(ctx, "order-1", eventstore.NoStream, ev("e1")); err != nil {
		t.Fatal(err)
	}
	if _, err := unbuffered.Append(ctx, "order-1", eventstore.NoStream, ev("e2")); errors.Is(err, eventstore.ErrUnavailable) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("a conflict is %v; want ErrWrongExpectedVersion, not ErrUnavailable", err)
	}
	if _, err := buffered.ReadStream(ctx, "order-1", 1); err != nil {
		t.Fatal(err)
	}

	srv.Close()
	if _, err := unbuffered.Append(ctx, "order-1", 1, ev("e3")); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("append with the server down: %v; want ErrUnavailable", err)
	}
	for name, op := range map[string]func() error{
		"append": func() error { _, err := buffered.Append(ctx, "order-1", 1, ev("e4")); return err },
		"read":   func() error { _, err := buffered.ReadStream(ctx, "order-1", 1); return err },
	} {
		start := time.Now()
		if err := op(); !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("%s, no caller deadline, server down: %v; want ErrUnavailable", name, err)
		}
		if waited := time.Since(start); waited > 5*time.Second {
			t.Fatalf("%s waited %v, want about the store's 300ms", name, waited)
		}
	}
}

// The caller's own deadline is the caller's: it stays DeadlineExceeded.
func TestJetStreamCallerDeadlineIsNotUnavailable(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	store := eventstore.NewJetStream(js)
	if _, err := store.Append(context.Background(), "order-1", eventstore.NoStream, eventstore.Event{ID: "e1", Type: "t", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = store.ReadStream(ctx, "order-1", 1)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("read past the caller's deadline: %v; want DeadlineExceeded, not ErrUnavailable", err)
	}
}
