package gateway

import (
	"testing"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
)

// writeBodies are the request messages of the API's write routes, whose JSON bodies
// come from anyone.
var writeBodies = []func() proto.Message{
	func() proto.Message { return &cartv1.AddItemRequest{} },
	func() proto.Message { return &cartv1.UpdateItemQuantityRequest{} },
	func() proto.Message { return &orderv1.PlaceOrderRequest{} },
	func() proto.Message { return &orderv1.CancelOrderRequest{} },
	func() proto.Message { return &shippingv1.GetQuoteRequest{} },
	func() proto.Message { return &catalogv1.GetProductsRequest{} },
	func() proto.Message { return &inventoryv1.SetStockRequest{} },
}

// A write route's body is decoded by the API's own JSON marshaler and then checked by
// the services' protovalidate rules: neither panics on any bytes, and a body that
// passes both survives a round trip through the wire format unchanged, so what the
// gateway accepted is what the service receives.
func FuzzAPIWriteBodies(f *testing.F) {
	f.Add(uint8(0), []byte(`{"productId":"french-press","quantity":2}`))
	f.Add(uint8(2), []byte(`{"idempotencyKey":"k-123456","items":[{"productId":"mug","quantity":1}],"shippingAddress":{"name":"A","street":"1 Main St","city":"X","postalCode":"1","countryCode":"US"},"paymentToken":"tok_visa"}`))
	f.Add(uint8(4), []byte(`{"items":[{"productId":"mug","quantity":-1}],"address":{}}`))
	f.Add(uint8(6), []byte(`{"productId":"\u0000","available":"9223372036854775807"}`))
	f.Add(uint8(5), []byte(`{"ids":["a","a","\ud800"]}`))
	m := &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	v, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		msg := writeBodies[int(route)%len(writeBodies)]()
		if err := m.Unmarshal(body, msg); err != nil {
			return
		}
		if err := v.Validate(msg); err != nil {
			return
		}
		wire, err := proto.Marshal(msg)
		if err != nil {
			t.Fatalf("accepted %s does not marshal: %v", body, err)
		}
		again := msg.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(wire, again); err != nil || !proto.Equal(msg, again) {
			t.Fatalf("accepted %s changes on the wire: %v", body, err)
		}
	})
}
