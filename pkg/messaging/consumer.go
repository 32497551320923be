package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/eventshop/pkg/internal/jspull"
)

// ConsumerConfig describes one durable consumer. Zero values take the defaults.
type ConsumerConfig struct {
	// Durable names the consumer after its handler, e.g. "payment-commands" or
	// "order-saga-events". Renaming it is a deliberate replay (see package doc).
	Durable string
	// Subjects filter what the consumer receives, e.g. "cmd.payment.>". On the
	// COMMANDS work-queue stream, filters of two consumers must not overlap.
	Subjects []string
	// Stream defaults to COMMANDS when every subject starts with "cmd." and to
	// EVENTS when every subject starts with "evt.".
	Stream string
	// AckWait is how long the server waits for an ack before redelivering; it is how
	// fast a crashed consumer's messages come back. While a handler runs, InProgress
	// is sent every AckWait/3, so long handlers are not redelivered. Default 30s.
	AckWait time.Duration
	// MaxDeliver is how many times a handler is tried before the message goes to the
	// dead-letter stream. Default 5.
	MaxDeliver int
	// Backoff is the delay before redelivery after the n-th failed attempt
	// (Backoff[n-1], the last value repeating). Default 1s, 5s, 30s, 2m.
	Backoff []time.Duration
	// HandlerTimeout bounds one handler run through its context. A handler that
	// ignores its context stops being kept alive then, so the message is redelivered
	// after AckWait and eventually dead-lettered. Default 5m.
	HandlerTimeout time.Duration
	// Concurrency bounds the handlers running at once in this process. Default 4.
	Concurrency int
	// Logger receives dead-letter and transport warnings. Default slog.Default().
	Logger *slog.Logger
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.Stream == "" {
		c.Stream = streamFor(c.Subjects)
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = 5 * time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func streamFor(subjects []string) string {
	var stream string
	for i, s := range subjects {
		var this string
		switch {
		case strings.HasPrefix(s, CommandPrefix):
			this = CommandStream
		case strings.HasPrefix(s, EventPrefix):
			this = EventStream
		}
		if i > 0 && this != stream {
			return ""
		}
		stream = this
	}
	return stream
}

// Validate returns every problem of the config, after defaults, joined into one error.
func (c ConsumerConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Durable == "" || strings.ContainsAny(c.Durable, ".*> \t") {
		errs = append(errs, fmt.Errorf("durable name %q must be non-empty without . * > or spaces", c.Durable))
	}
	if len(c.Subjects) == 0 {
		errs = append(errs, errors.New("at least one subject is required"))
	}
	if c.Stream == "" {
		errs = append(errs, errors.New("stream is required when subjects mix the cmd. and evt. prefixes"))
	}
	for _, d := range c.Backoff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("backoff %v must be positive", d))
		}
	}
	return errors.Join(errs...)
}

// Consumer delivers messages of one durable JetStream consumer to typed handlers.
type Consumer struct {
	cfg      ConsumerConfig
	cons     jetstream.Consumer
	pub      Publisher
	handlers map[string]Handler
}

// NewConsumer declares (creates or updates) the durable consumer and returns it ready
// to Run. It returns an error if the config is invalid, two handlers accept the same
// ce-type, or JetStream refuses the consumer (e.g. jetstream.ErrStreamNotFound before
// DeclareStreams, or an overlapping filter on the work-queue stream).
func (b *Bus) NewConsumer(ctx context.Context, cfg ConsumerConfig, handlers ...Handler) (*Consumer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("messaging: consumer %s: %w", cfg.Durable, err)
	}
	if len(handlers) == 0 {
		return nil, fmt.Errorf("messaging: consumer %s: no handlers", cfg.Durable)
	}
	byType := make(map[string]Handler, len(handlers))
	for _, h := range handlers {
		if _, dup := byType[h.MessageType()]; dup {
			return nil, fmt.Errorf("messaging: consumer %s: two handlers for %s", cfg.Durable, h.MessageType())
		}
		byType[h.MessageType()] = h
	}
	consCfg := withFilter(jetstream.ConsumerConfig{
		Durable:     cfg.Durable,
		Description: "handlers: " + strings.Join(typeNames(byType), ", "),
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     cfg.AckWait,
		// One delivery more than handler attempts: a message whose last attempt
		// crashed the process comes back once more and is dead-lettered unhandled,
		// instead of silently stopping at the server's limit.
		MaxDeliver:    cfg.MaxDeliver + 1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}, cfg.Subjects)
	cons, err := b.declareConsumer(ctx, cfg.Stream, consCfg)
	if err != nil {
		return nil, err
	}
	return &Consumer{cfg: cfg, cons: cons, pub: b.pub, handlers: byType}, nil
}

func typeNames(m map[string]Handler) []string { return slices.Sorted(maps.Keys(m)) }

// Name is the durable consumer name.
func (c *Consumer) Name() string { return c.cfg.Durable }

// Run delivers messages to the handlers, at most Concurrency at a time, until ctx is
// done; it then cancels the running handlers' contexts, waits for them and returns nil.
// Their messages are not acknowledged and come back (here or in another instance).
// It returns an error if the subscription cannot be made or ends for another reason,
// e.g. nats.ErrConnectionClosed.
func (c *Consumer) Run(ctx context.Context) error {
	it, err := pull(c.cons, jetstream.PullMaxMessages(c.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("messaging: consume %s: %w", c.cfg.Durable, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()

	// Concurrency workers live as long as Run, rather than a goroutine per message:
	// a handler's call chain (tracing, JSON, the event store's append) outgrows a new
	// goroutine's stack, and growing it again for every message was 1.6 % of the order
	// pipeline's CPU. A slot of sem is held from before a message is pulled until a
	// worker has settled it, so at most Concurrency are pulled and not yet settled.
	sem := make(chan struct{}, c.cfg.Concurrency)
	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(work)
	for range c.cfg.Concurrency {
		wg.Go(func() {
			for msg := range work {
				c.process(ctx, msg)
				<-sem
			}
		})
	}
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := it.Next()
		if err != nil {
			<-sem
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, jetstream.ErrMsgIteratorClosed), errors.Is(err, nats.ErrConnectionClosed):
				return fmt.Errorf("messaging: consume %s: %w", c.cfg.Durable, err)
			}
			// Missed heartbeats and similar hiccups: the iterator re-pulls by itself.
			c.cfg.Logger.WarnContext(ctx, "consumer pull failed", "consumer", c.cfg.Durable, "error", err)
			continue
		}
		work <- msg // a worker is free: sem counts the busy ones
	}
}

// pull reads cons through a jspull.Iterator: a consumer must not fall silent for
// 30 s because the library skipped a pull request (see package jspull).
func pull(cons jetstream.Consumer, opts ...jetstream.PullMessagesOpt) (*jspull.Iterator, error) {
	return jspull.New(jspull.DurableIdle, func() (jetstream.MessagesContext, error) {
		return cons.Messages(opts...)
	})
}

// process runs the handler of one message and settles it: ack, delayed nak, or
// dead letter followed by term. Every branch leaves the message in a state where a
// crash right now loses nothing (at worst it is delivered again).
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg) {
	m := messageFrom(msg)
	start, outcome := time.Now(), ""
	ctx = otel.GetTextMapPropagator().Extract(ctx, headerCarrier(msg.Headers()))
	ctx, span := startProcess(ctx, c.cfg.Durable, m, len(msg.Data()))
	defer func() { finishProcess(ctx, span, c.cfg.Durable, m.Destination, start, outcome) }()
	if m.Attempt > c.cfg.MaxDeliver {
		settleCtx, cancel := c.settleContext(ctx)
		defer cancel()
		c.deadLetter(settleCtx, msg, m, ErrMaxDeliver)
		span.SetStatus(codes.Error, "dead-lettered")
		outcome = outcomeDeadLettered
		return
	}
	if m.ID == "" || m.Header.Get(HeaderSpecVersion) != SpecVersion {
		settleCtx, cancel := c.settleContext(ctx)
		defer cancel()
		c.deadLetter(settleCtx, msg, m, fmt.Errorf("%w: ce-id %q, ce-specversion %q", ErrNotCloudEvent, m.ID, m.Header.Get(HeaderSpecVersion)))
		span.SetStatus(codes.Error, "dead-lettered")
		outcome = outcomeDeadLettered
		return
	}
	h, ok := c.handlers[m.Type]
	if !ok {
		settleCtx, cancel := c.settleContext(ctx)
		defer cancel()
		c.deadLetter(settleCtx, msg, m, fmt.Errorf("%w %q", ErrUnknownType, m.Type))
		span.SetStatus(codes.Error, "dead-lettered")
		outcome = outcomeDeadLettered
		return
	}

	hctx, cancel := context.WithTimeout(ctx, c.cfg.HandlerTimeout)
	stopKeepAlive := keepAlive(hctx, c.cfg.AckWait, msg)
	err := safeHandle(hctx, h, m, msg.Data())
	stopKeepAlive()
	cancel()

	// Settling must happen even while shutting down, or a finished handler's work
	// would be redelivered for nothing.
	settleCtx, cancel := c.settleContext(ctx)
	defer cancel()
	if err == nil {
		// A plain ack, not one the server confirms: handling is idempotent (inbox,
		// expected versions), so an ack lost on the way only brings the message back
		// to be answered as a repeat, while waiting for a confirmation cost every
		// message a request round trip (a tenth of the order pipeline's NATS traffic).
		if aerr := msg.Ack(); aerr != nil {
			c.cfg.Logger.WarnContext(ctx, "ack failed, message will be redelivered",
				"consumer", c.cfg.Durable, "id", m.ID, "error", aerr)
		}
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, "handler failed")
	outcome = outcomeHandlerError
	switch {
	case ctx.Err() != nil:
		// Shutting down: give the message back now rather than after AckWait. This is
		// not the handler's fault, so it never dead-letters here.
		_ = msg.Nak()
	case IsPermanent(err) || m.Attempt >= c.cfg.MaxDeliver:
		c.deadLetter(settleCtx, msg, m, err)
	default:
		// NakWithDelay rather than the consumer's BackOff: server-side BackOff only
		// paces redeliveries after AckWait expires (a crash), while a returned error is
		// known at once and should be retried after our own delay.
		_ = msg.NakWithDelay(c.backoff(m.Attempt))
	}
}

// safeHandle turns a handler panic into an error, so one bad message is retried and
// then dead-lettered instead of taking the whole service down with it.
func safeHandle(ctx context.Context, h Handler, m Message, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		}
	}()
	return h.handle(ctx, m, data)
}

// settleContext survives the cancellation of ctx (shutdown) but not forever: past
// AckWait the server redelivers anyway, so waiting longer is pointless.
func (c *Consumer) settleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.cfg.AckWait)
}

func (c *Consumer) backoff(attempt int) time.Duration {
	i := min(attempt-1, len(c.cfg.Backoff)-1)
	return c.cfg.Backoff[max(i, 0)]
}

// keepAlive tells the server that msgs are still being worked on, more often than
// ackWait, until the returned stop is called or ctx is done.
func keepAlive(ctx context.Context, ackWait time.Duration, msgs ...jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// finishProcess ends a message's consumer span and records its processing time,
// with outcome ("" for success) as its error type.
func finishProcess(ctx context.Context, span trace.Span, durable, destination string, start time.Time, outcome string) {
	if outcome != "" {
		span.SetAttributes(attribute.String("error.type", outcome))
	}
	span.End()
	recordDuration(ctx, meterInstruments().process, start,
		metricKey{operation: "process", destination: destination, group: durable, outcome: outcome})
}

// deadLetter copies the message with its headers to dlq.<subject>, adds why, and only
// then terminates the original. If the copy cannot be stored the original is nak'ed,
// so a message is never lost between the two.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, m Message, reason error) {
	h := make(nats.Header, len(msg.Headers())+5)
	for k, v := range msg.Headers() {
		h[k] = append([]string(nil), v...)
	}
	h.Set(HeaderError, reason.Error())
	h.Set(HeaderDLQConsumer, c.cfg.Durable)
	h.Set(HeaderDLQSubject, m.Destination)
	h.Set(HeaderDLQDeliveries, strconv.Itoa(m.Attempt))
	// The same event may be dead-lettered by several consumers; dedup per consumer
	// and stream position, so only a repeat by this consumer is dropped.
	dedup := c.cfg.Durable + ":" + m.ID
	if md, err := msg.Metadata(); err == nil {
		dedup = c.cfg.Durable + ":" + md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	h.Set(jetstream.MsgIDHeader, dedup)

	dlq := &nats.Msg{Subject: deadLetterSubject(m.Destination), Header: h, Data: msg.Data()}
	if _, err := c.pub.Publish(ctx, dlq); err != nil {
		c.cfg.Logger.ErrorContext(ctx, "dead-letter publish failed, message will be redelivered",
			"consumer", c.cfg.Durable, "id", m.ID, "subject", m.Destination, "error", err)
		_ = msg.NakWithDelay(c.backoff(m.Attempt))
		return
	}
	if err := msg.TermWithReason(reason.Error()); err != nil {
		c.cfg.Logger.WarnContext(ctx, "term after dead-letter failed", "consumer", c.cfg.Durable, "id", m.ID, "error", err)
	}
	c.cfg.Logger.WarnContext(ctx, "message dead-lettered",
		"consumer", c.cfg.Durable, "id", m.ID, "type", m.Type, "subject", m.Destination,
		"attempt", m.Attempt, "reason", reason.Error())
}

// withFilter sets the consumer's filter. One subject goes in FilterSubject, which the
// client puts in the create request's subject, where the server's permissions can pin
// it: a service allowed to create only "…CREATE.COMMANDS.payment-commands.cmd.payment.>"
// cannot point its consumer at another service's commands.
func withFilter(c jetstream.ConsumerConfig, subjects []string) jetstream.ConsumerConfig {
	if len(subjects) == 1 {
		c.FilterSubject = subjects[0]
	} else {
		c.FilterSubjects = subjects
	}
	return c
}
