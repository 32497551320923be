package main

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/services/cart"
	"github.com/eventshop/eventshop/services/catalog"
	"github.com/eventshop/eventshop/services/inventory"
	"github.com/eventshop/eventshop/services/order"
	"github.com/eventshop/eventshop/services/payment"
	"github.com/eventshop/eventshop/services/shipping"
)

var accessTables = []struct {
	name   string
	desc   grpc.ServiceDesc
	access auth.Access
}{
	{"catalog", catalogv1.CatalogService_ServiceDesc, catalog.Access},
	{"cart", cartv1.CartService_ServiceDesc, cart.Access},
	{"order", orderv1.OrderService_ServiceDesc, order.Access},
	{"payment", paymentv1.PaymentService_ServiceDesc, payment.Access},
	{"inventory", inventoryv1.InventoryService_ServiceDesc, inventory.Access},
	{"shipping", shippingv1.ShippingService_ServiceDesc, shipping.Access},
}

// methods lists a service's full method names and whether each is server-streaming.
func methods(d grpc.ServiceDesc) map[string]bool {
	out := map[string]bool{}
	for _, m := range d.Methods {
		out["/"+d.ServiceName+"/"+m.MethodName] = false
	}
	for _, s := range d.Streams {
		out["/"+d.ServiceName+"/"+s.StreamName] = true
	}
	return out
}

// Every method of every service has a rule in its service's access table, and the
// table names no method the service does not have.
func TestEveryMethodHasAnAccessRule(t *testing.T) {
	for _, svc := range accessTables {
		ms := methods(svc.desc)
		for m := range ms {
			if _, ok := svc.access[m]; !ok {
				t.Errorf("%s: %s has no access rule", svc.name, m)
			}
		}
		for m := range svc.access {
			if _, ok := ms[m]; !ok {
				t.Errorf("%s: access rule for %s, which the service does not serve", svc.name, m)
			}
		}
	}
}

// As an attacker holding a valid token without the scopes (only "openid") would:
// every method that is not public answers PermissionDenied at its own service's port,
// whatever the gateway does, and nothing changes (the auditor finds every invariant
// kept, alice's orders are the same).
func TestScopelessTokenIsRefusedAtEveryPort(t *testing.T) {
	s := startSagaShop(t)
	id := s.place("tok_visa", 1)
	s.awaitFinal(id)
	before, err := s.orders.ListOrders(s.ctx, &orderv1.ListOrdersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.Issuer().Login(context.Background(), "alice", "alice-password", "openid")
	if err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	for _, svc := range accessTables {
		cc := dial(t, s.Addr(svc.name))
		for m, streaming := range methods(svc.desc) {
			if svc.access[m].Public {
				continue
			}
			var err error
			if streaming {
				var st grpc.ClientStream
				st, err = cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, m)
				if err == nil {
					if err = st.SendMsg(&emptypb.Empty{}); err == nil {
						err = st.RecvMsg(&emptypb.Empty{})
					}
				}
			} else {
				err = cc.Invoke(ctx, m, &emptypb.Empty{}, &emptypb.Empty{})
			}
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "missing") {
				t.Errorf("%s with a scope-less token: %v, want PermissionDenied for a missing scope or role", m, err)
			}
		}
	}
	after, err := s.orders.ListOrders(s.ctx, &orderv1.ListOrdersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.GetOrders()) != len(before.GetOrders()) || after.GetOrders()[0].GetVersion() != before.GetOrders()[0].GetVersion() {
		t.Errorf("alice's orders changed: %d -> %d", len(before.GetOrders()), len(after.GetOrders()))
	}
	s.audit()
}

// As bob would try it, with his own valid token: alice's payment (by order and by
// id) and shipment answer NotFound at the payment and shipping ports, exactly as an
// order that does not exist; alice and an admin read them; nothing changes.
func TestNobodyReadsAnotherUsersPaymentOrShipment(t *testing.T) {
	s := startSagaShop(t)
	id := s.place("tok_visa", 1)
	s.awaitFinal(id)
	login := func(user string) context.Context {
		tok, err := s.Issuer().Login(context.Background(), user, user+"-password")
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	alice, bob, admin := s.ctx, login("bob"), login("admin")
	payments := paymentv1.NewPaymentServiceClient(dial(t, s.Addr("payment")))
	shipments := shippingv1.NewShippingServiceClient(dial(t, s.Addr("shipping")))

	p, err := payments.GetPaymentByOrder(alice, &paymentv1.GetPaymentByOrderRequest{OrderId: id})
	if err != nil {
		t.Fatalf("alice's own payment: %v", err)
	}
	if _, err := shipments.GetShipment(alice, &shippingv1.GetShipmentRequest{OrderId: id}); err != nil {
		t.Fatalf("alice's own shipment: %v", err)
	}
	for _, who := range []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{{"bob", bob, codes.NotFound}, {"admin", admin, codes.OK}} {
		_, err := payments.GetPaymentByOrder(who.ctx, &paymentv1.GetPaymentByOrderRequest{OrderId: id})
		if status.Code(err) != who.want {
			t.Errorf("%s: GetPaymentByOrder(alice's order): %v, want %v", who.name, err, who.want)
		}
		_, err = payments.GetPayment(who.ctx, &paymentv1.GetPaymentRequest{PaymentId: p.GetPayment().GetId()})
		if status.Code(err) != who.want {
			t.Errorf("%s: GetPayment(alice's payment): %v, want %v", who.name, err, who.want)
		}
		_, err = shipments.GetShipment(who.ctx, &shippingv1.GetShipmentRequest{OrderId: id})
		if status.Code(err) != who.want {
			t.Errorf("%s: GetShipment(alice's order): %v, want %v", who.name, err, who.want)
		}
	}
	// Bob learns nothing more than for an order that does not exist.
	_, missing := payments.GetPaymentByOrder(bob, &paymentv1.GetPaymentByOrderRequest{OrderId: "00000000-0000-4000-8000-000000000000"})
	_, foreign := payments.GetPaymentByOrder(bob, &paymentv1.GetPaymentByOrderRequest{OrderId: id})
	if status.Code(missing) != status.Code(foreign) {
		t.Errorf("a missing order answers %v, alice's %v: bob can tell them apart", missing, foreign)
	}
	if after := s.payment(id); after.GetStatus() != p.GetPayment().GetStatus() || after.GetCaptured().GetMinorUnits() != p.GetPayment().GetCaptured().GetMinorUnits() {
		t.Errorf("payment changed: %v -> %v", p.GetPayment(), after)
	}
	s.audit()
}
