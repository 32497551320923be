// Package shippingclient gives the order use cases shipping quotes over gRPC
// (through pkg/resilience): app.ShippingQuoter.
package shippingclient

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

// idempotent marks read-only calls as retryable by the resilience layer.
var idempotent = resilience.Idempotent()

// Shipping quotes shipping with the shipping service's GetQuote.
type Client struct {
	client shippingv1.ShippingServiceClient
}

var _ app.ShippingQuoter = (*Client)(nil)

// New returns a Shipping over cc, a connection made with resilience.Dial.
// It panics on a nil cc.
func New(cc grpc.ClientConnInterface) *Client {
	if cc == nil {
		panic("shipping adapter: nil connection")
	}
	return &Client{client: shippingv1.NewShippingServiceClient(cc)}
}

// Quote implements app.ShippingQuoter. A quote the shipping service refuses as
// InvalidArgument (e.g. a destination it does not serve) is returned matching
// domain.ErrInvalidOrder with the service's message, which describes only the
// request; every other failure, including an answer without a cost, matches
// app.ErrUnavailable with the shipping status wrapped.
func (s *Client) Quote(ctx context.Context, req app.QuoteRequest) (domain.Money, error) {
	items := make([]*commonv1.LineItem, len(req.Items))
	for i, it := range req.Items {
		items[i] = &commonv1.LineItem{ProductId: it.ProductID, Quantity: it.Quantity}
	}
	a := req.Address
	resp, err := s.client.GetQuote(ctx, &shippingv1.GetQuoteRequest{
		Items: items,
		Address: &commonv1.Address{
			Name: a.Name, Street: a.Street, City: a.City, PostalCode: a.PostalCode, CountryCode: a.CountryCode,
		},
	}, idempotent)
	if status.Code(err) == codes.InvalidArgument {
		return domain.Money{}, fmt.Errorf("shipping: %s: %w", status.Convert(err).Message(), domain.ErrInvalidOrder)
	}
	if err != nil {
		return domain.Money{}, fmt.Errorf("shipping GetQuote: %w: %w", app.ErrUnavailable, err)
	}
	if resp.GetCost() == nil {
		return domain.Money{}, fmt.Errorf("shipping GetQuote: no cost in answer: %w", app.ErrUnavailable)
	}
	return domain.NewMoney(resp.GetCost().GetMinorUnits(), resp.GetCost().GetCurrencyCode()), nil
}
