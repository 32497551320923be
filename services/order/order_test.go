package order_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/catalog"
	"github.com/eventshop/eventshop/services/order"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
	"github.com/eventshop/eventshop/services/shipping"
)

// env is a running order service with its real neighbours: embedded JetStream, the
// catalog service over loopback gRPC and the dev OIDC issuer.
type env struct {
	orders  orderv1.OrderServiceClient
	catalog catalogv1.CatalogServiceClient
	// shipping is nil unless started with the shipping service.
	shipping shippingv1.ShippingServiceClient
	store    eventstore.Store
	repo     *app.Repository
	tokens   map[string]string
}

// startOptions vary start: tweak edits the order service's config; shipping runs
// the real shipping service and points the order service at it.
type startOptions struct {
	tweak    func(*order.Config)
	shipping bool
}

func start(t *testing.T) *env { return startWith(t, startOptions{}) }

func startWith(t *testing.T, opts startOptions) *env {
	t.Helper()
	var shippingAddr string
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.NewJetStream(js)

	iss, err := devissuer.Start(ctx, devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience()})
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, u := range []string{"alice", "bob", "admin"} {
		if tokens[u], err = iss.Login(ctx, u, u+"-password"); err != nil {
			t.Fatal(err)
		}
	}

	cat, err := catalog.New(context.Background(), catalog.Config{GRPCAddr: "127.0.0.1:0"}, catalog.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = cat.Run(ctx) })

	if opts.shipping {
		shipSvc, err := shipping.New(context.Background(), shipping.Config{Settings: participant.Settings{GRPCAddr: "127.0.0.1:0"}, CatalogAddr: cat.Addr().String()},
			shipping.Deps{NATS: nc, DB: sqltest.Open(t, sqldb.SQLite)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = shipSvc.Run(ctx) })
		shippingAddr = shipSvc.Addr().String()
	}

	cfg := order.Config{
		GRPCAddr:          "127.0.0.1:0",
		CatalogAddr:       cat.Addr().String(),
		ShippingAddr:      shippingAddr,
		FlatShippingMinor: 499,
		SnapshotEvery:     3,
		ReadDSN:           filepath.Join(t.TempDir(), "orders.db"),
	}
	if opts.tweak != nil {
		opts.tweak(&cfg)
	}
	svc, err := order.New(context.Background(), cfg, order.Deps{Verifier: verifier, NATS: nc, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = svc.Run(ctx) })

	var shippingClient shippingv1.ShippingServiceClient
	if shippingAddr != "" {
		shippingClient = shippingv1.NewShippingServiceClient(dial(t, shippingAddr))
	}
	return &env{
		shipping: shippingClient,
		orders:   orderv1.NewOrderServiceClient(dial(t, svc.Addr().String())),
		catalog:  catalogv1.NewCatalogServiceClient(dial(t, cat.Addr().String())),
		store:    store,
		repo:     app.NewRepository(store),
		tokens:   tokens,
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := resilience.Dial(addr, resilience.WithRetry(1, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// as returns a context carrying user's bearer token.
func (e *env) as(t *testing.T, user string) context.Context {
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.tokens[user])
}

func placeRequest(key string, items ...*commonv1.LineItem) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{
		IdempotencyKey:  key,
		Items:           items,
		ShippingAddress: &commonv1.Address{Name: "Alice Example", Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US"},
		PaymentToken:    "tok_visa",
	}
}

func item(id string, qty int32) *commonv1.LineItem {
	return &commonv1.LineItem{ProductId: id, Quantity: qty}
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("error = %v, want code %s", err, want)
	}
}

// categoryEvents returns every stored event of category.
func (e *env) categoryEvents(t *testing.T, category string) []eventstore.Event {
	t.Helper()
	evs, err := e.store.ReadCategory(t.Context(), category, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestPlaceOrderPricesFromCatalog(t *testing.T) {
	e := start(t)
	resp, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("price-test-1",
		item("espresso-machine", 1), item("burr-grinder", 2), item("espresso-machine", 1)))
	if err != nil {
		t.Fatal(err)
	}
	products, err := e.catalog.GetProducts(t.Context(), &catalogv1.GetProductsRequest{Ids: []string{"espresso-machine", "burr-grinder"}})
	if err != nil {
		t.Fatal(err)
	}
	espresso, grinder := products.GetProducts()[0], products.GetProducts()[1]
	cur := espresso.GetPrice().GetCurrencyCode()
	subtotal := 2*espresso.GetPrice().GetMinorUnits() + 2*grinder.GetPrice().GetMinorUnits()

	o := resp.GetOrder()
	if resp.GetOrderId() == "" || o.GetId() != resp.GetOrderId() || o.GetUserId() != "alice" || o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PENDING || o.GetVersion() != 1 {
		t.Fatalf("order = %v", o)
	}
	// Lines were merged by product, in order of first appearance, named and priced
	// by the catalog.
	if len(o.GetLines()) != 2 {
		t.Fatalf("lines = %v, want 2 merged lines", o.GetLines())
	}
	for i, want := range []*catalogv1.Product{espresso, grinder} {
		l := o.GetLines()[i]
		if l.GetProductId() != want.GetId() || l.GetName() != want.GetName() || l.GetQuantity() != 2 ||
			l.GetUnitPrice().GetMinorUnits() != want.GetPrice().GetMinorUnits() || l.GetUnitPrice().GetCurrencyCode() != cur {
			t.Errorf("line %d = %v, want 2 x %v", i, l, want)
		}
	}
	if o.GetSubtotal().GetMinorUnits() != subtotal || o.GetShippingCost().GetMinorUnits() != 499 ||
		o.GetTotal().GetMinorUnits() != subtotal+499 || o.GetTotal().GetCurrencyCode() != cur {
		t.Errorf("amounts = %v + %v = %v, want %d + 499", o.GetSubtotal(), o.GetShippingCost(), o.GetTotal(), subtotal)
	}

	// The stored event says the same, and the owner is the token's subject.
	stored, err := e.repo.Load(t.Context(), resp.GetOrderId())
	if err != nil {
		t.Fatal(err)
	}
	if stored.UserID() != "alice" || stored.Total() != domain.NewMoney(subtotal+499, cur) || stored.PaymentToken() != "tok_visa" {
		t.Errorf("stored order = %+v", stored.Snapshot())
	}
}

func TestPlaceOrderUnknownProductStoresNothing(t *testing.T) {
	e := start(t)
	_, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("unknown-1", item("espresso-machine", 1), item("no-such-product", 1)))
	wantCode(t, err, codes.InvalidArgument)
	var field string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			field = br.GetFieldViolations()[0].GetField()
		}
	}
	if field != "items[1].product_id" {
		t.Errorf("violation names %q, want items[1].product_id (error %v)", field, err)
	}
	for _, c := range []string{app.Category} {
		if evs := e.categoryEvents(t, c); len(evs) != 0 {
			t.Errorf("%d events in %s after a rejected order", len(evs), c)
		}
	}
}

func TestPlaceOrderIsIdempotentByKey(t *testing.T) {
	e := start(t)
	first, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("same-key-1", item("french-press", 1)))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("same-key-1", item("french-press", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if again.GetOrderId() != first.GetOrderId() {
		t.Fatalf("retry placed %s, first was %s", again.GetOrderId(), first.GetOrderId())
	}
	// The key is per user: bob's identical key is another order.
	bobs, err := e.orders.PlaceOrder(e.as(t, "bob"), placeRequest("same-key-1", item("french-press", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if bobs.GetOrderId() == first.GetOrderId() {
		t.Fatal("bob's order reused alice's")
	}

	// Ten identical requests at once: one order.
	const n = 10
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("concurrent-key-1", item("milk-frother", 3)))
			ids[i], errs[i] = resp.GetOrderId(), err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("request %d got order %s, request 0 got %s", i, ids[i], ids[0])
		}
	}

	placed := map[string]int{}
	for _, ev := range e.categoryEvents(t, app.Category) {
		if ev.Type == domain.EventType(&orderv1.OrderPlaced{}) {
			placed[strings.TrimPrefix(ev.Stream, app.Category+"-")]++
		}
	}
	want := map[string]int{first.GetOrderId(): 1, bobs.GetOrderId(): 1, ids[0]: 1}
	if len(placed) != len(want) {
		t.Fatalf("OrderPlaced per order = %v, want one for each of %v", placed, want)
	}
	for id := range want {
		if placed[id] != 1 {
			t.Errorf("order %s has %d OrderPlaced events", id, placed[id])
		}
	}
}

func TestCancelOrder(t *testing.T) {
	e := start(t)
	ctx := t.Context()
	placed, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("cancel-key-1", item("cold-brew-maker", 1)))
	if err != nil {
		t.Fatal(err)
	}
	id := placed.GetOrderId()

	// Another user cannot tell the order exists.
	_, err = e.orders.CancelOrder(e.as(t, "bob"), &orderv1.CancelOrderRequest{OrderId: id})
	wantCode(t, err, codes.NotFound)
	_, err = e.orders.CancelOrder(e.as(t, "alice"), &orderv1.CancelOrderRequest{OrderId: "0195f3a0-0000-7000-8000-000000000000"})
	wantCode(t, err, codes.NotFound)

	resp, err := e.orders.CancelOrder(e.as(t, "alice"), &orderv1.CancelOrderRequest{OrderId: id, Reason: "found it cheaper"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOrder().GetStatus() != orderv1.OrderStatus_ORDER_STATUS_CANCELLING || resp.GetOrder().GetCancelReason() != "found it cheaper" || resp.GetOrder().GetVersion() != 2 {
		t.Errorf("cancelled order = %v", resp.GetOrder())
	}
	// Cancelling again changes nothing.
	if resp, err := e.orders.CancelOrder(e.as(t, "alice"), &orderv1.CancelOrderRequest{OrderId: id}); err != nil || resp.GetOrder().GetVersion() != 2 {
		t.Fatalf("second cancel = %v, %v", resp.GetOrder(), err)
	}

	// Once the shipment exists, the user can no longer cancel.
	shipped, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("cancel-key-2", item("cold-brew-maker", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []func(o *domain.Order) ([]domain.Event, error){
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentAuthorized("pay-1", o.Total()) },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordInventoryReserved("res-1") },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordShipmentCreated("ship-1", "TRACK-1") },
	} {
		if _, err := e.repo.Update(ctx, shipped.GetOrderId(), s); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.orders.CancelOrder(e.as(t, "alice"), &orderv1.CancelOrderRequest{OrderId: shipped.GetOrderId()})
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(status.Convert(err).Message(), "SHIPMENT_CREATED") {
		t.Errorf("message %q does not name the state", status.Convert(err).Message())
	}
}

func TestOrderHistoryAndTimeTravel(t *testing.T) {
	e := start(t)
	ctx := t.Context()
	placed, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("history-key-1", item("pour-over-kettle", 1)))
	if err != nil {
		t.Fatal(err)
	}
	id := placed.GetOrderId()
	if _, err := e.repo.Update(ctx, id, func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentAuthorized("pay-9", o.Total()) }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.orders.CancelOrder(e.as(t, "alice"), &orderv1.CancelOrderRequest{OrderId: id}); err != nil {
		t.Fatal(err)
	}

	h, err := e.orders.GetOrderHistory(e.as(t, "alice"), &orderv1.GetOrderHistoryRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ    string
		status orderv1.OrderStatus
		word   string
	}{
		{"eventshop.order.v1.OrderPlaced", orderv1.OrderStatus_ORDER_STATUS_PENDING, "placed"},
		{"eventshop.order.v1.OrderPaymentAuthorized", orderv1.OrderStatus_ORDER_STATUS_PAYMENT_AUTHORIZED, "pay-9"},
		{"eventshop.order.v1.OrderCancelling", orderv1.OrderStatus_ORDER_STATUS_CANCELLING, "customer"},
	}
	if len(h.GetEntries()) != len(want) {
		t.Fatalf("history = %v", h.GetEntries())
	}
	for i, w := range want {
		got := h.GetEntries()[i]
		if got.GetVersion() != int64(i+1) || got.GetType() != w.typ || got.GetStatusAfter() != w.status || got.GetTime() == nil || !strings.Contains(got.GetSummary(), w.word) {
			t.Errorf("entry %d = %v, want %s -> %s mentioning %q", i, got, w.typ, w.status, w.word)
		}
	}

	at, err := e.orders.GetOrderAt(e.as(t, "alice"), &orderv1.GetOrderAtRequest{OrderId: id, Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if o := at.GetOrder(); o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PAYMENT_AUTHORIZED || o.GetPaymentId() != "pay-9" || o.GetVersion() != 2 || o.GetCancelReason() != "" || o.GetCreateTime() == nil {
		t.Errorf("order at 2 = %v", o)
	}
	_, err = e.orders.GetOrderAt(e.as(t, "alice"), &orderv1.GetOrderAtRequest{OrderId: id, Version: 4})
	wantCode(t, err, codes.OutOfRange)

	for _, call := range []func() error{
		func() error {
			_, err := e.orders.GetOrderHistory(e.as(t, "bob"), &orderv1.GetOrderHistoryRequest{OrderId: id})
			return err
		},
		func() error {
			_, err := e.orders.GetOrderAt(e.as(t, "bob"), &orderv1.GetOrderAtRequest{OrderId: id, Version: 1})
			return err
		},
	} {
		wantCode(t, call(), codes.NotFound)
	}
}

func TestCallerIdentityAndRoles(t *testing.T) {
	e := start(t)
	_, err := e.orders.PlaceOrder(t.Context(), placeRequest("anon-key-1", item("french-press", 1)))
	wantCode(t, err, codes.Unauthenticated)

	_, err = e.orders.ListSalesByProduct(e.as(t, "alice"), &orderv1.ListSalesByProductRequest{})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.orders.ListSalesByProduct(e.as(t, "admin"), &orderv1.ListSalesByProductRequest{}); err != nil {
		t.Fatalf("admin: %v", err)
	}
	if _, err := e.orders.ListOrders(e.as(t, "alice"), &orderv1.ListOrdersRequest{}); err != nil {
		t.Fatalf("list: %v", err)
	}
	_, err = e.orders.ListOrders(e.as(t, "alice"), &orderv1.ListOrdersRequest{PageToken: "garbage"})
	wantCode(t, err, codes.InvalidArgument)
}

func TestPlaceOrderWithCatalogDownIsUnavailable(t *testing.T) {
	// A port that was just free and is closed again: nothing answers there.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	lis.Close()
	e := startWith(t, startOptions{tweak: func(c *order.Config) { c.CatalogAddr = down }})

	_, err = e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("down-key-1", item("french-press", 1)))
	wantCode(t, err, codes.Unavailable)
	if !resilience.IsDependencyUnavailable(err) {
		t.Errorf("PlaceOrder: %v, want it marked as a dependency's outage, so callers' breakers to order stay closed", err)
	}
	for _, c := range []string{app.Category} {
		if evs := e.categoryEvents(t, c); len(evs) != 0 {
			t.Errorf("%d events in %s after the catalog failed", len(evs), c)
		}
	}
}

func TestReadModelServesPlacedOrders(t *testing.T) {
	e := start(t)
	placed, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("read-key-1", item("french-press", 2)))
	if err != nil {
		t.Fatal(err)
	}
	id := placed.GetOrderId()

	// The read model is eventually consistent: wait, boundedly, for the projector.
	ctx, cancel := context.WithTimeout(e.as(t, "alice"), 15*time.Second)
	defer cancel()
	var got *orderv1.Order
	for got == nil {
		resp, err := e.orders.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: id})
		switch {
		case err == nil:
			got = resp.GetOrder()
		case status.Code(err) != codes.NotFound:
			t.Fatalf("GetOrder: %v", err)
		default:
			select {
			case <-ctx.Done():
				t.Fatal("the read model never showed the placed order")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if got.GetUserId() != "alice" || got.GetTotal().GetMinorUnits() != placed.GetOrder().GetTotal().GetMinorUnits() || got.GetVersion() != 1 {
		t.Errorf("read model order = %v, placed %v", got, placed.GetOrder())
	}

	_, err = e.orders.GetOrder(e.as(t, "bob"), &orderv1.GetOrderRequest{OrderId: id})
	wantCode(t, err, codes.NotFound)
	mine, err := e.orders.ListOrders(e.as(t, "alice"), &orderv1.ListOrdersRequest{})
	if err != nil || len(mine.GetOrders()) != 1 || mine.GetOrders()[0].GetId() != id {
		t.Errorf("alice's orders = %v, %v", mine.GetOrders(), err)
	}
	bobs, err := e.orders.ListOrders(e.as(t, "bob"), &orderv1.ListOrdersRequest{})
	if err != nil || len(bobs.GetOrders()) != 0 {
		t.Errorf("bob's orders = %v, %v", bobs.GetOrders(), err)
	}
}

func TestPlaceOrderQuotesShippingFromTheShippingService(t *testing.T) {
	e := startWith(t, startOptions{shipping: true, tweak: func(c *order.Config) { c.FlatShippingMinor = 1 }})
	req := placeRequest("ship-key-1", item("espresso-machine", 1), item("french-press", 3))
	placed, err := e.orders.PlaceOrder(e.as(t, "alice"), req)
	if err != nil {
		t.Fatal(err)
	}
	quote, err := e.shipping.GetQuote(t.Context(), &shippingv1.GetQuoteRequest{Items: req.GetItems(), Address: req.GetShippingAddress()})
	if err != nil {
		t.Fatal(err)
	}
	o := placed.GetOrder()
	if o.GetShippingCost().GetMinorUnits() != quote.GetCost().GetMinorUnits() || o.GetShippingCost().GetMinorUnits() == 1 {
		t.Errorf("shipping cost %v, the shipping service quotes %v", o.GetShippingCost(), quote.GetCost())
	}
	if o.GetTotal().GetMinorUnits() != o.GetSubtotal().GetMinorUnits()+quote.GetCost().GetMinorUnits() {
		t.Errorf("total %v != subtotal %v + shipping %v", o.GetTotal(), o.GetSubtotal(), quote.GetCost())
	}

	// A destination the shipping service does not serve is the client's mistake.
	far := placeRequest("ship-key-2", item("french-press", 1))
	far.ShippingAddress.CountryCode = "ZZ"
	_, err = e.orders.PlaceOrder(e.as(t, "alice"), far)
	wantCode(t, err, codes.InvalidArgument)
}
