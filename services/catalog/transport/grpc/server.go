// Package grpctransport serves the catalog over gRPC: it maps requests to the domain
// and domain results and errors back to protobuf and status codes, the latter in one
// place (toStatus).
package grpctransport

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/services/catalog/domain"
)

// Server implements catalogv1.CatalogServiceServer over a read-only catalog.
// Requests arrive already validated by the server's protovalidate interceptor.
type Server struct {
	catalogv1.UnimplementedCatalogServiceServer
	catalog *domain.Catalog
}

var _ catalogv1.CatalogServiceServer = (*Server)(nil)

// NewServer returns a Server for c. It panics if c is nil.
func NewServer(c *domain.Catalog) *Server {
	if c == nil {
		panic("grpctransport: nil catalog")
	}
	return &Server{catalog: c}
}

// ListProducts returns a page of products; InvalidArgument naming page_token for a
// token from another query.
func (s *Server) ListProducts(_ context.Context, req *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	page, err := s.catalog.List(req.GetCategory(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.ListProductsResponse{
		Products:      productsToProto(page.Products),
		NextPageToken: page.NextPageToken,
		TotalSize:     int32(page.TotalSize),
	}, nil
}

// GetProduct returns one product; NotFound for an unknown id.
func (s *Server) GetProduct(_ context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	p, err := s.catalog.Product(req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.GetProductResponse{Product: productToProto(p)}, nil
}

// SearchProducts returns a page of ranked matches; InvalidArgument naming page_token
// for a token from another query.
func (s *Server) SearchProducts(_ context.Context, req *catalogv1.SearchProductsRequest) (*catalogv1.SearchProductsResponse, error) {
	page, err := s.catalog.Search(req.GetQuery(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.SearchProductsResponse{
		Products:      productsToProto(page.Products),
		NextPageToken: page.NextPageToken,
		TotalSize:     int32(page.TotalSize),
	}, nil
}

// GetProducts returns the products in request order, each once; NotFound naming the
// first unknown id.
func (s *Server) GetProducts(_ context.Context, req *catalogv1.GetProductsRequest) (*catalogv1.GetProductsResponse, error) {
	ps, err := s.catalog.Products(req.GetIds())
	if err != nil {
		return nil, toStatus(err)
	}
	return &catalogv1.GetProductsResponse{Products: productsToProto(ps)}, nil
}

// ListCategories returns every category with its product count.
func (s *Server) ListCategories(context.Context, *catalogv1.ListCategoriesRequest) (*catalogv1.ListCategoriesResponse, error) {
	cats := s.catalog.Categories()
	out := make([]*catalogv1.Category, len(cats))
	for i, c := range cats {
		out[i] = &catalogv1.Category{Name: c.Name, ProductCount: int32(c.ProductCount)}
	}
	return &catalogv1.ListCategoriesResponse{Categories: out}, nil
}

// toStatus is the one place catalog errors become gRPC codes. Domain messages carry
// only what the caller sent (ids, tokens), so they are safe to return.
func toStatus(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, domain.ErrInvalidPageToken):
		return grpcserver.FieldError(codes.InvalidArgument, "page_token", err.Error())
	default:
		return status.Error(codes.Internal, "internal error")
	}
}

func productsToProto(ps []domain.Product) []*catalogv1.Product {
	out := make([]*catalogv1.Product, len(ps))
	for i, p := range ps {
		out[i] = productToProto(p)
	}
	return out
}

func productToProto(p domain.Product) *catalogv1.Product {
	return &catalogv1.Product{
		Id:          p.ID,
		Name:        p.Name,
		Description: p.Description,
		Categories:  p.Categories,
		Price:       p.Price.Proto(),
		ImageUrl:    p.ImageURL,
		Attributes:  p.Attributes,
		WeightGrams: p.WeightGrams,
	}
}
