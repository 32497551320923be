package app

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/saga"
)

// SagaName is the definition name of the order fulfilment saga in saga logs. A
// change to its steps needs a new name (see saga.Definition).
const SagaName = "order"

// Indexes of the order saga's steps.
const (
	StepAuthorizePayment = iota
	StepReserveInventory
	StepCreateShipment
	StepCapturePayment
	StepCommitInventory
)

// Command subjects of the participants.
const (
	SubjectAuthorizePayment  = "cmd.payment.authorize"
	SubjectCapturePayment    = "cmd.payment.capture"
	SubjectVoidAuthorization = "cmd.payment.void"
	SubjectRefundPayment     = "cmd.payment.refund"
	SubjectReserveInventory  = "cmd.inventory.reserve"
	SubjectCommitReservation = "cmd.inventory.commit"
	SubjectReleaseInventory  = "cmd.inventory.release"
	SubjectCreateShipment    = "cmd.shipping.create"
	SubjectCancelShipment    = "cmd.shipping.cancel"
)

// ReplySubjects are the participant events the saga waits for; the saga's reply
// consumer filters on exactly these, so events it has no handler for (e.g.
// evt.inventory.expired) are not dead-lettered by it.
var ReplySubjects = []string{
	"evt.payment.authorized", "evt.payment.declined", "evt.payment.captured",
	"evt.payment.capture_failed", "evt.payment.voided", "evt.payment.refunded",
	"evt.payment.refund_failed",
	"evt.inventory.reserved", "evt.inventory.rejected", "evt.inventory.committed", "evt.inventory.commit_failed",
	"evt.inventory.released",
	"evt.shipping.created", "evt.shipping.failed", "evt.shipping.cancelled",
}

// SagaConfig tunes the order saga's timing. Zero values take the defaults.
type SagaConfig struct {
	// StepTimeout bounds one attempt of a step (default 30s).
	StepTimeout time.Duration
	// StepAttempts is how many times a step that does not answer is sent before
	// the saga compensates (default 3).
	StepAttempts int
	// Backoff is the first pause between attempts, doubling up to MaxBackoff
	// (defaults 1s and 1m); compensations use the same pacing and never give up.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// StuckAfter surfaces a saga still unfinished this long after it started
	// (default 30m).
	StuckAfter time.Duration
}

func (c SagaConfig) withDefaults() SagaConfig {
	if c.StepTimeout <= 0 {
		c.StepTimeout = 30 * time.Second
	}
	if c.StepAttempts <= 0 {
		c.StepAttempts = 3
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = 30 * time.Minute
	}
	return c
}

// userCancel is the failure reply a user's cancellation feeds to the step in
// progress. The steps up to and including create_shipment list it in FailedOn, so
// the saga compensates from there; the later ones do not, so once the shipment
// exists the saga ignores it and completes (a user may cancel only before the
// shipment, and the saga's log is where that race is decided, see SagaCancel).
// Because a failed step is not compensated by the engine, the follower sends that
// step's compensation as well (see SagaFollower).
var userCancel = &orderv1.OrderCancelling{}

// OrderSaga returns the order fulfilment saga:
//
//	authorize_payment -> reserve_inventory -> create_shipment -> capture_payment -> commit_inventory
//	void_authorization <- release_inventory <- cancel_shipment  <- refund_payment
//
// The inventory is committed last, once the money is taken, so a cancelled order
// never sells stock; a commit that never answers compensates everything before it,
// and the release that undoes reserve_inventory also gives back units that such a
// commit sold after all (its timed-out attempt may still be carried out).
func OrderSaga(cfg SagaConfig) saga.Definition[*orderv1.OrderSagaData] {
	cfg = cfg.withDefaults()
	retry := saga.Retry{Attempts: cfg.StepAttempts, Backoff: saga.Backoff{Initial: cfg.Backoff, Max: cfg.MaxBackoff}}
	step := func(s saga.Step[*orderv1.OrderSagaData]) saga.Step[*orderv1.OrderSagaData] {
		s.Timeout, s.Retry = cfg.StepTimeout, retry
		switch s.Name {
		case "authorize_payment", "reserve_inventory", "create_shipment":
			s.FailedOn = append(s.FailedOn, userCancel)
		}
		return s
	}
	return saga.Definition[*orderv1.OrderSagaData]{
		Name:       SagaName,
		StuckAfter: cfg.StuckAfter,
		Steps: []saga.Step[*orderv1.OrderSagaData]{
			step(saga.Step[*orderv1.OrderSagaData]{
				Name: "authorize_payment",
				Do: func(d *orderv1.OrderSagaData) (saga.Request, error) {
					return saga.Request{Subject: SubjectAuthorizePayment, Msg: &paymentv1.AuthorizePayment{
						OrderId: d.GetOrderId(), Amount: d.GetTotal(), PaymentToken: d.GetPaymentToken(), UserId: d.GetUserId(),
					}}, nil
				},
				SucceededOn: []proto.Message{&paymentv1.PaymentAuthorized{}},
				FailedOn:    []proto.Message{&paymentv1.PaymentDeclined{}},
				OnSuccess: func(d *orderv1.OrderSagaData, r proto.Message) error {
					id := r.(*paymentv1.PaymentAuthorized).GetPaymentId()
					if id == "" {
						return errors.New("authorization without a payment id")
					}
					d.PaymentId = id
					return nil
				},
				Undo:     undoAuthorize,
				UndoneOn: []proto.Message{&paymentv1.AuthorizationVoided{}},
			}),
			step(saga.Step[*orderv1.OrderSagaData]{
				Name: "reserve_inventory",
				Do: func(d *orderv1.OrderSagaData) (saga.Request, error) {
					return saga.Request{Subject: SubjectReserveInventory, Msg: &inventoryv1.ReserveInventory{
						OrderId: d.GetOrderId(), Items: d.GetItems(),
					}}, nil
				},
				SucceededOn: []proto.Message{&inventoryv1.InventoryReserved{}},
				FailedOn:    []proto.Message{&inventoryv1.InventoryRejected{}},
				Undo:        undoReserve,
				UndoneOn:    []proto.Message{&inventoryv1.InventoryReleased{}},
			}),
			step(saga.Step[*orderv1.OrderSagaData]{
				Name: "create_shipment",
				Do: func(d *orderv1.OrderSagaData) (saga.Request, error) {
					return saga.Request{Subject: SubjectCreateShipment, Msg: &shippingv1.CreateShipment{
						OrderId: d.GetOrderId(), Address: d.GetShippingAddress(), Items: d.GetItems(), UserId: d.GetUserId(),
					}}, nil
				},
				SucceededOn: []proto.Message{&shippingv1.ShipmentCreated{}},
				FailedOn:    []proto.Message{&shippingv1.ShipmentFailed{}},
				OnSuccess: func(d *orderv1.OrderSagaData, r proto.Message) error {
					d.ShipmentId = r.(*shippingv1.ShipmentCreated).GetShipmentId()
					return nil
				},
				Undo:     undoShipment,
				UndoneOn: []proto.Message{&shippingv1.ShipmentCancelled{}},
			}),
			step(saga.Step[*orderv1.OrderSagaData]{
				Name: "capture_payment",
				Do: func(d *orderv1.OrderSagaData) (saga.Request, error) {
					if d.GetPaymentId() == "" {
						return saga.Request{}, errors.New("no payment id to capture")
					}
					return saga.Request{Subject: SubjectCapturePayment, Msg: &paymentv1.CapturePayment{
						OrderId: d.GetOrderId(), PaymentId: d.GetPaymentId(), Amount: d.GetTotal(),
					}}, nil
				},
				SucceededOn: []proto.Message{&paymentv1.PaymentCaptured{}},
				FailedOn:    []proto.Message{&paymentv1.PaymentCaptureFailed{}},
				Undo:        undoCapture,
				UndoneOn:    []proto.Message{&paymentv1.PaymentRefunded{}},
				// A refused refund is retried (with backoff, forever) and surfaces as a
				// stuck saga rather than a silently kept charge.
				UndoFailedOn: []proto.Message{&paymentv1.RefundFailed{}},
			}),
			step(saga.Step[*orderv1.OrderSagaData]{
				Name: "commit_inventory",
				Do: func(d *orderv1.OrderSagaData) (saga.Request, error) {
					return saga.Request{Subject: SubjectCommitReservation, Msg: &inventoryv1.CommitReservation{OrderId: d.GetOrderId()}}, nil
				},
				SucceededOn: []proto.Message{&inventoryv1.ReservationCommitted{}},
				FailedOn:    []proto.Message{&inventoryv1.ReservationCommitFailed{}},
			}),
		},
	}
}

// The compensations, shared by the saga and by the follower that undoes a step a
// user's cancellation interrupted. Each participant keys them by order id and
// copes with "nothing to undo" (leaving a tombstone that refuses a late original).

func undoAuthorize(d *orderv1.OrderSagaData, _ proto.Message) (saga.Request, error) {
	return saga.Request{Subject: SubjectVoidAuthorization, Msg: &paymentv1.VoidAuthorization{OrderId: d.GetOrderId(), PaymentId: d.GetPaymentId()}}, nil
}

func undoReserve(d *orderv1.OrderSagaData, _ proto.Message) (saga.Request, error) {
	return saga.Request{Subject: SubjectReleaseInventory, Msg: &inventoryv1.ReleaseInventory{OrderId: d.GetOrderId()}}, nil
}

func undoShipment(d *orderv1.OrderSagaData, _ proto.Message) (saga.Request, error) {
	return saga.Request{Subject: SubjectCancelShipment, Msg: &shippingv1.CancelShipment{OrderId: d.GetOrderId(), ShipmentId: d.GetShipmentId()}}, nil
}

// undoCapture refunds the capture. When the capture timed out for good (no reply)
// the refund may find nothing captured and answer 0, which is fine: the void of the
// authorization that follows releases the hold.
func undoCapture(d *orderv1.OrderSagaData, _ proto.Message) (saga.Request, error) {
	return saga.Request{Subject: SubjectRefundPayment, Msg: &paymentv1.RefundPayment{
		OrderId: d.GetOrderId(), PaymentId: d.GetPaymentId(), Amount: d.GetTotal(),
	}}, nil
}

// undoFor returns the compensation of step i, nil for a step without one.
func undoFor(i int) func(*orderv1.OrderSagaData, proto.Message) (saga.Request, error) {
	switch i {
	case StepAuthorizePayment:
		return undoAuthorize
	case StepReserveInventory:
		return undoReserve
	case StepCreateShipment:
		return undoShipment
	case StepCapturePayment:
		return undoCapture
	}
	return nil
}

// sagaData is the saga data of a freshly placed order.
func sagaData(ev *orderv1.OrderPlaced) *orderv1.OrderSagaData {
	d := &orderv1.OrderSagaData{
		OrderId:         ev.GetOrderId(),
		Total:           ev.GetTotal(),
		ShippingAddress: ev.GetShippingAddress(),
		PaymentToken:    ev.GetPaymentToken(),
		UserId:          ev.GetUserId(),
	}
	for _, l := range ev.GetLines() {
		d.Items = append(d.Items, &commonv1.LineItem{ProductId: l.GetProductId(), Quantity: l.GetQuantity()})
	}
	return d
}

// failureReason turns a step's failure reply into the order's cancel reason.
func failureReason(step string, reply proto.Message, fallback string) string {
	switch r := reply.(type) {
	case *paymentv1.PaymentDeclined:
		return "payment declined: " + firstNonEmpty(r.GetReason(), r.GetCode())
	case *inventoryv1.InventoryRejected:
		if len(r.GetProductIds()) > 0 {
			return "out of stock: " + strings.Join(r.GetProductIds(), ", ")
		}
		return "inventory rejected: " + r.GetReason()
	case *shippingv1.ShipmentFailed:
		return "shipment failed: " + r.GetReason()
	case *paymentv1.PaymentCaptureFailed:
		return "payment capture failed: " + r.GetReason()
	case *inventoryv1.ReservationCommitFailed:
		return "stock could not be committed: " + r.GetReason()
	}
	if fallback != "" {
		return fallback
	}
	return fmt.Sprintf("step %s failed", step)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
