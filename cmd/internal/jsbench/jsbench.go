// Package jsbench measures what a NATS JetStream server can carry, so the shop's
// saga throughput can be reported as a share of it: the ceiling is the raw
// acknowledged publish rate divided by the JetStream writes one order costs.
package jsbench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WritesPerOrder counts the JetStream messages one completed order costs (an
// event-store append is one message, whatever its number of events):
//
//	order stream   6: OrderPlaced with the saga's start (SagaStarted + the first
//	                  StepStarted) in one append, whose expected version "no stream"
//	                  is also the idempotency guard; then one append per reply
//	                  (StepSucceeded + the next StepStarted, or + SagaCompleted)
//	commands       5: authorize, reserve, create shipment, capture, commit
//	replies        5: one event per command
//
// The saga's log is the order's own stream, so each fact is written once. Consumer
// acknowledgements and the SQL writes of the read model and of the participants
// come on top and are not counted.
const WritesPerOrder = 6 + 5 + 5

// payloadSize is about the size of a saga event or command.
const payloadSize = 300

// PublishRate returns acknowledged JetStream publishes per second on the server at
// url, with publishers publishing messages in all at once, each awaiting its ack,
// to a file-backed stream of its own (deleted afterwards), the way the shop's
// appends and commands do. It returns the first error a publish or the stream
// met. opts are added to the connection's (credentials: an identity allowed to create
// streams, such as the operator's).
func PublishRate(ctx context.Context, url string, publishers, messages int, opts ...nats.Option) (float64, error) {
	if publishers < 1 || messages < 1 {
		return 0, errors.New("jsbench: publishers and messages must be positive")
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("jsbench")}, opts...)...)
	if err != nil {
		return 0, fmt.Errorf("jsbench: connect %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("jsbench: %w", err)
	}
	// A name of its own, so a measurement never touches the shop's streams or
	// another measurement's.
	name := "JSBENCH_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	subject := "jsbench." + name
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject + ".>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		return 0, fmt.Errorf("jsbench: create stream: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	}()

	payload := make([]byte, payloadSize)
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range publishers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(messages) || ctx.Err() != nil {
					return
				}
				// Deduplication ids as the shop's publishes carry, so the server does the same work.
				if _, err := js.Publish(ctx, fmt.Sprintf("%s.%d", subject, i%64), payload, jetstream.WithMsgID(fmt.Sprint(i))); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return 0, fmt.Errorf("jsbench: publish: %w", first)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(messages) / elapsed.Seconds(), nil
}
