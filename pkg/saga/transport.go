package saga

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/messaging"
)

// Command is what an Orchestrator hands to its Transport.
type Command struct {
	// ID is deterministic: "<saga id>/<step>/<attempt>" for a step and
	// "<saga id>/<step>/undo/<attempt>" for a compensation, so sending it again
	// (after a crash, or by a second instance) is deduplicated.
	ID     string
	SagaID string
	// Step is the step's name; Compensation tells a compensation from the step.
	Step         string
	Compensation bool
	Attempt      int
	Request
}

// Transport sends saga commands.
//
// Send may be called more than once with the same Command (same ID): after a crash,
// after an earlier Send failed, or from two orchestrator instances. The transport or
// the participant must deduplicate by ID (JetStream does, by Nats-Msg-Id, within its
// duplicate window; participants with side effects keep an inbox of handled ids).
// A returned error means the command may not have been sent; it is sent again with
// the same ID on the next Tick.
type Transport interface {
	Send(ctx context.Context, c Command) error
}

// Reply is a participant's answer to a saga command.
type Reply struct {
	// SagaID correlates the reply with its saga (ce-correlationid).
	SagaID string
	// ID is the reply's own id (ce-id), recorded in the log.
	ID string
	// CausationID is the id of the command answered (ce-causationid). A reply to
	// anything but the step or compensation in progress is ignored, and so is one
	// without a causation id.
	CausationID string
	Msg         proto.Message
}

// ReplyReceiver takes replies; *Orchestrator implements it.
type ReplyReceiver interface {
	// HandleReply returns nil when the reply was used or deliberately ignored, and
	// an error when it should be delivered again.
	HandleReply(ctx context.Context, r Reply) error
}

// BusTransport sends commands on a messaging.Bus with ce-id = Command.ID (also the
// Nats-Msg-Id) and both ce-correlationid and ce-subject set to the saga id. A
// participant that answers with messaging.CausedBy(m) keeps the correlation id and
// names the command as causation, which is what ReplyHandler reads back.
type BusTransport struct {
	Bus *messaging.Bus
}

var _ Transport = BusTransport{}

// Send implements Transport; it returns the bus's error, e.g. messaging.ErrBadSubject
// for a subject outside cmd.
func (t BusTransport) Send(ctx context.Context, c Command) error {
	_, err := t.Bus.SendCommand(ctx, c.Subject, c.ID, c.Msg,
		messaging.WithCorrelationID(c.SagaID), messaging.WithSubject(c.SagaID))
	return err
}

// ReplyHandler returns a messaging handler passing replies of type M to r: the saga
// id is the ce-correlationid (or, if absent, the ce-subject) and the causation id the
// ce-causationid. Register one per reply type on the orchestrator's event consumer:
//
//	bus.NewConsumer(ctx, cfg, saga.ReplyHandler[*paymentv1.PaymentAuthorized](orch), ...)
func ReplyHandler[M proto.Message](r ReplyReceiver) messaging.Handler {
	return messaging.Handle(func(ctx context.Context, m messaging.Message, msg M) error {
		id := m.CorrelationID
		if id == "" {
			id = m.Subject
		}
		return r.HandleReply(ctx, Reply{SagaID: id, ID: m.ID, CausationID: m.CausationID, Msg: msg})
	})
}
