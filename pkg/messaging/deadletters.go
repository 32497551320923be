package messaging

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// ErrNoDeadLetter is returned for a sequence the dead-letter stream does not hold.
var ErrNoDeadLetter = errors.New("messaging: no such dead letter")

// DeadLetter is one message no handler could process, as the dead-letter stream
// holds it.
type DeadLetter struct {
	// Seq is its sequence in the dead-letter stream: what Get, Replay and Drop take.
	Seq uint64
	// Time is when it was dead-lettered.
	Time time.Time
	// Subject is the subject it was published on, where Replay sends it again.
	Subject string
	// Consumer is the durable consumer that gave up on it.
	Consumer string
	// Error is why: the last handler error.
	Error string
	// Deliveries is how many times it was delivered before that.
	Deliveries int
	// ID and Type are its CloudEvents id and type.
	ID, Type string
	// Header and Data are the message as published, with the dead-letter headers.
	Header nats.Header
	Data   []byte
}

// DeadLetters reads, replays and drops the messages of the dead-letter stream. Its
// identity needs read access to that stream and the right to publish on the original
// subjects, which only the operator has.
type DeadLetters struct {
	js jetstream.JetStream
}

// NewDeadLetters returns the dead letters of the DLQ stream js reaches.
func NewDeadLetters(js jetstream.JetStream) *DeadLetters { return &DeadLetters{js: js} }

// List returns up to limit dead letters (all when limit <= 0), oldest first. It
// returns the JetStream error.
func (d *DeadLetters) List(ctx context.Context, limit int) ([]DeadLetter, error) {
	st, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, fmt.Errorf("messaging: dead letters: %w", err)
	}
	var out []DeadLetter
	for seq := st.CachedInfo().State.FirstSeq; seq > 0 && seq <= st.CachedInfo().State.LastSeq; seq++ {
		if limit > 0 && len(out) == limit {
			break
		}
		dl, err := d.get(ctx, st, seq)
		if errors.Is(err, ErrNoDeadLetter) {
			continue // dropped or replayed: a gap in the stream
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, nil
}

// Get returns dead letter seq, ErrNoDeadLetter if there is none, or the JetStream
// error.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	st, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("messaging: dead letters: %w", err)
	}
	return d.get(ctx, st, seq)
}

func (d *DeadLetters) get(ctx context.Context, st jetstream.Stream, seq uint64) (DeadLetter, error) {
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrNoDeadLetter, seq)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("messaging: dead letter %d: %w", seq, err)
	}
	h := raw.Header
	n, _ := strconv.Atoi(h.Get(HeaderDLQDeliveries))
	return DeadLetter{
		Seq: raw.Sequence, Time: raw.Time, Subject: h.Get(HeaderDLQSubject), Consumer: h.Get(HeaderDLQConsumer),
		Error: h.Get(HeaderError), Deliveries: n, ID: h.Get(HeaderID), Type: h.Get(HeaderType),
		Header: h, Data: raw.Data,
	}, nil
}

// Replay publishes dead letter seq again on its original subject, as it was first
// published: its headers without the dead-letter ones, so with its own ce-id, by
// which handlers take a message once (a replay of something already handled is
// answered, not done again). Its JetStream deduplication id is "<ce-id>/replay/<seq>":
// the original's id would be dropped as a duplicate while the stream still remembers
// it, and two replays of one dead letter are stored once. Then it removes the dead
// letter. It returns ErrNoDeadLetter or the JetStream error.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) (DeadLetter, error) {
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return dl, err
	}
	if dl.Subject == "" || dl.ID == "" {
		return dl, fmt.Errorf("messaging: dead letter %d names no original subject or id", seq)
	}
	h := make(nats.Header, len(dl.Header))
	for k, v := range dl.Header {
		switch k {
		case HeaderError, HeaderDLQConsumer, HeaderDLQSubject, HeaderDLQDeliveries, jetstream.MsgIDHeader:
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	h.Set(jetstream.MsgIDHeader, dl.ID+"/replay/"+strconv.FormatUint(seq, 10))
	// A duplicate ack means this dead letter was replayed before and not dropped:
	// dropping it now finishes that replay.
	if _, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: dl.Subject, Header: h, Data: dl.Data}); err != nil {
		return dl, fmt.Errorf("messaging: replay dead letter %d to %s: %w", seq, dl.Subject, err)
	}
	return dl, d.Drop(ctx, seq)
}

// Drop removes dead letter seq for good. It returns ErrNoDeadLetter or the
// JetStream error.
func (d *DeadLetters) Drop(ctx context.Context, seq uint64) error {
	st, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return fmt.Errorf("messaging: dead letters: %w", err)
	}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return fmt.Errorf("%w: %d", ErrNoDeadLetter, seq)
		}
		return fmt.Errorf("messaging: drop dead letter %d: %w", seq, err)
	}
	return nil
}

// ObserveDepth reports how many dead letters wait in the DLQ stream as the gauge
// messaging.dead_letters, read from the stream's state at each collection, on mp's
// meter (the global provider when nil). A dead letter is work that will never be
// done unless an operator replays or drops it, so anything above zero, and above
// all a rising count, deserves a look (deploy/monitoring alerts on it). Unregister
// the returned registration when done.
func (d *DeadLetters) ObserveDepth(mp metric.MeterProvider) (metric.Registration, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(instrumentation)
	g, err := m.Int64ObservableGauge("messaging.dead_letters",
		metric.WithDescription("Messages waiting in the dead-letter stream."))
	if err != nil {
		return nil, fmt.Errorf("messaging: dead-letter gauge: %w", err)
	}
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := d.js.Stream(ctx, DLQStream)
		if err != nil {
			return nil // unknown now: no sample rather than a wrong zero
		}
		o.ObserveInt64(g, int64(st.CachedInfo().State.Msgs))
		return nil
	}, g)
}
