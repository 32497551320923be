// Package catalogclient lists the catalog's product ids over gRPC, through a
// resilience-wrapped connection, so stock can be seeded for every product.
package catalogclient

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
)

// Client reads product ids from the catalog.
type Client struct {
	c catalogv1.CatalogServiceClient
}

// New returns a client over cc, typically from resilience.Dial.
func New(cc grpc.ClientConnInterface) *Client {
	return &Client{c: catalogv1.NewCatalogServiceClient(cc)}
}

// ProductIDs returns the id of every product, page by page. It returns the catalog's
// gRPC error, e.g. Unavailable.
func (c *Client) ProductIDs(ctx context.Context) ([]string, error) {
	var ids []string
	token := ""
	for {
		resp, err := c.c.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 100, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("catalog ListProducts: %w", err)
		}
		for _, p := range resp.GetProducts() {
			ids = append(ids, p.GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			return ids, nil
		}
	}
}
