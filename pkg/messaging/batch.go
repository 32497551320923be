package messaging

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// DefaultBatchSize is BatchConsumerConfig.BatchSize when zero.
const DefaultBatchSize = 64

// BatchConsumerConfig describes a durable consumer whose messages are handled in
// batches. Concurrency is the number of batches handled at once (default 2 here),
// HandlerTimeout bounds one whole batch; the other fields mean what they mean for
// ConsumerConfig.
type BatchConsumerConfig struct {
	ConsumerConfig
	// BatchSize is the most messages handed to one BatchFunc call. A batch is what is
	// already delivered when a worker is free: one message when the consumer is idle,
	// up to BatchSize under load, so batching never waits for messages. Default 64.
	BatchSize int
	// Types are the ce-types the BatchFunc accepts; any other message is dead-lettered
	// with ErrUnknownType before the batch is handed over. Required.
	Types []string
}

func (c BatchConsumerConfig) withDefaults() BatchConsumerConfig {
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	c.ConsumerConfig = c.ConsumerConfig.withDefaults()
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	return c
}

// Validate returns every problem of the config, after defaults, joined into one error.
func (c BatchConsumerConfig) Validate() error {
	c = c.withDefaults()
	errs := []error{c.ConsumerConfig.Validate()}
	if len(c.Types) == 0 {
		errs = append(errs, errors.New("at least one message type is required"))
	}
	return errors.Join(errs...)
}

// Delivery is one message of a batch, as a BatchFunc sees it.
type Delivery struct {
	Message
	// Data is the payload: the protobuf wire bytes of a message of type Type.
	Data []byte
	ctx  context.Context
}

// Context returns the batch's context carrying this message's consumer span, which
// is the parent of work done for this message alone and of its reply.
// Outside a consumer (a Delivery built by hand, in a test) it is context.Background().
func (d *Delivery) Context() context.Context {
	if d.ctx == nil {
		return context.Background()
	}
	return d.ctx
}

// Outcome is what a BatchFunc made of one Delivery.
type Outcome struct {
	// Reply, when its Msg is set, is published as an event caused by the delivery,
	// with ce-id and Nats-Msg-Id ReplyID, before the delivery is acknowledged; a
	// reply published twice under the same id is stored once.
	Reply   Reply
	ReplyID string
	// Subject is the reply's ce-subject, what it is about; empty keeps the
	// delivery's ce-subject (see CausedBy).
	Subject string
	// Err redelivers the message after a backoff, or dead-letters it when it is
	// Permanent or the delivery was the last allowed one. Reply is then ignored.
	Err error
}

// BatchFunc handles a batch of deliveries and returns one Outcome per delivery, in
// the same order. It must not acknowledge anything itself: the consumer publishes
// the replies and settles every message after it returns, so a crash inside it
// loses nothing (the whole batch is delivered again). A missing outcome counts as an
// error.
type BatchFunc func(ctx context.Context, batch []*Delivery) []Outcome

// BatchConsumer delivers the messages of one durable JetStream consumer in batches.
type BatchConsumer struct {
	cfg   BatchConsumerConfig
	cons  jetstream.Consumer
	bus   *Bus
	fn    BatchFunc
	types map[string]bool
	plain *Consumer // for dead-lettering and settling, shared with Consumer
}

// NewBatchConsumer declares (creates or updates) the durable consumer and returns it
// ready to Run. It returns an error if the config is invalid or fn is nil, or the
// JetStream error of declaring the consumer (e.g. jetstream.ErrStreamNotFound before
// DeclareStreams, or an overlapping filter on the work-queue stream).
func (b *Bus) NewBatchConsumer(ctx context.Context, cfg BatchConsumerConfig, fn BatchFunc) (*BatchConsumer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("messaging: consumer %s: %w", cfg.Durable, err)
	}
	if fn == nil {
		return nil, fmt.Errorf("messaging: consumer %s: nil batch func", cfg.Durable)
	}
	types := make(map[string]bool, len(cfg.Types))
	for _, t := range cfg.Types {
		types[t] = true
	}
	consCfg := withFilter(jetstream.ConsumerConfig{
		Durable:     cfg.Durable,
		Description: "handlers: " + strings.Join(slices.Sorted(slices.Values(cfg.Types)), ", "),
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     cfg.AckWait,
		// As for Consumer: one delivery more than attempts, so a message that crashed
		// the process on its last attempt is dead-lettered instead of stopping silently.
		MaxDeliver:    cfg.MaxDeliver + 1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Room for every worker's batch plus the one being gathered.
		MaxAckPending: max(1000, cfg.BatchSize*(cfg.Concurrency+1)),
	}, cfg.Subjects)
	cons, err := b.declareConsumer(ctx, cfg.Stream, consCfg)
	if err != nil {
		return nil, err
	}
	return &BatchConsumer{
		cfg: cfg, cons: cons, bus: b, fn: fn, types: types,
		plain: &Consumer{cfg: cfg.ConsumerConfig, cons: cons, pub: b.pub},
	}, nil
}

// Name is the durable consumer name.
func (c *BatchConsumer) Name() string { return c.cfg.Durable }

// Run hands batches to the BatchFunc, at most Concurrency at once, until ctx is done;
// it then cancels the running batches' contexts, waits for them, gives back the
// messages not yet handed over and returns nil. It returns an error if the
// subscription cannot be made or ends for another reason, e.g.
// nats.ErrConnectionClosed.
func (c *BatchConsumer) Run(ctx context.Context) error {
	it, err := pull(c.cons, jetstream.PullMaxMessages(c.cfg.BatchSize*c.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("messaging: consume %s: %w", c.cfg.Durable, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()

	// One reader moves deliveries into a channel, so a free worker can take what is
	// there without blocking: the batch is whatever arrived while it was busy.
	msgs := make(chan jetstream.Msg, c.cfg.BatchSize)
	readErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			msg, err := it.Next()
			if err != nil {
				switch {
				case ctx.Err() != nil:
					readErr <- nil
					return
				case errors.Is(err, jetstream.ErrMsgIteratorClosed), errors.Is(err, nats.ErrConnectionClosed):
					readErr <- fmt.Errorf("messaging: consume %s: %w", c.cfg.Durable, err)
					return
				}
				c.cfg.Logger.WarnContext(ctx, "consumer pull failed", "consumer", c.cfg.Durable, "error", err)
				continue
			}
			select {
			case msgs <- msg:
			case <-ctx.Done():
				_ = msg.Nak() // no worker will take it
				readErr <- nil
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for range c.cfg.Concurrency {
		wg.Go(func() {
			for {
				var batch []jetstream.Msg
				select {
				case <-ctx.Done():
					return
				case msg, ok := <-msgs:
					if !ok {
						return
					}
					batch = append(batch, msg)
				}
			gather:
				for len(batch) < c.cfg.BatchSize {
					select {
					case msg, ok := <-msgs:
						if !ok {
							break gather
						}
						batch = append(batch, msg)
					default:
						break gather
					}
				}
				c.process(ctx, batch)
			}
		})
	}
	wg.Wait()
	it.Stop()
	err = <-readErr
	// Give back what was delivered but never handed over, rather than after AckWait.
	for msg := range msgs {
		_ = msg.Nak()
	}
	return err
}

// item is one message of a batch being processed.
type item struct {
	msg     jetstream.Msg
	d       *Delivery
	span    trace.Span
	outcome string
	reply   *nats.Msg
	send    trace.Span
	sendCtx context.Context
	sent    time.Time
	pubErr  error
}

// process runs the BatchFunc on a batch and settles every message: replies published
// and acknowledged, or retried, or dead-lettered. A crash at any point leaves every
// message either acknowledged after its reply was stored by JetStream, or due for
// redelivery.
func (c *BatchConsumer) process(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	// Every message's context derives from the batch's, so HandlerTimeout bounds the
	// work done for any one of them too.
	hctx, cancel := context.WithTimeout(ctx, c.cfg.HandlerTimeout)
	defer cancel()
	items := make([]*item, 0, len(msgs))
	for _, msg := range msgs {
		m := messageFrom(msg)
		mctx := otel.GetTextMapPropagator().Extract(hctx, headerCarrier(msg.Headers()))
		mctx, span := startProcess(mctx, c.cfg.Durable, m, len(msg.Data()))
		var reject error
		switch {
		case m.Attempt > c.cfg.MaxDeliver:
			reject = ErrMaxDeliver
		case m.ID == "" || m.Header.Get(HeaderSpecVersion) != SpecVersion:
			reject = fmt.Errorf("%w: ce-id %q, ce-specversion %q", ErrNotCloudEvent, m.ID, m.Header.Get(HeaderSpecVersion))
		case !c.types[m.Type]:
			reject = fmt.Errorf("%w %q", ErrUnknownType, m.Type)
		}
		if reject != nil {
			settleCtx, cancel := c.plain.settleContext(mctx)
			c.plain.deadLetter(settleCtx, msg, m, reject)
			cancel()
			span.SetStatus(codes.Error, "dead-lettered")
			c.finish(mctx, &item{d: &Delivery{Message: m, ctx: mctx}, span: span, outcome: outcomeDeadLettered}, start)
			continue
		}
		items = append(items, &item{msg: msg, d: &Delivery{Message: m, Data: msg.Data(), ctx: mctx}, span: span})
	}
	if len(items) == 0 {
		return
	}

	handed := make([]jetstream.Msg, len(items))
	for i, it := range items {
		handed[i] = it.msg
	}
	stopKeepAlive := keepAlive(hctx, c.cfg.AckWait, handed...)
	outs := c.safeBatch(hctx, items)
	stopKeepAlive()
	cancel()

	// Settling must happen even while shutting down, or finished work would be
	// redelivered for nothing.
	settleCtx, cancelSettle := c.plain.settleContext(ctx)
	defer cancelSettle()
	c.publishReplies(settleCtx, items, outs)

	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { c.settle(ctx, settleCtx, it, outs[i]) })
	}
	wg.Wait()
	for _, it := range items {
		c.finish(it.d.ctx, it, start)
	}
}

// safeBatch turns a BatchFunc panic, or a wrong number of outcomes, into an error
// outcome for every message, so they are retried and dead-lettered in the end.
func (c *BatchConsumer) safeBatch(ctx context.Context, items []*item) (outs []Outcome) {
	batch := make([]*Delivery, len(items))
	for i, it := range items {
		batch[i] = it.d
	}
	defer func() {
		var err error
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		} else if len(outs) != len(items) {
			err = fmt.Errorf("messaging: batch func returned %d outcomes for %d messages", len(outs), len(items))
		}
		if err != nil {
			outs = make([]Outcome, len(items))
			for i := range outs {
				outs[i].Err = err
			}
		}
	}()
	return c.fn(ctx, batch)
}

// publishReplies publishes every reply asynchronously and waits for all of
// JetStream's acknowledgements, so a batch costs one round trip, not one per reply.
func (c *BatchConsumer) publishReplies(ctx context.Context, items []*item, outs []Outcome) {
	futures := make([]jetstream.PubAckFuture, len(items))
	for i, it := range items {
		o := outs[i]
		if o.Err != nil || o.Reply.Msg == nil {
			continue
		}
		nm, err := c.bus.message(o.Reply.Subject, o.ReplyID, o.Reply.Msg, []SendOption{WithSubject(o.Subject), CausedBy(it.d.Message)})
		if err != nil {
			it.pubErr = err
			continue
		}
		it.reply = nm
		it.sendCtx, it.send = startSend(it.d.ctx, nm)
		it.sent = time.Now()
		if futures[i], err = c.bus.js.PublishMsgAsync(nm); err != nil {
			it.pubErr = err
		}
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			items[i].pubErr = err
		case <-ctx.Done():
			items[i].pubErr = ctx.Err()
		}
	}
	for _, it := range items {
		if it.send == nil {
			continue
		}
		outcome := ""
		if it.pubErr != nil {
			it.send.RecordError(it.pubErr)
			it.send.SetStatus(codes.Error, "publish failed")
			it.send.SetAttributes(attribute.String("error.type", outcomePublishError))
			outcome = outcomePublishError
		}
		it.send.End()
		recordDuration(it.sendCtx, meterInstruments().send, it.sent, sendKey(it.reply.Subject, outcome))
	}
}

// settle acknowledges a handled message whose reply (if any) JetStream stored, and
// retries or dead-letters the others, as Consumer does for one message.
func (c *BatchConsumer) settle(ctx, settleCtx context.Context, it *item, o Outcome) {
	m := it.d.Message
	err := o.Err
	if err == nil && it.pubErr != nil {
		// The effect is committed and the reply stored: the redelivery re-publishes it.
		err = fmt.Errorf("messaging: reply to %s: %w", m.ID, it.pubErr)
	}
	if err == nil {
		if aerr := it.msg.Ack(); aerr != nil { // see Consumer.process: plain ack on purpose
			c.cfg.Logger.WarnContext(it.d.ctx, "ack failed, message will be redelivered",
				"consumer", c.cfg.Durable, "id", m.ID, "error", aerr)
		}
		return
	}
	it.span.RecordError(err)
	it.span.SetStatus(codes.Error, "handler failed")
	it.outcome = outcomeHandlerError
	switch {
	case ctx.Err() != nil:
		_ = it.msg.Nak()
	case IsPermanent(err) || m.Attempt >= c.cfg.MaxDeliver:
		c.plain.deadLetter(settleCtx, it.msg, m, err)
	default:
		_ = it.msg.NakWithDelay(c.plain.backoff(m.Attempt))
	}
}

func (c *BatchConsumer) finish(ctx context.Context, it *item, start time.Time) {
	finishProcess(ctx, it.span, c.cfg.Durable, it.d.Destination, start, it.outcome)
}

// startProcess starts the consumer span of one delivered message.
func startProcess(ctx context.Context, durable string, m Message, size int) (context.Context, trace.Span) {
	ctx, span := otel.Tracer(instrumentation).Start(ctx, "process "+m.Destination, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() { // see startSend
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.destination.name", m.Destination),
			attribute.Int("messaging.message.body.size", size),
			attribute.String("messaging.consumer.group.name", durable),
			attribute.String("messaging.message.id", m.ID),
			attribute.Int("messaging.nats.delivery_attempt", m.Attempt),
			attribute.String("cloudevents.event_type", m.Type),
		)
	}
	return ctx, span
}
