// Package catalogclient asks the catalog service for products over gRPC (through
// pkg/resilience), keeping the last known price of each so a cart still renders
// while the catalog is down.
package catalogclient

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/money"
	"github.com/eventshop/eventshop/services/cart/app"
	"github.com/eventshop/eventshop/services/cart/domain"
)

// Client asks the catalog service for products and remembers every product
// it was told about, so the cart can still show prices while the catalog is down.
// The connection should come from resilience.Dial with the catalog marked idempotent.
type Client struct {
	client catalogv1.CatalogServiceClient

	mu        sync.RWMutex
	lastKnown map[string]domain.Product // bounded by the catalog's size
}

var _ app.Catalog = (*Client)(nil)

// New returns a client over conn. It panics if conn is nil.
func New(conn grpc.ClientConnInterface) *Client {
	if conn == nil {
		panic("catalogclient: nil catalog connection")
	}
	return &Client{client: catalogv1.NewCatalogServiceClient(conn), lastKnown: make(map[string]domain.Product)}
}

// Product asks the catalog for one product. It returns an error wrapping
// app.ErrUnknownProduct when the catalog does not sell it, ctx's error when the
// caller gave up, and app.ErrCatalogUnavailable for any other failure.
func (c *Client) Product(ctx context.Context, id string) (domain.Product, error) {
	resp, err := c.client.GetProducts(ctx, &catalogv1.GetProductsRequest{Ids: []string{id}})
	if err != nil {
		return domain.Product{}, classify(ctx, id, err)
	}
	for _, p := range c.remember(resp.GetProducts()) {
		if p.ID == id {
			return p, nil
		}
	}
	return domain.Product{}, fmt.Errorf("product %q: %w", id, app.ErrUnknownProduct)
}

// Products asks the catalog for ids at once; products it no longer sells are left
// out. It returns ctx's error when the caller gave up and an error wrapping
// app.ErrCatalogUnavailable for any other failure.
func (c *Client) Products(ctx context.Context, ids []string) (map[string]domain.Product, error) {
	resp, err := c.client.GetProducts(ctx, &catalogv1.GetProductsRequest{Ids: ids})
	if err == nil {
		return toMap(c.remember(resp.GetProducts())), nil
	}
	if err := classify(ctx, "", err); !errors.Is(err, app.ErrUnknownProduct) {
		return nil, err
	}
	// The batch fails on the first unknown id without saying which in a
	// machine-readable way; ask one by one, which only happens when a product in
	// some cart has left the catalog.
	out := make(map[string]domain.Product, len(ids))
	for _, id := range ids {
		p, err := c.Product(ctx, id)
		switch {
		case err == nil:
			out[id] = p
		case !errors.Is(err, app.ErrUnknownProduct):
			return nil, err
		}
	}
	return out, nil
}

// LastKnown returns the products among ids that earlier answers contained.
func (c *Client) LastKnown(ids []string) map[string]domain.Product {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]domain.Product, len(ids))
	for _, id := range ids {
		if p, ok := c.lastKnown[id]; ok {
			out[id] = p
		}
	}
	return out
}

func (c *Client) remember(pbs []*catalogv1.Product) []domain.Product {
	ps := make([]domain.Product, len(pbs))
	for i, pb := range pbs {
		ps[i] = domain.Product{
			ID:       pb.GetId(),
			Name:     pb.GetName(),
			Price:    money.FromProto(pb.GetPrice()),
			ImageURL: pb.GetImageUrl(),
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		c.lastKnown[p.ID] = p
	}
	return ps
}

func toMap(ps []domain.Product) map[string]domain.Product {
	m := make(map[string]domain.Product, len(ps))
	for _, p := range ps {
		m[p.ID] = p
	}
	return m
}

// classify separates "no such product" and "the caller gave up" from everything
// else, which to the cart means the catalog cannot be relied on right now.
func classify(ctx context.Context, id string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("product %q: %w", id, app.ErrUnknownProduct)
	}
	return fmt.Errorf("%w: %w", app.ErrCatalogUnavailable, err)
}
