package domain

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/money"
)

// Event is one fact of an order's history. Events are the protobuf messages of
// eventshop.order.v1 (OrderPlaced, OrderPaymentAuthorized, ...), because that is
// how they are stored; every one of them names its order.
type Event interface {
	proto.Message
	GetOrderId() string
}

// Compile-time checks that every stored event type is an Event.
var (
	_ Event = (*orderv1.OrderPlaced)(nil)
	_ Event = (*orderv1.OrderPaymentAuthorized)(nil)
	_ Event = (*orderv1.OrderInventoryReserved)(nil)
	_ Event = (*orderv1.OrderShipmentCreated)(nil)
	_ Event = (*orderv1.OrderPaymentCaptured)(nil)
	_ Event = (*orderv1.OrderCompleted)(nil)
	_ Event = (*orderv1.OrderCancelling)(nil)
	_ Event = (*orderv1.OrderCancelled)(nil)
)

// eventFactories lists every event type Apply understands, by full protobuf name.
// A stored name must never disappear from here: old histories must keep loading.
var eventFactories = map[string]func() Event{
	typeName(&orderv1.OrderPlaced{}):            func() Event { return &orderv1.OrderPlaced{} },
	typeName(&orderv1.OrderPaymentAuthorized{}): func() Event { return &orderv1.OrderPaymentAuthorized{} },
	typeName(&orderv1.OrderInventoryReserved{}): func() Event { return &orderv1.OrderInventoryReserved{} },
	typeName(&orderv1.OrderShipmentCreated{}):   func() Event { return &orderv1.OrderShipmentCreated{} },
	typeName(&orderv1.OrderPaymentCaptured{}):   func() Event { return &orderv1.OrderPaymentCaptured{} },
	typeName(&orderv1.OrderCompleted{}):         func() Event { return &orderv1.OrderCompleted{} },
	typeName(&orderv1.OrderCancelling{}):        func() Event { return &orderv1.OrderCancelling{} },
	typeName(&orderv1.OrderCancelled{}):         func() Event { return &orderv1.OrderCancelled{} },
}

func typeName(m proto.Message) string { return string(proto.MessageName(m)) }

// EventType returns the event's full protobuf name, e.g. "eventshop.order.v1.OrderPlaced":
// the type an event store records next to the payload and NewEvent accepts back.
func EventType(e Event) string { return typeName(e) }

// NewEvent returns an empty event of the named type, ready for proto.Unmarshal.
// It returns ErrInvalidEvent for a name that is not an order event.
func NewEvent(eventType string) (Event, error) {
	f, ok := eventFactories[eventType]
	if !ok {
		return nil, fmt.Errorf("event type %q: %w", eventType, ErrInvalidEvent)
	}
	return f(), nil
}

// moneyFromProto rejects a missing amount: every money field of an order event is required.
func moneyFromProto(field string, m *commonv1.Money) (Money, error) {
	if m == nil {
		return Money{}, fmt.Errorf("%s is missing: %w", field, ErrInvalidEvent)
	}
	return money.FromProto(m), nil
}

func addressToProto(a Address) *commonv1.Address {
	return &commonv1.Address{
		Name:        a.Name,
		Street:      a.Street,
		City:        a.City,
		PostalCode:  a.PostalCode,
		CountryCode: a.CountryCode,
	}
}

func addressFromProto(a *commonv1.Address) Address {
	return Address{
		Name:        a.GetName(),
		Street:      a.GetStreet(),
		City:        a.GetCity(),
		PostalCode:  a.GetPostalCode(),
		CountryCode: a.GetCountryCode(),
	}
}
