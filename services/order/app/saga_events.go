package app

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/services/order/domain"
)

// The order saga keeps its log in the order's own stream (saga.WithCategory), so each
// fact of an order's fulfilment is written once, by the saga. The order aggregate,
// its read model and its history read the saga's transitions as the order events
// they mean:
//
//	StepSucceeded(PaymentAuthorized)   OrderPaymentAuthorized
//	StepSucceeded(InventoryReserved)   OrderInventoryReserved
//	StepSucceeded(ShipmentCreated)     OrderShipmentCreated
//	StepSucceeded(PaymentCaptured)     OrderPaymentCaptured
//	SagaCompleted                      OrderCompleted
//	StepFailed, final StepTimedOut     OrderCancelling (the user's, when their
//	                                   cancellation failed the step; else the reason)
//	SagaCancelled                      OrderCancelled
//
// Every other saga event (a step started, a retry, a compensation) means nothing to
// the order and only counts as a version of its stream.

// orderEventOf returns the order event that the saga event se means, or nil when it
// means none. It returns domain.ErrInvalidEvent (wrapped) for a payload or a stored
// reply that does not decode.
func orderEventOf(se eventstore.Event) (domain.Event, error) {
	_, orderID, err := eventstore.ParseStream(se.Stream)
	if err != nil {
		return nil, err
	}
	bad := func(err error) error {
		return fmt.Errorf("decode %s v%d (%s): %w: %w", se.Stream, se.Version, se.Type, domain.ErrInvalidEvent, err)
	}
	ev, err := saga.DecodeEvent(se)
	if err != nil {
		return nil, bad(err)
	}
	money := func(m *commonv1.Money) *commonv1.Money { return proto.CloneOf(m) }
	switch ev := ev.(type) {
	case *sagav1.StepSucceeded:
		reply, err := decodeReply(ev.GetReplyType(), ev.GetReply())
		if err != nil {
			return nil, bad(err)
		}
		switch r := reply.(type) {
		case *paymentv1.PaymentAuthorized:
			return &orderv1.OrderPaymentAuthorized{OrderId: orderID, PaymentId: r.GetPaymentId(), Amount: money(r.GetAmount())}, nil
		case *inventoryv1.InventoryReserved:
			return &orderv1.OrderInventoryReserved{OrderId: orderID, ReservationId: r.GetReservationId()}, nil
		case *shippingv1.ShipmentCreated:
			return &orderv1.OrderShipmentCreated{OrderId: orderID, ShipmentId: r.GetShipmentId(), TrackingId: r.GetTrackingId()}, nil
		case *paymentv1.PaymentCaptured:
			return &orderv1.OrderPaymentCaptured{OrderId: orderID, PaymentId: r.GetPaymentId(), Amount: money(r.GetAmount())}, nil
		}
		return nil, nil // the commit: SagaCompleted follows in the same append
	case *sagav1.StepFailed:
		reply, _ := decodeReply(ev.GetReplyType(), ev.GetReply())
		if c, ok := reply.(*orderv1.OrderCancelling); ok {
			return &orderv1.OrderCancelling{OrderId: orderID, Reason: c.GetReason(), RequestedByUser: true}, nil
		}
		return &orderv1.OrderCancelling{OrderId: orderID, Reason: failureReason(ev.GetStepName(), reply, ev.GetReason())}, nil
	case *sagav1.StepTimedOut:
		if ev.GetRetryTime() != nil {
			return nil, nil
		}
		return &orderv1.OrderCancelling{OrderId: orderID, Reason: fmt.Sprintf("step %s did not answer", ev.GetStepName())}, nil
	case *sagav1.SagaCancelled:
		return &orderv1.OrderCancelled{OrderId: orderID}, nil // the reason of the failure stands
	case *sagav1.SagaCompleted:
		return &orderv1.OrderCompleted{OrderId: orderID}, nil
	}
	return nil, nil
}

// fold applies e to o, or counts it when it is nil: a step of the order's saga that
// changes nothing the order shows (Codec.Decode) still moves its version.
func fold(o *domain.Order, e domain.Event) error {
	if e == nil {
		o.Pass()
		return nil
	}
	return o.Apply(e)
}
