package grpcserver_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/grpcserver"
)

func TestAuthRunsBeforeValidation(t *testing.T) {
	iss, err := devissuer.Start(t.Context(), devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{Issuer: iss.URL()})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, grpcserver.WithVerifier(v, auth.WithAccess(auth.Access{
		catalogv1.CatalogService_ListCategories_FullMethodName: {Public: true},
		catalogv1.CatalogService_GetProduct_FullMethodName:     {},
	})))
	client := catalogv1.NewCatalogServiceClient(h.conn)

	// Without a token an invalid request learns nothing about its validity.
	_, err = client.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "Not A Slug"})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v, want Unauthenticated", err)
	}

	token, err := iss.Login(t.Context(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	_, err = client.GetProduct(ctx, &catalogv1.GetProductRequest{Id: "Not A Slug"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("with token: %v, want InvalidArgument", err)
	}
	if _, err := client.GetProduct(ctx, &catalogv1.GetProductRequest{Id: "mug"}); err != nil {
		t.Fatalf("with token, valid request: %v", err)
	}

	// Public methods and health need no token.
	if _, err := client.ListCategories(t.Context(), &catalogv1.ListCategoriesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("public method: %v, want to reach the (unimplemented) handler", err)
	}
	if _, err := healthpb.NewHealthClient(h.conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without token: %v", err)
	}
}
