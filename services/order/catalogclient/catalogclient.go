// Package catalogclient gives the order use cases the catalog's products over gRPC
// (through pkg/resilience): app.Catalog.
package catalogclient

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

// Catalog prices products with the catalog service's GetProducts.
type Client struct {
	client catalogv1.CatalogServiceClient
}

var _ app.Catalog = (*Client)(nil)

// idempotent marks read-only calls as retryable by the resilience layer.
var idempotent = resilience.Idempotent()

// New returns a Client over cc, a connection made with resilience.Dial. It
// panics on a nil cc.
func New(cc grpc.ClientConnInterface) *Client {
	if cc == nil {
		panic("catalog adapter: nil connection")
	}
	return &Client{client: catalogv1.NewCatalogServiceClient(cc)}
}

// Products implements app.Catalog. It returns an *app.UnknownProductError for an id
// the catalog reports as NotFound (or leaves out of its answer) and an error
// matching app.ErrUnavailable for any other failure, the catalog's status wrapped.
func (c *Client) Products(ctx context.Context, ids []string) (map[string]app.Product, error) {
	// GetProducts is a read: safe for the resilience layer to retry.
	resp, err := c.client.GetProducts(ctx, &catalogv1.GetProductsRequest{Ids: ids}, idempotent)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, &app.UnknownProductError{ProductID: unknownID(status.Convert(err).Message(), ids)}
		}
		return nil, fmt.Errorf("catalog GetProducts: %w: %w", app.ErrUnavailable, err)
	}
	out := make(map[string]app.Product, len(resp.GetProducts()))
	for _, p := range resp.GetProducts() {
		out[p.GetId()] = app.Product{
			ID:          p.GetId(),
			Name:        p.GetName(),
			Price:       domain.NewMoney(p.GetPrice().GetMinorUnits(), p.GetPrice().GetCurrencyCode()),
			WeightGrams: p.GetWeightGrams(),
		}
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, &app.UnknownProductError{ProductID: id}
		}
	}
	return out, nil
}

// unknownID picks the id a NotFound message names. The catalog names the first
// unknown id, quoted; an unquoted match is the fallback, and the first id the last
// resort, so the error always points at a requested item.
func unknownID(msg string, ids []string) string {
	for _, id := range ids {
		if strings.Contains(msg, strconv.Quote(id)) {
			return id
		}
	}
	best := ""
	for _, id := range ids {
		// The longest match wins, so "colombia" does not shadow "colombia-huila".
		if strings.Contains(msg, id) && len(id) > len(best) {
			best = id
		}
	}
	if best == "" && len(ids) > 0 {
		best = ids[0]
	}
	return best
}
