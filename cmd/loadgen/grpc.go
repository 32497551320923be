package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// grpcServices are the connections to the services -mode grpc talks to, shared by
// every shopper (a shopper differs only by its token).
type grpcServices struct {
	catalog   catalogv1.CatalogServiceClient
	cart      cartv1.CartServiceClient
	order     orderv1.OrderServiceClient
	inventory inventoryv1.InventoryServiceClient
	conns     []*grpc.ClientConn
}

// dialServices connects to catalog, cart, order and inventory at addrs (keyed by
// service name) through resilience.Dial, as the gateway does. It returns the first
// dial error, with the connections made so far closed.
func dialServices(addrs map[string]string) (*grpcServices, error) {
	s := &grpcServices{}
	dial := func(name string) (*grpc.ClientConn, error) {
		addr := addrs[name]
		if addr == "" {
			return nil, fmt.Errorf("grpc: no address for %s", name)
		}
		cc, err := resilience.Dial(addr, resilience.WithName(name))
		if err != nil {
			return nil, fmt.Errorf("grpc: %w", err)
		}
		s.conns = append(s.conns, cc)
		return cc, nil
	}
	for _, name := range []string{"catalog", "cart", "order", "inventory"} {
		cc, err := dial(name)
		if err != nil {
			s.close()
			return nil, err
		}
		switch name {
		case "catalog":
			s.catalog = catalogv1.NewCatalogServiceClient(cc)
		case "cart":
			s.cart = cartv1.NewCartServiceClient(cc)
		case "order":
			s.order = orderv1.NewOrderServiceClient(cc)
		case "inventory":
			s.inventory = inventoryv1.NewInventoryServiceClient(cc)
		}
	}
	return s, nil
}

func (s *grpcServices) close() {
	for _, cc := range s.conns {
		_ = cc.Close()
	}
}

var _ shopAPI = (*grpcClient)(nil)

// grpcClient is a storefront user calling the services directly with its bearer
// token in the authorization metadata, as the gateway forwards it.
type grpcClient struct {
	svc   *grpcServices
	cred  *credential
	stats *stats
}

// call runs one RPC under op, recording its latency, or its error by gRPC code
// ("gRPC Unavailable"); a call ended by the caller's own context is not counted.
func (c *grpcClient) call(ctx context.Context, op string, rpc func(ctx context.Context) error) error {
	withToken := func(t string) context.Context {
		if t == "" {
			return ctx
		}
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+t)
	}
	token := c.cred.current()
	start := time.Now()
	err := rpc(withToken(token))
	if status.Code(err) == codes.Unauthenticated {
		if fresh, ok := c.cred.renew(ctx, token); ok {
			start = time.Now()
			err = rpc(withToken(fresh))
		}
	}
	if err == nil {
		c.stats.observe(op, time.Since(start))
		return nil
	}
	if ctx.Err() == nil {
		c.stats.fail(op, "gRPC "+status.Code(err).String())
	}
	return fmt.Errorf("%s: %w", op, err)
}

func (c *grpcClient) listProducts(ctx context.Context) ([]*catalogv1.Product, error) {
	var out *catalogv1.ListProductsResponse
	err := c.call(ctx, opListProducts, func(ctx context.Context) (err error) {
		out, err = c.svc.catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 20})
		return err
	})
	return out.GetProducts(), err
}

func (c *grpcClient) search(ctx context.Context, q string) error {
	return c.call(ctx, opSearch, func(ctx context.Context) error {
		_, err := c.svc.catalog.SearchProducts(ctx, &catalogv1.SearchProductsRequest{Query: q})
		return err
	})
}

func (c *grpcClient) addItem(ctx context.Context, productID string) error {
	return c.call(ctx, opAddItem, func(ctx context.Context) error {
		_, err := c.svc.cart.AddItem(ctx, &cartv1.AddItemRequest{ProductId: productID, Quantity: 1})
		return err
	})
}

func (c *grpcClient) clearCart(ctx context.Context) {
	_ = c.call(ctx, "ClearCart", func(ctx context.Context) error {
		_, err := c.svc.cart.EmptyCart(ctx, &cartv1.EmptyCartRequest{})
		return err
	})
}

func (c *grpcClient) placeOrder(ctx context.Context, key, productID, cardToken string) (string, error) {
	var out *orderv1.PlaceOrderResponse
	err := c.call(ctx, opPlaceOrder, func(ctx context.Context) (err error) {
		out, err = c.svc.order.PlaceOrder(ctx, placeOrderRequest(key, productID, cardToken))
		return err
	})
	return out.GetOrder().GetId(), err
}

// watchOrder follows the order with WatchOrder until the service ends the stream
// after the final status; it records the time to that end under opWatchOrder.
func (c *grpcClient) watchOrder(ctx context.Context, id string) (orderv1.OrderStatus, error) {
	last := orderv1.OrderStatus_ORDER_STATUS_UNSPECIFIED
	err := c.call(ctx, opWatchOrder, func(ctx context.Context) error {
		w, err := c.svc.order.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: id})
		if err != nil {
			return err
		}
		for {
			resp, err := w.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			last = resp.GetOrder().GetStatus()
		}
	})
	return last, err
}

func (c *grpcClient) setStock(ctx context.Context, productID string, available int64) error {
	return c.call(ctx, "SetStock", func(ctx context.Context) error {
		_, err := c.svc.inventory.SetStock(ctx, &inventoryv1.SetStockRequest{ProductId: productID, Available: available})
		return err
	})
}
