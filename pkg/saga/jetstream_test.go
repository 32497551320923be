package saga_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/poll"
	"github.com/eventshop/eventshop/pkg/saga"
)

// TestJetStreamKillAndResume runs sagas over real JetStream: the JetStream event
// store, the messaging bus for commands and replies, and a participant consuming
// cmd.test.>. The orchestrator process is killed while a participant is about to
// answer; a new one resumes from the saga log and the durable reply consumer.
func TestJetStreamKillAndResume(t *testing.T) {
	srv, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := messaging.DeclareStreams(ctx, js, messaging.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	p := newBusParticipant(t, js)
	p.hold("j-kill", "b")

	first := startProcess(t, srv)
	for _, id := range []string{"j-ok", "j-fail", "j-kill"} {
		if err := first.o.Start(ctx, id, newData(id)); err != nil {
			t.Fatalf("Start %s: %v", id, err)
		}
	}
	select {
	case <-p.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("command b of j-kill never reached the participant")
	}
	first.kill()
	p.release() // the reply goes out while no orchestrator runs

	second := startProcess(t, srv)
	defer second.kill()
	want := map[string]saga.Status{"j-ok": saga.Completed, "j-fail": saga.Cancelled, "j-kill": saga.Completed}
	poll.Until(t, "every saga ended", func() bool {
		for id := range want {
			st, err := second.o.Get(ctx, id)
			if err != nil || !st.Status.Final() {
				return false
			}
		}
		return true
	})
	for id, status := range want {
		st, err := second.o.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != status {
			t.Errorf("%s ended %v (%s), want %v", id, st.Status, st.Reason, status)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, n := range p.effects {
		if n != 1 {
			t.Errorf("effect %s applied %d times", key, n)
		}
	}
	for _, key := range []string{"j-ok a", "j-ok d", "j-kill d", "j-fail a", "j-fail b", "j-fail undo b", "j-fail undo a"} {
		if p.effects[key] != 1 {
			t.Errorf("effect %s missing (all: %v)", key, p.effects)
		}
	}
	if p.effects["j-fail c"] != 0 || p.effects["j-fail undo c"] != 0 {
		t.Errorf("declined step has effects: %v", p.effects)
	}
}

// process is one orchestrator process: its own connection, store, bus, reply
// consumer and Run loop.
type process struct {
	o    *saga.Orchestrator[data]
	stop context.CancelFunc
	done sync.WaitGroup
	kill func()
}

func startProcess(t *testing.T, srv *natsembed.Server) *process {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	bus := messaging.New(js, "sagatest")
	o, err := saga.New(testDefinition(4, 3), eventstore.NewJetStream(js), saga.BusTransport{Bus: bus}, saga.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := bus.NewConsumer(ctx, messaging.ConsumerConfig{
		Durable: "sagatest-replies", Subjects: []string{"evt.test.>"},
		AckWait: 2 * time.Second, Backoff: []time.Duration{100 * time.Millisecond}, Logger: quiet,
	},
		saga.ReplyHandler[*wrapperspb.Int64Value](o),
		saga.ReplyHandler[*wrapperspb.BoolValue](o),
		saga.ReplyHandler[*wrapperspb.UInt64Value](o),
		saga.ReplyHandler[*wrapperspb.UInt32Value](o),
	)
	if err != nil {
		t.Fatal(err)
	}
	p := &process{o: o, stop: cancel}
	p.done.Go(func() {
		if err := cons.Run(ctx); err != nil {
			t.Errorf("reply consumer: %v", err)
		}
	})
	p.done.Go(func() {
		if err := o.Run(ctx); err != nil {
			t.Errorf("orchestrator: %v", err)
		}
	})
	var once sync.Once
	p.kill = func() {
		once.Do(func() {
			cancel()
			p.done.Wait()
			nc.Close()
		})
	}
	t.Cleanup(p.kill)
	return p
}

// busParticipant answers cmd.test.<step>[.undo]: step c of saga j-fail is declined,
// everything else succeeds. It deduplicates by ce-id and counts effects.
type busParticipant struct {
	mu      sync.Mutex
	seen    map[string]bool
	effects map[string]int
	held    string
	once    sync.Once
	arrived chan struct{}
	gate    chan struct{}
}

func newBusParticipant(t *testing.T, js jetstream.JetStream) *busParticipant {
	t.Helper()
	p := &busParticipant{seen: map[string]bool{}, effects: map[string]int{}, arrived: make(chan struct{}), gate: make(chan struct{})}
	bus := messaging.New(js, "test")
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := bus.NewConsumer(ctx, messaging.ConsumerConfig{Durable: "test-participant", Subjects: []string{"cmd.test.>"}, Logger: quiet},
		messaging.Handle(func(ctx context.Context, m messaging.Message, _ *wrapperspb.StringValue) error {
			step := strings.TrimPrefix(m.Destination, "cmd.test.")
			key := m.CorrelationID + " " + step
			if key == p.held {
				p.once.Do(func() { close(p.arrived) })
				<-p.gate
			}
			var reply proto.Message = wrapperspb.Int64(1)
			subject := "evt.test.succeeded"
			if key == "j-fail c" {
				reply, subject = wrapperspb.Bool(false), "evt.test.declined"
			}
			if p.apply(m.ID, key, subject == "evt.test.succeeded") {
				_, err := bus.PublishEvent(ctx, subject, m.ID+"/reply", reply, messaging.CausedBy(m))
				return err
			}
			return nil
		}),
		messaging.Handle(func(ctx context.Context, m messaging.Message, _ *wrapperspb.BytesValue) error {
			step := strings.TrimSuffix(strings.TrimPrefix(m.Destination, "cmd.test."), ".undo")
			if p.apply(m.ID, m.CorrelationID+" undo "+step, true) {
				_, err := bus.PublishEvent(ctx, "evt.test.undone", m.ID+"/reply", wrapperspb.UInt64(1), messaging.CausedBy(m))
				return err
			}
			return nil
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = cons.Run(ctx) }()
	t.Cleanup(func() { p.release(); cancel(); <-done })
	return p
}

// apply records an effect once per command id; it reports whether the id was new.
// A redelivered command republishes nothing: its reply went out the first time.
func (p *busParticipant) apply(id, key string, effect bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[id] {
		return false
	}
	p.seen[id] = true
	if effect {
		p.effects[key]++
	}
	return true
}

func (p *busParticipant) hold(sagaID, step string) { p.held = sagaID + " " + step }

func (p *busParticipant) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}
