package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// Upstream names, as shown on pages, in errors and in /readyz.
const (
	upCatalog   = "catalog"
	upCart      = "cart"
	upOrder     = "order"
	upPayment   = "payment"
	upInventory = "inventory"
	upShipping  = "shipping"
)

// readyTimeout bounds one /readyz round of health checks.
const readyTimeout = 2 * time.Second

// upstream is one gRPC service behind a resilient connection; conn is nil when the
// service is not deployed.
type upstream struct {
	name    string
	addr    string
	service string // the grpc.health.v1 service name it reports SERVING for
	conn    *grpc.ClientConn
}

// upstreams holds every service connection the gateway talks to.
type upstreams struct {
	all []*upstream
	by  map[string]*upstream

	catalog   catalogv1.CatalogServiceClient
	cart      cartv1.CartServiceClient
	order     orderv1.OrderServiceClient
	inventory inventoryv1.InventoryServiceClient
	shipping  shippingv1.ShippingServiceClient
}

// idempotentMethods may be retried by the resilience policy: reads only.
var idempotentMethods = []string{
	"/eventshop.catalog.v1.CatalogService/",
	"/eventshop.cart.v1.CartService/GetCart",
	"/eventshop.order.v1.OrderService/GetOrder",
	"/eventshop.order.v1.OrderService/ListOrders",
	"/eventshop.order.v1.OrderService/GetOrderHistory",
	"/eventshop.order.v1.OrderService/GetOrderAt",
	"/eventshop.order.v1.OrderService/ListSalesByProduct",
	"/eventshop.order.v1.OrderService/ListBestSellers",
	"/eventshop.inventory.v1.InventoryService/GetStock",
	"/eventshop.inventory.v1.InventoryService/ListStock",
	"/eventshop.shipping.v1.ShippingService/GetQuote",
	"/eventshop.payment.v1.PaymentService/",
	"/grpc.health.v1.Health/Check",
}

// orderGroups gives the order service's writes, reads and watches a breaker and
// bulkhead each: they depend on different things (the event store; the read model;
// the projection's push), so a read model that is down never blocks placing orders,
// and a flood of watches never starves reads.
func orderGroups(method string) string {
	switch method {
	case orderv1.OrderService_PlaceOrder_FullMethodName, orderv1.OrderService_CancelOrder_FullMethodName:
		return "writes"
	case orderv1.OrderService_WatchOrder_FullMethodName:
		return "watch"
	}
	return "" // reads
}

func dialUpstreams(cfg Config, logger *slog.Logger, tp trace.TracerProvider) (*upstreams, error) {
	u := &upstreams{by: map[string]*upstream{}}
	for _, d := range []struct {
		name, addr, service string
		groups              func(string) string
	}{
		{upCatalog, cfg.CatalogAddr, catalogv1.CatalogService_ServiceDesc.ServiceName, nil},
		{upCart, cfg.CartAddr, cartv1.CartService_ServiceDesc.ServiceName, nil},
		{upOrder, cfg.OrderAddr, orderv1.OrderService_ServiceDesc.ServiceName, orderGroups},
		{upPayment, cfg.PaymentAddr, paymentv1.PaymentService_ServiceDesc.ServiceName, nil},
		{upInventory, cfg.InventoryAddr, inventoryv1.InventoryService_ServiceDesc.ServiceName, nil},
		{upShipping, cfg.ShippingAddr, shippingv1.ShippingService_ServiceDesc.ServiceName, nil},
	} {
		up := &upstream{name: d.name, addr: d.addr, service: d.service}
		if d.addr != "" {
			conn, err := resilience.Dial(d.addr,
				resilience.WithName(d.name),
				resilience.WithIdempotentMethods(idempotentMethods...),
				resilience.WithMethodGroups(d.groups),
				resilience.WithLogger(logger),
				resilience.WithTracerProvider(tp),
			)
			if err != nil {
				u.close()
				return nil, fmt.Errorf("dial %s: %w", d.name, err)
			}
			up.conn = conn
		}
		u.all = append(u.all, up)
		u.by[d.name] = up
	}
	if c := u.by[upCatalog].conn; c != nil {
		u.catalog = catalogv1.NewCatalogServiceClient(c)
	}
	if c := u.by[upCart].conn; c != nil {
		u.cart = cartv1.NewCartServiceClient(c)
	}
	if c := u.by[upOrder].conn; c != nil {
		u.order = orderv1.NewOrderServiceClient(c)
	}
	if c := u.by[upInventory].conn; c != nil {
		u.inventory = inventoryv1.NewInventoryServiceClient(c)
	}
	if c := u.by[upShipping].conn; c != nil {
		u.shipping = shippingv1.NewShippingServiceClient(c)
	}
	return u, nil
}

// errNotDeployed is the status of a call to a service this gateway has no address for.
func errNotDeployed(name string) error {
	return status.Errorf(codes.Unavailable, "the %s service is not available in this deployment", name)
}

func (u *upstreams) close() {
	for _, up := range u.all {
		if up.conn != nil {
			up.conn.Close()
		}
	}
}

// upstreamHealth is one line of the readiness report.
type upstreamHealth struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// check asks every deployed upstream for its health over its resilient connection.
// ready is true only when each one reports SERVING for its service.
func (u *upstreams) check(ctx context.Context) (ready bool, report []upstreamHealth) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	report = make([]upstreamHealth, len(u.all))
	var wg sync.WaitGroup
	for i, up := range u.all {
		report[i] = upstreamHealth{Name: up.name, Status: "NOT_DEPLOYED"}
		if up.conn == nil {
			continue
		}
		wg.Go(func() {
			resp, err := healthpb.NewHealthClient(up.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: up.service})
			switch {
			case err != nil:
				report[i].Status = "UNREACHABLE"
				report[i].Error = status.Convert(err).Message()
			default:
				report[i].Status = resp.GetStatus().String()
			}
		})
	}
	wg.Wait()
	ready = true
	for i, up := range u.all {
		if up.conn != nil && report[i].Status != healthpb.HealthCheckResponse_SERVING.String() {
			ready = false
		}
	}
	return ready, report
}

// unavailable reports whether err means a service could not be asked at all (down,
// circuit open, overloaded, not deployed), as opposed to a refusal of the request.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
		return true
	}
	return false
}
