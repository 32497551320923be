package messaging

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Handler processes one message type (ce-type) for a Consumer. Build it with Handle.
type Handler interface {
	// MessageType is the ce-type the handler accepts: a protobuf full name.
	MessageType() string
	handle(ctx context.Context, m Message, data []byte) error
}

// HandlerFunc processes a decoded message. Returning nil acknowledges the message;
// an error redelivers it with backoff, or dead-letters it when wrapped by Permanent or
// after the last delivery. The same message id may arrive more than once (redelivery
// after a crash or a lost ack): a handler with side effects uses an Inbox.
type HandlerFunc[T proto.Message] func(ctx context.Context, m Message, msg T) error

type typedHandler[T proto.Message] struct {
	typ string
	fn  HandlerFunc[T]
}

var _ Handler = typedHandler[proto.Message]{}

// Handle returns a Handler for messages of type T, e.g.
// Handle(func(ctx context.Context, m Message, cmd *paymentv1.AuthorizePayment) error {...}).
// T must be a generated message pointer type; its full name is the ce-type it accepts.
func Handle[T proto.Message](fn HandlerFunc[T]) Handler {
	if fn == nil {
		panic("messaging: nil handler func")
	}
	var zero T
	return typedHandler[T]{typ: string(zero.ProtoReflect().Descriptor().FullName()), fn: fn}
}

func (h typedHandler[T]) MessageType() string { return h.typ }

func (h typedHandler[T]) handle(ctx context.Context, m Message, data []byte) error {
	var zero T
	msg := zero.ProtoReflect().Type().New().Interface().(T)
	if err := proto.Unmarshal(data, msg); err != nil {
		// A payload that does not decode never will: no point redelivering it.
		return Permanent(fmt.Errorf("decode %s: %w", h.typ, err))
	}
	return h.fn(ctx, m, msg)
}
