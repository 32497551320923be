// Package catalogclient asks the catalog service for product weights over gRPC,
// through a resilience-wrapped connection.
package catalogclient

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/services/shipping/app"
)

// maxIDs is the most ids GetProducts accepts in one request.
const maxIDs = 100

// Client reads weights from the catalog.
type Client struct {
	c catalogv1.CatalogServiceClient
}

var _ app.Catalog = (*Client)(nil)

// New returns a client over cc, typically from resilience.Dial.
func New(cc grpc.ClientConnInterface) *Client {
	return &Client{c: catalogv1.NewCatalogServiceClient(cc)}
}

// Weights returns the weight in grams of one unit of each known product; unknown ones
// are missing from the map. It returns the catalog's gRPC error, e.g. Unavailable.
func (c *Client) Weights(ctx context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	for start := 0; start < len(ids); start += maxIDs {
		end := min(start+maxIDs, len(ids))
		resp, err := c.c.GetProducts(ctx, &catalogv1.GetProductsRequest{Ids: ids[start:end]})
		if err != nil {
			return nil, fmt.Errorf("catalog GetProducts: %w", err)
		}
		for _, p := range resp.GetProducts() {
			out[p.GetId()] = int64(p.GetWeightGrams())
		}
	}
	return out, nil
}
