package jspull_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/internal/jspull"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

// pullEnv is a stream with one durable consumer that admits a single waiting pull
// request, so a test can make the server drop an iterator's request without a word:
// a request over MaxWaiting that asks for heartbeats, as every iterator's does, is
// discarded silently.
func pullEnv(t *testing.T) (jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PULL", Subjects: []string{"pull.>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "PULL", jetstream.ConsumerConfig{
		Durable: "puller", AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, cons
}

// durable opens an Iterator on cons, as the messaging consumers do.
func durable(t *testing.T, cons jetstream.Consumer) *jspull.Iterator {
	t.Helper()
	p, err := jspull.New(jspull.DurableIdle, func() (jetstream.MessagesContext, error) {
		return cons.Messages(jetstream.PullMaxMessages(4))
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// An Iterator whose pull request the server dropped still receives what is
// published later: it replaces its MessagesContext after an idle period. (The
// library's own missing-heartbeat check would take 30 s; bounded waits disarm it.)
func TestIteratorRecoversFromADroppedPullRequest(t *testing.T) {
	js, cons := pullEnv(t)
	ctx := context.Background()

	// Another client's long pull takes the only waiting slot, so the iterator's
	// request is dropped.
	blocker, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	p := durable(t, cons)
	defer p.Stop()
	p.SetPeriods(jspull.RepullEvery, 2*time.Second)
	// Next sends the iterator's first pull request, while the slot is taken.
	got := make(chan jetstream.Msg, 1)
	go func() {
		msg, err := p.Next()
		if err != nil {
			t.Error(err)
		}
		got <- msg
	}()
	for range blocker.Messages() {
		t.Fatal("the blocking fetch received a message")
	}

	if _, err := js.Publish(ctx, "pull.a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-got:
		if msg == nil || string(msg.Data()) != "a" {
			t.Fatalf("got %v", msg)
		}
		_ = msg.Ack()
	case <-time.After(15 * time.Second):
		t.Fatal("the iterator never received the message published after its pull request was dropped")
	}
}

// Stop ends a waiting Next, renewals included, and every later one.
func TestIteratorStop(t *testing.T) {
	_, cons := pullEnv(t)
	p := durable(t, cons)
	const wait = 50 * time.Millisecond
	p.SetPeriods(wait, 3*wait)
	done := make(chan error, 1)
	go func() {
		_, err := p.Next()
		done <- err
	}()
	time.Sleep(5 * wait) // through a renewal or two
	p.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			t.Fatalf("Next after Stop: %v, want ErrMsgIteratorClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still waiting after Stop")
	}
	if _, err := p.Next(); !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
		t.Fatalf("Next on a stopped iterator: %v", err)
	}
}
