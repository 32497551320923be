package app_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/services/order/app"
)

// fuzzTypes are the event types an order stream holds: the order's own and its
// saga's (whose payloads embed a reply by type name).
var fuzzTypes = []proto.Message{
	&orderv1.OrderPlaced{}, &orderv1.OrderPaymentAuthorized{}, &orderv1.OrderInventoryReserved{},
	&orderv1.OrderShipmentCreated{}, &orderv1.OrderPaymentCaptured{}, &orderv1.OrderCompleted{},
	&orderv1.OrderCancelling{}, &orderv1.OrderCancelled{},
	&sagav1.SagaStarted{}, &sagav1.StepStarted{}, &sagav1.StepSucceeded{}, &sagav1.StepFailed{},
	&sagav1.StepTimedOut{}, &sagav1.CompensationStarted{}, &sagav1.CompensationSucceeded{},
	&sagav1.CompensationFailed{}, &sagav1.SagaCompleted{}, &sagav1.SagaCancelled{},
}

// A stored event's payload and schema version are bytes from the store, which an
// older or newer build, or a bad actor with store access, may have written. Decoding
// them (upcasters included) never panics, and what decodes marshals again.
func FuzzOrderEventCodec(f *testing.F) {
	placed, _ := proto.Marshal(&orderv1.OrderPlaced{OrderId: "o", UserId: "alice"})
	step, _ := proto.Marshal(&sagav1.StepSucceeded{Step: 0, StepName: "authorize_payment",
		ReplyType: string(proto.MessageName(&paymentv1.PaymentAuthorized{})), Reply: []byte{10, 1, 'x'}})
	f.Add(uint8(0), placed, "1")
	f.Add(uint8(10), step, "")
	f.Add(uint8(10), step, "2")
	f.Add(uint8(3), []byte{0xff, 0xff}, "0")
	codec := app.NewCodec()
	// An upcaster, as a build with an old schema would have one.
	codec.Register(string(proto.MessageName(&orderv1.OrderCancelled{})), 1, func(b []byte) ([]byte, error) {
		if len(b) > 0 && b[0] == 0 {
			return nil, errors.New("cannot lift")
		}
		return b, nil
	})
	f.Fuzz(func(t *testing.T, typ uint8, data []byte, schema string) {
		name := string(proto.MessageName(fuzzTypes[int(typ)%len(fuzzTypes)]))
		ev := eventstore.Event{Stream: "order-o", Version: 1, Type: name, Data: data}
		if schema != "" {
			ev.Metadata = map[string]string{app.MetaSchemaVersion: schema}
		}
		e, err := codec.Decode(ev)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("decode %s: an error that says nothing", name)
			}
			return
		}
		if e != nil {
			if _, err := proto.Marshal(e); err != nil {
				t.Fatalf("decoded %s does not marshal again: %v", name, err)
			}
		}
	})
}
