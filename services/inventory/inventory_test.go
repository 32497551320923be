package inventory_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/resilience"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/inventory"
	"github.com/eventshop/eventshop/services/inventory/app"
)

const (
	order1 = "0193a5a0-0000-7000-8000-000000000001"
	order2 = "0193a5a0-0000-7000-8000-000000000002"
	order3 = "0193a5a0-0000-7000-8000-000000000003"
	order4 = "0193a5a0-0000-7000-8000-000000000004"
	order5 = "0193a5a0-0000-7000-8000-000000000005"
)

// fakeCatalog is a real gRPC catalog on loopback listing a fixed set of products,
// two per page so seeding has to follow page tokens.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
}

var products = []string{"espresso-machine", "kettle", "mug"}

func (fakeCatalog) ListProducts(_ context.Context, req *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	start := 0
	if req.GetPageToken() != "" {
		start = slices.Index(products, req.GetPageToken())
	}
	end := min(start+2, len(products))
	resp := &catalogv1.ListProductsResponse{}
	for _, id := range products[start:end] {
		resp.Products = append(resp.Products, &catalogv1.Product{Id: id})
	}
	if end < len(products) {
		resp.NextPageToken = products[end]
	}
	return resp, nil
}

type harness struct {
	svc     *inventory.Service
	client  inventoryv1.InventoryServiceClient
	js      jetstream.JetStream
	replies *nats.Subscription
	dlq     *nats.Subscription
}

func start(t *testing.T, db *sqldb.DB, cfg inventory.Config, verifier *auth.Verifier) *harness {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(gs, fakeCatalog{})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	_, nc := natstest.Connect(t)
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.CatalogAddr = lis.Addr().String()
	cfg.MaxDeliver = 2
	cfg.Backoff = []time.Duration{20 * time.Millisecond}
	svc, err := inventory.New(context.Background(), cfg, inventory.Deps{NATS: nc, DB: db, Verifier: verifier})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	cc, err := resilience.Dial(svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	h := &harness{svc: svc, client: inventoryv1.NewInventoryServiceClient(cc)}
	if h.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if h.replies, err = nc.SubscribeSync("evt.inventory.>"); err != nil {
		t.Fatal(err)
	}
	if h.dlq, err = nc.SubscribeSync("dlq.cmd.inventory.>"); err != nil {
		t.Fatal(err)
	}
	return h
}

// send publishes a command whose ce-id is id. dedup is its Nats-Msg-Id: a resend of
// the same command after the stream's dedup window has another one.
func (h *harness) send(t *testing.T, subject, id, dedup string, msg proto.Message) {
	t.Helper()
	data, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(messaging.HeaderSpecVersion, messaging.SpecVersion)
	m.Header.Set(messaging.HeaderID, id)
	m.Header.Set(messaging.HeaderType, string(msg.ProtoReflect().Descriptor().FullName()))
	m.Header.Set(messaging.HeaderSource, "/eventshop/order")
	m.Header.Set(jetstream.MsgIDHeader, dedup)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("send %s: %v", subject, err)
	}
}

func (h *harness) do(t *testing.T, subject, id string, msg proto.Message) *nats.Msg {
	t.Helper()
	h.send(t, subject, id, id, msg)
	return h.next(t, func(m *nats.Msg) bool { return m.Header.Get(messaging.HeaderCausationID) == id })
}

// next waits for the next event that match accepts.
func (h *harness) next(t *testing.T, match func(*nats.Msg) bool) *nats.Msg {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		m, err := h.replies.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		if match(m) {
			return m
		}
	}
	t.Fatal("no matching event")
	return nil
}

func decode[T proto.Message](t *testing.T, m *nats.Msg, into T) T {
	t.Helper()
	if got, want := m.Header.Get(messaging.HeaderType), string(into.ProtoReflect().Descriptor().FullName()); got != want {
		t.Fatalf("event type %s on %s, want %s", got, m.Subject, want)
	}
	if err := proto.Unmarshal(m.Data, into); err != nil {
		t.Fatal(err)
	}
	return into
}

func reserve(orderID string, lines ...any) *inventoryv1.ReserveInventory {
	cmd := &inventoryv1.ReserveInventory{OrderId: orderID}
	for i := 0; i < len(lines); i += 2 {
		cmd.Items = append(cmd.Items, &commonv1.LineItem{ProductId: lines[i].(string), Quantity: int32(lines[i+1].(int))})
	}
	return cmd
}

func (h *harness) stock(t *testing.T, id string) *inventoryv1.Stock {
	t.Helper()
	resp, err := h.client.GetStock(context.Background(), &inventoryv1.GetStockRequest{ProductId: id})
	if err != nil {
		t.Fatalf("GetStock(%s): %v", id, err)
	}
	return resp.GetStock()
}

func wantStock(t *testing.T, got *inventoryv1.Stock, available, reserved, sold int64) {
	t.Helper()
	if got.GetAvailable() != available || got.GetReserved() != reserved || got.GetSold() != sold ||
		got.GetTotalStocked() != available+reserved+sold {
		t.Fatalf("stock of %s = %d/%d/%d of %d stocked, want available %d reserved %d sold %d",
			got.GetProductId(), got.GetAvailable(), got.GetReserved(), got.GetSold(), got.GetTotalStocked(), available, reserved, sold)
	}
}

func TestInventory(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		h := start(t, db, inventory.Config{SeedStock: 10}, nil)
		for _, p := range products {
			wantStock(t, h.stock(t, p), 10, 0, 0)
		}

		// Reserve, then the same command again: one hold, the same reply.
		first := h.do(t, app.SubjectReserve, "res-1", reserve(order1, "mug", 3, "kettle", 2, "mug", 1))
		r := decode(t, first, &inventoryv1.InventoryReserved{})
		if r.GetReservationId() == "" || len(r.GetItems()) != 2 || r.GetExpireTime() == nil || first.Header.Get(messaging.HeaderSubject) != order1 {
			t.Fatalf("reserved = %v", r)
		}
		h.send(t, app.SubjectReserve, "res-1", "res-1-resend", reserve(order1, "mug", 3, "kettle", 2, "mug", 1))
		again := h.next(t, func(m *nats.Msg) bool { return m.Header.Get(messaging.HeaderCausationID) == "res-1" })
		if again.Header.Get(messaging.HeaderID) != first.Header.Get(messaging.HeaderID) || !proto.Equal(decode(t, again, &inventoryv1.InventoryReserved{}), r) {
			t.Fatal("duplicate reserve got another reply")
		}
		wantStock(t, h.stock(t, "mug"), 6, 4, 0)
		wantStock(t, h.stock(t, "kettle"), 8, 2, 0)

		// All or nothing: one line short holds nothing, and the reply names it.
		rej := decode(t, h.do(t, app.SubjectReserve, "res-2", reserve(order2, "espresso-machine", 5, "mug", 7, "unknown-product", 1)), &inventoryv1.InventoryRejected{})
		if !slices.Equal(rej.GetProductIds(), []string{"mug", "unknown-product"}) {
			t.Fatalf("rejected = %v, want mug and unknown-product named", rej)
		}
		wantStock(t, h.stock(t, "espresso-machine"), 10, 0, 0)
		wantStock(t, h.stock(t, "mug"), 6, 4, 0)

		// Commit, and a repeat of the commit.
		decode(t, h.do(t, app.SubjectCommit, "com-1", &inventoryv1.CommitReservation{OrderId: order1}), &inventoryv1.ReservationCommitted{})
		decode(t, h.do(t, app.SubjectCommit, "com-1b", &inventoryv1.CommitReservation{OrderId: order1}), &inventoryv1.ReservationCommitted{})
		wantStock(t, h.stock(t, "mug"), 6, 0, 4)
		wantStock(t, h.stock(t, "kettle"), 8, 0, 2)

		// Release gives units back once, however often it is sent.
		decode(t, h.do(t, app.SubjectReserve, "res-4", reserve(order4, "espresso-machine", 2)), &inventoryv1.InventoryReserved{})
		wantStock(t, h.stock(t, "espresso-machine"), 8, 2, 0)
		rel := decode(t, h.do(t, app.SubjectRelease, "rel-4", &inventoryv1.ReleaseInventory{OrderId: order4}), &inventoryv1.InventoryReleased{})
		if rel.GetReservationId() == "" {
			t.Fatalf("released = %v", rel)
		}
		decode(t, h.do(t, app.SubjectRelease, "rel-4b", &inventoryv1.ReleaseInventory{OrderId: order4}), &inventoryv1.InventoryReleased{})
		wantStock(t, h.stock(t, "espresso-machine"), 10, 0, 0)

		// Release with nothing reserved still replies; a reserve arriving later holds nothing.
		if rel := decode(t, h.do(t, app.SubjectRelease, "rel-3", &inventoryv1.ReleaseInventory{OrderId: order3}), &inventoryv1.InventoryReleased{}); rel.GetOrderId() != order3 {
			t.Fatalf("release of nothing = %v", rel)
		}
		decode(t, h.do(t, app.SubjectReserve, "res-3", reserve(order3, "mug", 1)), &inventoryv1.InventoryRejected{})
		wantStock(t, h.stock(t, "mug"), 6, 0, 4)

		// A commit with nothing held is refused with a reply, the same one on a resend.
		failed := h.do(t, app.SubjectCommit, "com-3", &inventoryv1.CommitReservation{OrderId: order3})
		if f := decode(t, failed, &inventoryv1.ReservationCommitFailed{}); f.GetOrderId() != order3 || f.GetReason() == "" || failed.Subject != app.SubjectCommitFailed {
			t.Fatalf("commit of nothing = %v on %s", f, failed.Subject)
		}
		h.send(t, app.SubjectCommit, "com-3", "com-3-resend", &inventoryv1.CommitReservation{OrderId: order3})
		again = h.next(t, func(m *nats.Msg) bool { return m.Header.Get(messaging.HeaderCausationID) == "com-3" })
		if again.Header.Get(messaging.HeaderID) != failed.Header.Get(messaging.HeaderID) || again.Subject != app.SubjectCommitFailed {
			t.Fatalf("resent commit got %s, want the same ReservationCommitFailed", again.Subject)
		}
		// So is a commit of a released reservation, which sells nothing.
		decode(t, h.do(t, app.SubjectCommit, "com-4", &inventoryv1.CommitReservation{OrderId: order4}), &inventoryv1.ReservationCommitFailed{})
		wantStock(t, h.stock(t, "espresso-machine"), 10, 0, 0)

		// A release after a commit gives the sold units back, once: the saga stopped
		// waiting for a commit that was carried out anyway and compensates the order.
		decode(t, h.do(t, app.SubjectRelease, "rel-1", &inventoryv1.ReleaseInventory{OrderId: order1}), &inventoryv1.InventoryReleased{})
		decode(t, h.do(t, app.SubjectRelease, "rel-1b", &inventoryv1.ReleaseInventory{OrderId: order1}), &inventoryv1.InventoryReleased{})
		wantStock(t, h.stock(t, "mug"), 10, 0, 0)
		wantStock(t, h.stock(t, "kettle"), 10, 0, 0)
		decode(t, h.do(t, app.SubjectCommit, "com-1c", &inventoryv1.CommitReservation{OrderId: order1}), &inventoryv1.ReservationCommitFailed{})
		wantStock(t, h.stock(t, "mug"), 10, 0, 0)

		if _, err := h.client.GetStock(context.Background(), &inventoryv1.GetStockRequest{ProductId: "nothing-here"}); status.Code(err) != codes.NotFound {
			t.Fatalf("GetStock(unknown) = %v, want NotFound", err)
		}
		levels, err := h.svc.StockLevels(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range levels {
			if err := s.Check(); err != nil || s.TotalStocked != 10 {
				t.Errorf("stock %+v: %v", s, err)
			}
		}
	})
}

func TestReservationExpires(t *testing.T) {
	h := start(t, sqltest.Open(t, sqldb.SQLite), inventory.Config{SeedStock: 5, ReservationTTL: 200 * time.Millisecond, SweepInterval: 20 * time.Millisecond}, nil)
	r := decode(t, h.do(t, app.SubjectReserve, "res-5", reserve(order5, "mug", 3)), &inventoryv1.InventoryReserved{})
	exp := decode(t, h.next(t, func(m *nats.Msg) bool { return m.Subject == app.SubjectExpired }), &inventoryv1.ReservationExpired{})
	if exp.GetOrderId() != order5 || exp.GetReservationId() != r.GetReservationId() {
		t.Fatalf("expired = %v", exp)
	}
	wantStock(t, h.stock(t, "mug"), 5, 0, 0)
	// Releasing an expired reservation gives nothing back twice.
	decode(t, h.do(t, app.SubjectRelease, "rel-5", &inventoryv1.ReleaseInventory{OrderId: order5}), &inventoryv1.InventoryReleased{})
	wantStock(t, h.stock(t, "mug"), 5, 0, 0)
	if n, err := h.svc.ExpireNow(context.Background()); err != nil || n != 0 {
		t.Fatalf("ExpireNow = %d, %v; want nothing left to expire", n, err)
	}

	// A commit arriving after the expiry sells the units if they are still there...
	decode(t, h.do(t, app.SubjectReserve, "res-1", reserve(order1, "mug", 2)), &inventoryv1.InventoryReserved{})
	h.next(t, func(m *nats.Msg) bool { return m.Subject == app.SubjectExpired })
	decode(t, h.do(t, app.SubjectCommit, "com-1", &inventoryv1.CommitReservation{OrderId: order1}), &inventoryv1.ReservationCommitted{})
	wantStock(t, h.stock(t, "mug"), 3, 0, 2)

	// ...and is refused, selling nothing, when they are gone.
	decode(t, h.do(t, app.SubjectReserve, "res-2", reserve(order2, "mug", 2, "kettle", 1)), &inventoryv1.InventoryReserved{})
	h.next(t, func(m *nats.Msg) bool { return m.Subject == app.SubjectExpired })
	decode(t, h.do(t, app.SubjectReserve, "res-3", reserve(order3, "mug", 3)), &inventoryv1.InventoryReserved{})
	decode(t, h.do(t, app.SubjectCommit, "com-3", &inventoryv1.CommitReservation{OrderId: order3}), &inventoryv1.ReservationCommitted{})
	wantStock(t, h.stock(t, "mug"), 0, 0, 5)
	if f := decode(t, h.do(t, app.SubjectCommit, "com-2", &inventoryv1.CommitReservation{OrderId: order2}), &inventoryv1.ReservationCommitFailed{}); f.GetOrderId() != order2 {
		t.Fatalf("late commit without stock = %v", f)
	}
	wantStock(t, h.stock(t, "kettle"), 5, 0, 0)
}

func TestSetStockNeedsAdmin(t *testing.T) {
	ctx := context.Background()
	issuer, err := devissuer.Start(ctx, devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { issuer.Close() })
	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: issuer.URL(), Audience: issuer.Audience()})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, sqltest.Open(t, sqldb.SQLite), inventory.Config{SeedStock: 10}, verifier)
	as := func(user string) context.Context {
		tok, err := issuer.Login(ctx, user, user+"-password")
		if err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	set := &inventoryv1.SetStockRequest{ProductId: "mug", Available: 25}

	if _, err := h.client.SetStock(ctx, set); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("SetStock without a token = %v, want Unauthenticated", err)
	}
	if _, err := h.client.SetStock(as("alice"), set); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("SetStock as alice = %v, want PermissionDenied", err)
	}
	if _, err := h.client.ListStock(as("alice"), &inventoryv1.ListStockRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListStock as alice = %v, want PermissionDenied", err)
	}
	wantStock(t, h.stock(t, "mug"), 10, 0, 0) // GetStock is public

	admin := as("admin")
	resp, err := h.client.SetStock(admin, set)
	if err != nil {
		t.Fatalf("SetStock as admin: %v", err)
	}
	wantStock(t, resp.GetStock(), 25, 0, 0)
	if _, err := h.client.SetStock(admin, &inventoryv1.SetStockRequest{ProductId: "mug", Available: -1}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("negative stock = %v, want InvalidArgument", err)
	}
	levels, err := h.svc.StockLevels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range levels {
		if s.ProductID == "mug" && s.TotalStocked != 25 {
			t.Fatalf("mug total stocked %d, want the seed plus the restock (25)", s.TotalStocked)
		}
	}

	var got []string
	token := ""
	for {
		page, err := h.client.ListStock(admin, &inventoryv1.ListStockRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatalf("ListStock: %v", err)
		}
		for _, s := range page.GetStock() {
			got = append(got, s.GetProductId())
			if s.GetTotalStocked() != s.GetAvailable()+s.GetReserved()+s.GetSold() || (s.GetProductId() == "mug" && s.GetTotalStocked() != 25) {
				t.Errorf("listed stock %v: total stocked does not add up", s)
			}
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if !slices.Equal(got, products) {
		t.Fatalf("ListStock pages = %v, want %v", got, products)
	}
}
