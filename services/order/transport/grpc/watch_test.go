package grpctransport_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/projection"
	grpctransport "github.com/eventshop/eventshop/services/order/transport/grpc"
)

// asUser stands in for the verifier: the caller is whoever the "user" metadata names.
func asUser(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	if u := metadata.ValueFromIncomingContext(ctx, "user"); len(u) == 1 {
		ctx = auth.ContextWithClaims(ctx, &auth.Claims{Subject: u[0]})
	}
	return handler(srv, &claimsStream{ServerStream: ss, ctx: ctx})
}

type claimsStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *claimsStream) Context() context.Context { return s.ctx }

// serveWatch serves s over loopback gRPC and returns a client.
func serveWatch(t *testing.T, s *grpctransport.Server) orderv1.OrderServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.StreamInterceptor(asUser))
	orderv1.RegisterOrderServiceServer(gs, s)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := resilience.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return orderv1.NewOrderServiceClient(cc)
}

func newWatchServer(hub grpctransport.Changes, limits grpctransport.WatchLimits) *grpctransport.Server {
	repo := app.NewRepository(eventstore.NewMemory())
	opts := []grpctransport.Option{grpctransport.WithWatchLimits(limits)}
	if hub != nil {
		opts = append(opts, grpctransport.WithChanges(hub))
	}
	return grpctransport.NewServer(app.NewPlaceOrder(repo, noCatalog{}, app.FlatRate{}, nil), app.NewCancelOrder(repo), app.NewQueries(repo),
		readModel{aliceOrder: {Id: aliceOrder, UserId: "alice", Version: 1, Status: orderv1.OrderStatus_ORDER_STATUS_PENDING}}, nil, opts...)
}

// watchAs opens a watch of aliceOrder as user and returns its first answer's error.
func watchAs(t *testing.T, c orderv1.OrderServiceClient, ctx context.Context, user string) (orderv1.OrderService_WatchOrderClient, error) {
	t.Helper()
	w, err := c.WatchOrder(metadata.AppendToOutgoingContext(ctx, "user", user), &orderv1.WatchOrderRequest{OrderId: aliceOrder})
	if err != nil {
		return nil, err
	}
	_, err = w.Recv()
	return w, err
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestWatchOrderBounds(t *testing.T) {
	t.Run("per user", func(t *testing.T) {
		c := serveWatch(t, newWatchServer(projection.NewHub(), grpctransport.WatchLimits{MaxPerUser: 1}))
		ctx := testContext(t)
		first, cancelFirst := context.WithCancel(ctx)
		if _, err := watchAs(t, c, first, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := watchAs(t, c, ctx, "alice"); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("second watch: %v, want ResourceExhausted", err)
		}
		cancelFirst()
		// The slot comes back once the server has seen the first watch end.
		for {
			_, err := watchAs(t, c, ctx, "alice")
			if err == nil {
				break
			}
			if status.Code(err) != codes.ResourceExhausted || ctx.Err() != nil {
				t.Fatalf("watch after the first ended: %v", err)
			}
		}
	})
	t.Run("lifetime", func(t *testing.T) {
		c := serveWatch(t, newWatchServer(projection.NewHub(), grpctransport.WatchLimits{MaxDuration: time.Millisecond}))
		w, err := watchAs(t, c, testContext(t), "alice")
		if err == nil {
			_, err = w.Recv()
		}
		if st := status.Convert(err); st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "watch again") {
			t.Fatalf("watch past its maximum: %v, want DeadlineExceeded telling to watch again", err)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		hub := projection.NewHub()
		c := serveWatch(t, newWatchServer(hub, grpctransport.WatchLimits{}))
		w, err := watchAs(t, c, testContext(t), "alice")
		if err != nil {
			t.Fatal(err)
		}
		hub.Close()
		if _, err := w.Recv(); status.Code(err) != codes.Unavailable {
			t.Fatalf("watch at shutdown: %v, want Unavailable", err)
		}
	})
	t.Run("without changes", func(t *testing.T) {
		c := serveWatch(t, newWatchServer(nil, grpctransport.WatchLimits{}))
		if _, err := watchAs(t, c, testContext(t), "alice"); status.Code(err) != codes.Unavailable {
			t.Fatalf("watch without a hub: %v, want Unavailable", err)
		}
	})
}
