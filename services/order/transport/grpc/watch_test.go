package grpctransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/poll"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
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

// countingReads is the read model of a real projection that counts the rows read.
type countingReads struct {
	q     *projection.Queries
	reads atomic.Int64
}

func (r *countingReads) GetOrder(ctx context.Context, id string) (*orderv1.Order, error) {
	r.reads.Add(1)
	o, err := r.q.GetOrder(ctx, id)
	if errors.Is(err, projection.ErrNotFound) {
		err = fmt.Errorf("%w: %w", app.ErrNotFound, err)
	}
	return o, err
}

func (r *countingReads) ListOrdersByUser(context.Context, string, orderv1.OrderStatus, int, string) ([]*orderv1.Order, string, error) {
	return nil, "", errors.ErrUnsupported
}

func (r *countingReads) SalesByProduct(context.Context, int) ([]*orderv1.ProductSales, error) {
	return nil, errors.ErrUnsupported
}

// A watch reads the order's row once and brings it up to date from the changes the
// projector hands it, the row itself included when it was not projected yet: each
// state it sends is the row as the read model holds it, without a read of the
// database per change.
func TestWatchOrderReplaysChangesInsteadOfReading(t *testing.T) {
	ctx := testContext(t)
	db := sqltest.Open(t, sqldb.SQLite)
	store := eventstore.NewMemory()
	hub := projection.NewHub()
	if err := projection.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	p, err := projection.NewProjector(db, store, projection.WithHub(hub), projection.WithDecoder(app.NewCodec().Decode))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })

	repo := app.NewRepository(store)
	const id = "0195f3a0-0000-7000-8000-0000000000aa"
	_, err = repo.Create(ctx, id, func(o *domain.Order) ([]domain.Event, error) {
		return o.Place(domain.PlaceParams{
			OrderID: id, UserID: "alice", ShippingCost: domain.Money{Units: 599, Currency: "USD"}, PaymentToken: "tok_visa",
			Address: domain.Address{Name: "Ada Lovelace", Street: "1 Analytical Way", City: "London", PostalCode: "N1 9GU", CountryCode: "GB"},
			Lines:   []domain.Line{{ProductID: "grinder", Name: "Grinder", Quantity: 2, UnitPrice: domain.Money{Units: 8950, Currency: "USD"}}},
		})
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reads := &countingReads{q: projection.NewQueries(db)}
	c := serveWatch(t, grpctransport.NewServer(app.NewPlaceOrder(repo, noCatalog{}, app.FlatRate{}, nil), app.NewCancelOrder(repo), app.NewQueries(repo),
		reads, nil, grpctransport.WithChanges(hub)))
	w, err := c.WatchOrder(metadata.AppendToOutgoingContext(ctx, "user", "alice"), &orderv1.WatchOrderRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	// The watch finds no row (the projector is not running) and waits for it.
	poll.Until(t, "the watch's first read", func() bool { return reads.reads.Load() == 1 })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	first, err := w.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, head(ctx, t, store)); err != nil {
		t.Fatal(err)
	}
	if row, err := reads.q.GetOrder(ctx, id); err != nil || !proto.Equal(first.GetOrder(), row) {
		t.Fatalf("first answer\n%v\nthe row holds\n%v (%v)", first.GetOrder(), row, err)
	}

	steps := []func(o *domain.Order) ([]domain.Event, error){
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentAuthorized("pay-1", o.Total()) },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordInventoryReserved("res-1") },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordShipmentCreated("ship-1", "TRACK-1") },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentCaptured("pay-1", o.Total()) },
		func(o *domain.Order) ([]domain.Event, error) { return o.Complete() },
	}
	last := first.GetOrder()
	for _, step := range steps {
		if _, err := repo.Update(ctx, id, step); err != nil {
			t.Fatal(err)
		}
		resp, err := w.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got := resp.GetOrder()
		if got.GetVersion() <= last.GetVersion() {
			t.Fatalf("sent version %d after %d", got.GetVersion(), last.GetVersion())
		}
		if err := p.WaitFor(ctx, head(ctx, t, store)); err != nil {
			t.Fatal(err)
		}
		row, err := reads.q.GetOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, row) {
			t.Fatalf("sent\n%v\nthe row holds\n%v", got, row)
		}
		last = got
	}
	if last.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
		t.Fatalf("last state %v, want COMPLETED", last.GetStatus())
	}
	if _, err := w.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after COMPLETED: %v, want the end of the stream", err)
	}
	if n := reads.reads.Load(); n != 1 {
		t.Fatalf("the watch read the row %d times, want once", n)
	}
}

// head is the position of the store's last event.
func head(ctx context.Context, t *testing.T, s eventstore.Store) eventstore.Position {
	t.Helper()
	var pos eventstore.Position
	for {
		evs, err := s.ReadCategory(ctx, projection.Category, pos, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return pos
		}
		pos = evs[len(evs)-1].Position
	}
}
