package shipping_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/resilience"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/shipping"
	"github.com/eventshop/eventshop/services/shipping/app"
	"github.com/eventshop/eventshop/services/shipping/carrier"
)

const (
	order1 = "0193a5a0-0000-7000-8000-000000000001"
	order2 = "0193a5a0-0000-7000-8000-000000000002"
	order3 = "0193a5a0-0000-7000-8000-000000000003"
)

// fakeCatalog is a real gRPC catalog on loopback serving a fixed product table.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	down  atomic.Bool
	calls atomic.Int64
}

// The shipping service remembers weights (catalogclient.WeightTTL), so the catalog
// outages below use "lamp", a product no earlier step asked for.
var weights = map[string]int32{"espresso-machine": 12500, "mug": 350, "gift-card": 0, "lamp": 2300}

func (c *fakeCatalog) GetProducts(_ context.Context, req *catalogv1.GetProductsRequest) (*catalogv1.GetProductsResponse, error) {
	c.calls.Add(1)
	if c.down.Load() {
		return nil, status.Error(codes.Unavailable, "catalog down")
	}
	var out []*catalogv1.Product
	for _, id := range req.GetIds() {
		if w, ok := weights[id]; ok {
			out = append(out, &catalogv1.Product{Id: id, WeightGrams: w})
		}
	}
	return &catalogv1.GetProductsResponse{Products: out}, nil
}

type harness struct {
	svc     *shipping.Service
	catalog *fakeCatalog
	carrier *carrier.Simulated
	client  shippingv1.ShippingServiceClient
	js      jetstream.JetStream
	bus     *messaging.Bus
	replies *nats.Subscription
}

func start(t *testing.T, db *sqldb.DB, hook func(context.Context, *shippingv1.CreateShipment) error) *harness {
	t.Helper()
	h := &harness{catalog: &fakeCatalog{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(gs, h.catalog)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	_, nc := natstest.Connect(t)
	h.carrier = carrier.NewSimulated(carrier.Faults{Hook: hook})
	h.svc, err = shipping.New(context.Background(), shipping.Config{
		Settings: participant.Settings{
			GRPCAddr: "127.0.0.1:0",
			Backoff:  []time.Duration{50 * time.Millisecond},
		},
		CatalogAddr: lis.Addr().String(),
	}, shipping.Deps{NATS: nc, DB: db, Carrier: h.carrier})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	cc, err := resilience.Dial(h.svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	h.client = shippingv1.NewShippingServiceClient(cc)
	h.js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h.bus = messaging.New(h.js, "order")
	if h.replies, err = nc.SubscribeSync("evt.shipping.>"); err != nil {
		t.Fatal(err)
	}
	return h
}

// send publishes a command whose ce-id is id. dedup is its Nats-Msg-Id: a resend of
// the same command after the stream's dedup window is a different dedup id.
func (h *harness) send(t *testing.T, subject, id, dedup string, msg proto.Message) {
	t.Helper()
	data, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(messaging.HeaderSpecVersion, messaging.SpecVersion)
	m.Header.Set(messaging.HeaderID, id)
	m.Header.Set(messaging.HeaderType, string(msg.ProtoReflect().Descriptor().FullName()))
	m.Header.Set(messaging.HeaderSource, "/eventshop/order")
	m.Header.Set(jetstream.MsgIDHeader, dedup)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("send %s: %v", subject, err)
	}
}

// reply waits for the next reply event caused by command id.
func (h *harness) reply(t *testing.T, commandID string) *nats.Msg {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		m, err := h.replies.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		if m.Header.Get(messaging.HeaderCausationID) == commandID {
			return m
		}
	}
	t.Fatalf("no reply to %s", commandID)
	return nil
}

func decode[T proto.Message](t *testing.T, m *nats.Msg, into T) T {
	t.Helper()
	if got, want := m.Header.Get(messaging.HeaderType), string(into.ProtoReflect().Descriptor().FullName()); got != want {
		t.Fatalf("reply type %s on %s, want %s", got, m.Subject, want)
	}
	if err := proto.Unmarshal(m.Data, into); err != nil {
		t.Fatal(err)
	}
	return into
}

var addrUS = &commonv1.Address{Name: "Ada", Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US"}

func create(orderID string, addr *commonv1.Address) *shippingv1.CreateShipment {
	return &shippingv1.CreateShipment{OrderId: orderID, Address: addr, Items: []*commonv1.LineItem{
		{ProductId: "espresso-machine", Quantity: 1}, {ProductId: "mug", Quantity: 2},
	}}
}

func TestShipping(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		t.Run("create, get, duplicate, cancel", func(t *testing.T) { testLifecycle(t, start(t, db, nil)) })
	})
}

func testLifecycle(t *testing.T, h *harness) {
	ctx := context.Background()
	h.send(t, app.SubjectCreate, "cmd-create-1", "cmd-create-1", create(order1, addrUS))
	first := h.reply(t, "cmd-create-1")
	created := decode(t, first, &shippingv1.ShipmentCreated{})
	if first.Subject != app.SubjectCreated || created.GetOrderId() != order1 || created.GetTrackingId() == "" || created.GetShipmentId() == "" {
		t.Fatalf("reply %s %v", first.Subject, created)
	}
	if got := first.Header.Get(messaging.HeaderSubject); got != order1 {
		t.Errorf("ce-subject = %q, want the order id", got)
	}

	got, err := h.client.GetShipment(ctx, &shippingv1.GetShipmentRequest{OrderId: order1})
	if err != nil {
		t.Fatalf("GetShipment: %v", err)
	}
	s := got.GetShipment()
	// 1 + 2 units, 13.2 kg -> 14 started kg, domestic.
	if s.GetTrackingId() != created.GetTrackingId() || s.GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_CREATED ||
		s.GetCost().GetMinorUnits() != 499+3*50+14*100 || s.GetAddress().GetCity() != "Springfield" {
		t.Fatalf("shipment = %v", s)
	}

	// The same command again, past the stream's dedup window: same reply, no new parcel.
	h.send(t, app.SubjectCreate, "cmd-create-1", "cmd-create-1-resend", create(order1, addrUS))
	again := h.reply(t, "cmd-create-1")
	if again.Header.Get(messaging.HeaderID) != first.Header.Get(messaging.HeaderID) || !proto.Equal(decode(t, again, &shippingv1.ShipmentCreated{}), created) {
		t.Fatalf("duplicate reply %s %v differs from the first %s %v", again.Header.Get(messaging.HeaderID), again.Data, first.Header.Get(messaging.HeaderID), created)
	}
	// A new create for the same order (a saga retry with a new id) keeps the parcel.
	h.send(t, app.SubjectCreate, "cmd-create-2", "cmd-create-2", create(order1, addrUS))
	if c := decode(t, h.reply(t, "cmd-create-2"), &shippingv1.ShipmentCreated{}); c.GetTrackingId() != created.GetTrackingId() {
		t.Fatalf("second create booked another parcel: %v", c)
	}

	h.send(t, app.SubjectCancel, "cmd-cancel-1", "cmd-cancel-1", &shippingv1.CancelShipment{OrderId: order1, ShipmentId: created.GetShipmentId()})
	cancelled := decode(t, h.reply(t, "cmd-cancel-1"), &shippingv1.ShipmentCancelled{})
	if cancelled.GetShipmentId() != created.GetShipmentId() {
		t.Fatalf("cancelled = %v", cancelled)
	}
	got, err = h.client.GetShipment(ctx, &shippingv1.GetShipmentRequest{OrderId: order1})
	if err != nil || got.GetShipment().GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_CANCELLED {
		t.Fatalf("after cancel: %v, %v", got, err)
	}

	// Cancelling an order with nothing booked still replies, and a late create fails.
	h.send(t, app.SubjectCancel, "cmd-cancel-2", "cmd-cancel-2", &shippingv1.CancelShipment{OrderId: order2})
	if c := decode(t, h.reply(t, "cmd-cancel-2"), &shippingv1.ShipmentCancelled{}); c.GetOrderId() != order2 {
		t.Fatalf("cancel with nothing booked = %v", c)
	}
	h.send(t, app.SubjectCreate, "cmd-create-3", "cmd-create-3", create(order2, addrUS))
	if f := decode(t, h.reply(t, "cmd-create-3"), &shippingv1.ShipmentFailed{}); f.GetOrderId() != order2 {
		t.Fatalf("late create = %v", f)
	}
	if _, err := h.client.GetShipment(ctx, &shippingv1.GetShipmentRequest{OrderId: order2}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetShipment of a compensated order: %v, want NotFound", err)
	}

	// The EVENTS stream holds one event per command id, however often it was replied.
	str, err := h.js.Stream(ctx, messaging.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	// Core subscribers can see a reply a moment before the stream has stored it, so
	// wait (bounded) for the count to settle before comparing.
	var info *jetstream.StreamInfo
	for deadline := time.Now().Add(5 * time.Second); ; {
		if info, err = str.Info(ctx); err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if info.State.Msgs != 5 {
		t.Fatalf("EVENTS holds %d messages, want 5 (one per command id)", info.State.Msgs)
	}
}

func TestCreateShipmentFailures(t *testing.T) {
	h := start(t, sqltest.Open(t, sqldb.SQLite), func(_ context.Context, cmd *shippingv1.CreateShipment) error {
		if cmd.GetOrderId() == order3 {
			return errors.New("carrier strike")
		}
		return nil
	})
	ctx := context.Background()

	h.send(t, app.SubjectCreate, "c-hook", "c-hook", create(order3, addrUS))
	if f := decode(t, h.reply(t, "c-hook"), &shippingv1.ShipmentFailed{}); f.GetReason() != "carrier strike" {
		t.Fatalf("hooked failure = %v", f)
	}
	if _, err := h.client.GetShipment(ctx, &shippingv1.GetShipmentRequest{OrderId: order3}); status.Code(err) != codes.NotFound {
		t.Fatalf("failed create left a shipment: %v", err)
	}

	h.send(t, app.SubjectCreate, "c-aq", "c-aq", create(order1, &commonv1.Address{Name: "P", Street: "S", City: "C", PostalCode: "1", CountryCode: "AQ"}))
	decode(t, h.reply(t, "c-aq"), &shippingv1.ShipmentFailed{})

	h.carrier.SetFaults(carrier.Faults{FailRate: 1})
	h.send(t, app.SubjectCreate, "c-rate", "c-rate", create(order2, addrUS))
	decode(t, h.reply(t, "c-rate"), &shippingv1.ShipmentFailed{})
	h.carrier.SetFaults(carrier.Faults{})

	// Catalog down: the command is retried until the catalog is back.
	h.catalog.down.Store(true)
	before := h.catalog.calls.Load()
	lamp := &shippingv1.CreateShipment{OrderId: order2, Address: addrUS, Items: []*commonv1.LineItem{{ProductId: "lamp", Quantity: 1}}}
	h.send(t, app.SubjectCreate, "c-down", "c-down", lamp)
	deadline := time.Now().Add(10 * time.Second)
	for h.catalog.calls.Load() < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("catalog asked %d times in 10 s while down, want a retry", h.catalog.calls.Load()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.catalog.down.Store(false)
	decode(t, h.reply(t, "c-down"), &shippingv1.ShipmentCreated{})
}

func TestGetQuote(t *testing.T) {
	h := start(t, sqltest.Open(t, sqldb.SQLite), nil)
	ctx := context.Background()
	req := &shippingv1.GetQuoteRequest{Address: addrUS, Items: []*commonv1.LineItem{{ProductId: "mug", Quantity: 3}, {ProductId: "gift-card", Quantity: 1}}}
	first, err := h.client.GetQuote(ctx, req)
	if err != nil {
		t.Fatalf("GetQuote: %v", err)
	}
	// 4 units, 1050 g -> 2 started kg.
	if first.GetCost().GetMinorUnits() != 499+4*50+2*100 || first.GetCost().GetCurrencyCode() != "USD" || first.GetEstimatedDays() != 3 {
		t.Fatalf("quote = %v", first)
	}
	for range 5 {
		again, err := h.client.GetQuote(ctx, req)
		if err != nil || !proto.Equal(again, first) {
			t.Fatalf("quote changed: %v, %v; first %v", again, err, first)
		}
	}

	bad := proto.CloneOf(req)
	bad.Address.CountryCode = "AQ"
	_, err = h.client.GetQuote(ctx, bad)
	if status.Code(err) != codes.InvalidArgument || !namesField(err, "address.country_code") {
		t.Fatalf("unsupported country: %v, want InvalidArgument naming address.country_code", err)
	}

	unknown := proto.CloneOf(req)
	unknown.Items = append(unknown.Items, &commonv1.LineItem{ProductId: "unicorn", Quantity: 1})
	if _, err := h.client.GetQuote(ctx, unknown); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown product: %v, want InvalidArgument", err)
	}

	// Weights once read are remembered: the catalog is not asked again, and a
	// quote of known products still works while it is down.
	calls := h.catalog.calls.Load()
	if again, err := h.client.GetQuote(ctx, req); err != nil || !proto.Equal(again, first) || h.catalog.calls.Load() != calls {
		t.Fatalf("quote of remembered weights: %v, %v, catalog asked %d more times", again, err, h.catalog.calls.Load()-calls)
	}
	h.catalog.down.Store(true)
	if again, err := h.client.GetQuote(ctx, req); err != nil || !proto.Equal(again, first) {
		t.Fatalf("quote of remembered weights with the catalog down: %v, %v", again, err)
	}
	lamp := proto.CloneOf(req)
	lamp.Items = append(lamp.Items, &commonv1.LineItem{ProductId: "lamp", Quantity: 1})
	if _, err := h.client.GetQuote(ctx, lamp); status.Code(err) != codes.Unavailable {
		t.Fatalf("catalog down, weight not known: %v, want Unavailable", err)
	}
	// An unsupported destination is refused without asking the catalog.
	if _, err := h.client.GetQuote(ctx, bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unsupported country with catalog down: %v, want InvalidArgument", err)
	}
}

func namesField(err error, field string) bool {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}
