package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/catalog"
)

func TestServiceServesPubliclyAndStopsCleanly(t *testing.T) {
	iss, err := devissuer.Start(t.Context(), devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{Issuer: iss.URL()})
	if err != nil {
		t.Fatal(err)
	}

	svc, err := catalog.New(context.Background(), catalog.Config{GRPCAddr: "127.0.0.1:0"}, catalog.Deps{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()

	conn, err := resilience.Dial(svc.Addr().String(), resilience.WithName("catalog"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// No token needed for any catalog RPC.
	c := catalogv1.NewCatalogServiceClient(conn)
	if _, err := c.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "headlamp"}); err != nil {
		t.Fatalf("anonymous GetProduct: %v", err)
	}
	// A real token is accepted too.
	token, err := iss.Login(t.Context(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	authed := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	if _, err := c.ListCategories(authed, &catalogv1.ListCategoriesRequest{}); err != nil {
		t.Fatalf("ListCategories with token: %v", err)
	}
	// A forged token is not.
	forged := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer not.a.token")
	if _, err := c.ListCategories(forged, &catalogv1.ListCategoriesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("forged token: %v, want Unauthenticated", err)
	}

	h := healthpb.NewHealthClient(conn)
	resp, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{Service: catalogv1.CatalogService_ServiceDesc.ServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", resp, err)
	}

	if err := svc.Run(ctx); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestNewRejectsBadProductsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "products.json")
	body := `[{"id":"mug","name":"Mug","categories":["kitchen"],"price_cents":0,"currency":"USD","weight_grams":300}]`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := catalog.New(context.Background(), catalog.Config{GRPCAddr: "127.0.0.1:0", ProductsFile: path}, catalog.Deps{})
	if err == nil || !strings.Contains(err.Error(), `"mug"`) || !strings.Contains(err.Error(), "price") {
		t.Fatalf("err = %v, want one naming the product and its price", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := catalog.New(context.Background(), catalog.Config{}, catalog.Deps{}); err == nil || !strings.Contains(err.Error(), "grpc-addr") {
		t.Fatalf("err = %v, want one naming grpc-addr", err)
	}
}
