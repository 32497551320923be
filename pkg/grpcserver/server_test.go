package grpcserver_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/testlog"
)

// testCatalog answers GetProduct according to the requested id: "boom" panics and
// "slow" signals entered and waits for release.
type testCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	entered chan struct{}
	release chan struct{}
}

func (c *testCatalog) GetProduct(ctx context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	switch req.GetId() {
	case "boom":
		panic("secret internal state")
	case "slow":
		close(c.entered)
		<-c.release
	}
	return &catalogv1.GetProductResponse{Product: &catalogv1.Product{Id: req.GetId()}}, nil
}

type harness struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returns
	err    error         // what Serve returned, valid once done is closed
	conn   *grpc.ClientConn
	svc    *testCatalog
	logs   *testlog.Buffer
}

func start(t *testing.T, opts ...grpcserver.Option) *harness {
	t.Helper()
	logs := &testlog.Buffer{}
	opts = append([]grpcserver.Option{grpcserver.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)
	srv := grpcserver.New(opts...)
	svc := &testCatalog{entered: make(chan struct{}), release: make(chan struct{})}
	catalogv1.RegisterCatalogServiceServer(srv.GRPC(), svc)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{cancel: cancel, done: make(chan struct{}), svc: svc, logs: logs}
	go func() {
		h.err = srv.Serve(ctx, lis)
		close(h.done)
	}()

	conn, err := resilience.Dial(lis.Addr().String(), resilience.WithName("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	h.conn = conn
	return h
}

func TestValidationNamesField(t *testing.T) {
	h := start(t)
	client := catalogv1.NewCatalogServiceClient(h.conn)

	_, err := client.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "Not A Slug"})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code = %v, want InvalidArgument (%v)", st.Code(), err)
	}
	if !strings.HasPrefix(st.Message(), "invalid request: id: ") || !strings.Contains(st.Message(), "pattern") {
		t.Errorf("message %q does not name the field and the rule", st.Message())
	}
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		if b, ok := d.(*errdetails.BadRequest); ok {
			br = b
		}
	}
	if br == nil || len(br.GetFieldViolations()) != 1 || br.GetFieldViolations()[0].GetField() != "id" {
		t.Fatalf("BadRequest details = %v, want one violation on id", br)
	}
	if br.GetFieldViolations()[0].GetReason() != "string.pattern" {
		t.Errorf("reason = %q, want string.pattern", br.GetFieldViolations()[0].GetReason())
	}

	// Every violation is reported, not only the first.
	_, err = client.ListProducts(t.Context(), &catalogv1.ListProductsRequest{PageSize: 101, Category: strings.Repeat("x", 65)})
	msg := status.Convert(err).Message()
	if !strings.Contains(msg, "page_size") || !strings.Contains(msg, "category") {
		t.Errorf("message %q should name page_size and category", msg)
	}

	resp, err := client.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "espresso-machine"})
	if err != nil || resp.GetProduct().GetId() != "espresso-machine" {
		t.Fatalf("valid request: %v, %v", resp, err)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	h := start(t)
	client := catalogv1.NewCatalogServiceClient(h.conn)

	_, err := client.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "boom"})
	st := status.Convert(err)
	if st.Code() != codes.Internal {
		t.Fatalf("code = %v, want Internal", st.Code())
	}
	if strings.Contains(st.Message(), "secret") {
		t.Errorf("panic value leaked to the client: %q", st.Message())
	}
	logs := h.logs.String()
	if strings.Count(logs, "panic in grpc handler") != 1 || !strings.Contains(logs, "secret internal state") || !strings.Contains(logs, "goroutine") {
		t.Errorf("want the panic logged once with its value and stack, got:\n%s", logs)
	}
	// The server survives.
	if _, err := client.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "fine"}); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

func TestHealthAndGracefulStop(t *testing.T) {
	h := start(t, grpcserver.WithDrainTimeout(time.Minute))
	health := healthpb.NewHealthClient(h.conn)
	client := catalogv1.NewCatalogServiceClient(h.conn)

	// Watch reports the serving status now and every change after.
	watchCtx, stopWatch := context.WithCancel(t.Context())
	defer stopWatch()
	watch, err := health.Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status = %v, want SERVING", first.GetStatus())
	}

	inflight := make(chan error, 1)
	go func() {
		resp, err := client.GetProduct(context.Background(), &catalogv1.GetProductRequest{Id: "slow"})
		if err == nil && resp.GetProduct().GetId() != "slow" {
			err = errors.New("wrong response")
		}
		inflight <- err
	}()
	select {
	case <-h.svc.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("slow RPC never reached the handler")
	}

	h.cancel()
	for {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch ended before NOT_SERVING: %v", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
	}
	// A watch is an in-flight stream too; end it so only the slow RPC holds the drain.
	stopWatch()

	select {
	case <-h.done:
		t.Fatalf("Serve returned (%v) while an RPC was in flight", h.err)
	default:
	}
	close(h.svc.release)
	if err := <-inflight; err != nil {
		t.Fatalf("in-flight RPC failed during graceful stop: %v", err)
	}
	select {
	case <-h.done:
		if h.err != nil {
			t.Fatalf("Serve = %v, want nil", h.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}

func TestDrainTimeoutCutsOffStuckRPC(t *testing.T) {
	h := start(t, grpcserver.WithDrainTimeout(50*time.Millisecond))
	client := catalogv1.NewCatalogServiceClient(h.conn)
	defer close(h.svc.release)

	inflight := make(chan error, 1)
	go func() {
		_, err := client.GetProduct(context.Background(), &catalogv1.GetProductRequest{Id: "slow"})
		inflight <- err
	}()
	<-h.svc.entered
	h.cancel()
	select {
	case <-h.done:
		if h.err != nil {
			t.Fatalf("Serve = %v, want nil", h.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after the drain timeout")
	}
	if err := <-inflight; err == nil {
		t.Fatal("stuck RPC succeeded, want it cut off")
	}
}

func TestFieldError(t *testing.T) {
	err := grpcserver.FieldError(codes.InvalidArgument, "page_token", "token belongs to another query")
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "invalid request: page_token: token belongs to another query" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	if !ok || br.GetFieldViolations()[0].GetField() != "page_token" {
		t.Fatalf("details = %v", st.Details())
	}
}
