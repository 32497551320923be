package participant

import (
	"context"
	"database/sql"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/messaging"
)

// Decision is the part of a command's handling that runs inside the batch's SQL
// transaction, seen through X (the participant's own view of a transaction): it
// performs the effect and returns the reply event. Returning an error rolls the batch
// back (see Runtime); a refusal the sender must hear of is a reply, not an error.
type Decision[X any] func(ctx context.Context, tx X) (messaging.Reply, error)

// HandlerFunc prepares one command outside any transaction and returns its Decision.
// Calls to the outside world (a card network, another service) belong here, so no
// transaction is held open while they run; they must be idempotent by m.ID, because a
// batch that fails is prepared again. An error redelivers the command with backoff, or
// dead-letters it when wrapped by messaging.Permanent or on the last attempt.
type HandlerFunc[T Command, X any] func(ctx context.Context, m messaging.Message, cmd T) (Decision[X], error)

// Command is a command of the order saga to a participant: it names the order it is
// about, and its reply carries that order id as ce-subject.
type Command interface {
	proto.Message
	GetOrderId() string
}

// Handler handles one command type (ce-type) for a Runtime. Build it with Handle.
type Handler interface {
	// MessageType is the ce-type the handler accepts: a protobuf full name.
	MessageType() string
	decode(data []byte) (Command, error)
	prepare(ctx context.Context, m messaging.Message, cmd Command) (Decide, error)
}

// Decide is a Decision over the raw SQL transaction, as the Runtime runs it.
type Decide func(ctx context.Context, tx *sql.Tx) (messaging.Reply, error)

type handler[T Command, X any] struct {
	typ  string
	view func(*sql.Tx) X
	fn   HandlerFunc[T, X]
}

// Handle returns the Handler of commands of type T: view turns the batch transaction
// into the participant's transaction type X (its store's view of one), fn prepares
// each command. It panics on a nil view or fn: that is a wiring mistake.
func Handle[T Command, X any](view func(*sql.Tx) X, fn HandlerFunc[T, X]) Handler {
	if view == nil || fn == nil {
		panic("participant: Handle needs a view and a func")
	}
	var zero T
	return handler[T, X]{typ: string(zero.ProtoReflect().Descriptor().FullName()), view: view, fn: fn}
}

func (h handler[T, X]) MessageType() string { return h.typ }

func (h handler[T, X]) decode(data []byte) (Command, error) {
	var zero T
	cmd := zero.ProtoReflect().Type().New().Interface().(T)
	if err := proto.Unmarshal(data, cmd); err != nil {
		// A payload that does not decode never will: no point redelivering it.
		return nil, messaging.Permanent(fmt.Errorf("decode %s: %w", h.typ, err))
	}
	return cmd, nil
}

func (h handler[T, X]) prepare(ctx context.Context, m messaging.Message, cmd Command) (Decide, error) {
	d, err := h.fn(ctx, m, cmd.(T))
	if err != nil || d == nil {
		return nil, err
	}
	return Bind(h.view, d), nil
}

// Bind turns a Decision over the view X into one over the raw transaction, e.g. to
// run it alone with Runtime.Execute.
func Bind[X any](view func(*sql.Tx) X, d Decision[X]) Decide {
	return func(ctx context.Context, tx *sql.Tx) (messaging.Reply, error) { return d(ctx, view(tx)) }
}
