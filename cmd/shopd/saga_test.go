package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/cmd/internal/audit"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/testlog"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/payment/provider"
	"github.com/eventshop/eventshop/services/shipping/carrier"
)

// waitFor bounds every wait for an outcome; generous because several test
// binaries share two cores.
const waitFor = 90 * time.Second

// sagaShop is a running shopd with a logged-in user and the clients a saga test needs.
type sagaShop struct {
	*Main
	t       testing.TB
	dataDir string
	ctx     context.Context // carries the user's token
	orders  orderv1.OrderServiceClient
	product *catalogv1.Product
	sources *audit.Sources  // the stores audit reads; nil: the SQLite files in dataDir
	log     *testlog.Buffer // what the shop logged
}

type shopOption func(m *Main, args *[]string)

// withFlags appends shopd flags.
func withFlags(flags ...string) shopOption {
	return func(_ *Main, args *[]string) { *args = append(*args, flags...) }
}

// startSagaShop runs the real shopd program with every service on a random port.
// shopArgs are the flags of a test shop on dir with its issuer on issuerAddr and
// everything else on free loopback ports.
func shopArgs(dir, issuerAddr string) []string {
	args := []string{"-data-dir", dir, "-nats-port", "0", "-issuer-addr", issuerAddr, "-log-level", "error", "-gateway-http-addr", "127.0.0.1:0"}
	for _, svc := range []string{"catalog", "cart", "order", "payment", "inventory", "shipping"} {
		args = append(args, "-"+svc+"-grpc-addr", "127.0.0.1:0")
	}
	return args
}

func startSagaShop(t testing.TB, opts ...shopOption) *sagaShop {
	t.Helper()
	m := NewMain()
	var stdout bytes.Buffer
	stderr := &testlog.Buffer{}
	m.Stdout, m.Stderr = &stdout, stderr
	dir := t.TempDir()
	args := shopArgs(dir, "127.0.0.1:0")
	for _, o := range opts {
		o(m, &args)
	}
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		// Every test of the shop doubles as a test that each service works within
		// the NATS permissions of its role.
		if strings.Contains(stderr.String(), "Permissions Violation") {
			t.Errorf("a service was refused by NATS permissions")
		}
		if t.Failed() {
			t.Logf("shopd log:\n%s", tail(stderr.String(), 8000))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	token, err := m.Issuer().Login(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	list, err := catalogv1.NewCatalogServiceClient(dial(t, m.Addr("catalog"))).ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 1})
	if err != nil || len(list.GetProducts()) == 0 {
		t.Fatalf("ListProducts: %v %v", list, err)
	}
	return &sagaShop{
		Main:    m,
		t:       t,
		dataDir: dir,
		log:     stderr,
		ctx:     metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token),
		orders:  orderv1.NewOrderServiceClient(dial(t, m.Addr("order"))),
		product: list.GetProducts()[0],
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// place places an order of qty units of the shop's first product paid with token.
func (s *sagaShop) place(token string, qty int32) string {
	s.t.Helper()
	id, err := s.tryPlace(token, qty)
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

func (s *sagaShop) tryPlace(token string, qty int32) (string, error) {
	return s.tryPlaceKeyed(token, qty, "k-"+uuid.NewString())
}

// tryPlaceKeyed places an order under a caller-chosen idempotency key, so a retry of
// a request whose answer was lost can never place a second order.
func (s *sagaShop) tryPlaceKeyed(token string, qty int32, key string) (string, error) {
	resp, err := s.orders.PlaceOrder(s.ctx, &orderv1.PlaceOrderRequest{
		IdempotencyKey: key,
		Items:          []*commonv1.LineItem{{ProductId: s.product.GetId(), Quantity: qty}},
		ShippingAddress: &commonv1.Address{
			Name: "Alice", Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US",
		},
		PaymentToken: token,
	})
	if err != nil {
		return "", fmt.Errorf("PlaceOrder: %w", err)
	}
	return resp.GetOrder().GetId(), nil
}

// awaitFinal polls the read model until the order is COMPLETED or CANCELLED.
func (s *sagaShop) awaitFinal(id string) *orderv1.Order {
	s.t.Helper()
	deadline := time.Now().Add(waitFor)
	var last *orderv1.Order
	for time.Now().Before(deadline) {
		resp, err := s.orders.GetOrder(s.ctx, &orderv1.GetOrderRequest{OrderId: id})
		if err == nil {
			last = resp.GetOrder()
			if st := last.GetStatus(); st == orderv1.OrderStatus_ORDER_STATUS_COMPLETED || st == orderv1.OrderStatus_ORDER_STATUS_CANCELLED {
				return last
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := s.OrderService().Saga(context.Background(), id)
	s.t.Fatalf("order %s not final after %v: read model %v, saga %v %s step %d (%v)", id, waitFor, last.GetStatus(), st.Status, st.Reason, st.Step, err)
	return nil
}

// awaitStatus waits for a final status and checks it.
func (s *sagaShop) awaitStatus(id string, want orderv1.OrderStatus) *orderv1.Order {
	s.t.Helper()
	o := s.awaitFinal(id)
	if o.GetStatus() != want {
		s.t.Fatalf("order %s: %v (%q), want %v", id, o.GetStatus(), o.GetCancelReason(), want)
	}
	return o
}

// awaitStep waits until the order's saga is running step i: every step before it
// succeeded and its command is out.
func (s *sagaShop) awaitStep(id string, i int) {
	s.t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		st, err := s.OrderService().Saga(context.Background(), id)
		if err == nil && st.Status == saga.Running && st.Step == i {
			return
		}
		if err == nil && st.Status != saga.Running {
			s.t.Fatalf("saga %s %v (%s) before reaching step %d", id, st.Status, st.Reason, i)
		}
		if err != nil && !errors.Is(err, saga.ErrNotFound) {
			s.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("saga %s never reached step %d", id, i)
}

// audit runs the invariant auditor over the shop's databases and fails the test on
// any violation.
func (s *sagaShop) audit() audit.Report {
	s.t.Helper()
	src := audit.DataDir(s.dataDir)
	if s.sources != nil {
		src = *s.sources
	}
	r, err := audit.Run(context.Background(), src)
	if err != nil {
		s.t.Fatal(err)
	}
	if !r.OK() {
		var b strings.Builder
		r.Print(&b)
		s.t.Fatalf("auditor:\n%s", b.String())
	}
	return r
}

func (s *sagaShop) payment(orderID string) *paymentv1.Payment {
	s.t.Helper()
	resp, err := paymentv1.NewPaymentServiceClient(dial(s.t, s.Addr("payment"))).GetPaymentByOrder(s.ctx, &paymentv1.GetPaymentByOrderRequest{OrderId: orderID})
	if err != nil {
		s.t.Fatalf("payment of %s: %v", orderID, err)
	}
	return resp.GetPayment()
}

// stock returns available, reserved and sold of the shop's first product.
func (s *sagaShop) stock() [3]int64 {
	s.t.Helper()
	levels, err := s.InventoryService().StockLevels(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	for _, l := range levels {
		if l.ProductID == s.product.GetId() {
			return [3]int64{l.Available, l.Reserved, l.Sold}
		}
	}
	s.t.Fatalf("no stock for %s", s.product.GetId())
	return [3]int64{}
}

// stepService names the participant of each saga step.
var stepService = map[int]string{
	app.StepAuthorizePayment: "payment",
	app.StepReserveInventory: "inventory",
	app.StepCreateShipment:   "shipping",
	app.StepCapturePayment:   "payment",
	app.StepCommitInventory:  "inventory",
}

// placeHeldAt places an order and returns it with its saga waiting at step, whose
// participant is stopped. PlaceOrder needs the shipping service for its quote, so
// the saga is held in front of a stopped participant and moved on by stopping the
// next one and starting the previous one.
func (s *sagaShop) placeHeldAt(ctx context.Context, step int) string {
	s.t.Helper()
	must := func(err error) {
		s.t.Helper()
		if err != nil {
			s.t.Fatal(err)
		}
	}
	first := app.StepReserveInventory
	if step == app.StepAuthorizePayment {
		first = app.StepAuthorizePayment
	}
	must(s.Stop(ctx, stepService[first]))
	id := s.place("tok_visa", 1)
	s.awaitStep(id, first)
	held := first
	for _, next := range []int{app.StepCreateShipment, app.StepCapturePayment, app.StepCommitInventory} {
		if held == step {
			break
		}
		if next == app.StepCreateShipment && step != app.StepCreateShipment {
			continue // shipping answers on its own on the way to a later step
		}
		must(s.Stop(ctx, stepService[next]))
		must(s.Start(ctx, stepService[held]))
		s.awaitStep(id, next)
		held = next
	}
	return id
}

func TestSagaCompletes(t *testing.T) {
	s := startSagaShop(t)
	before := s.stock()
	id := s.place("tok_visa", 2)
	o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	if o.GetPaymentId() == "" || o.GetShipmentId() == "" || o.GetTrackingId() == "" {
		t.Fatalf("completed order lacks payment or shipment: %v", o)
	}
	if p := s.payment(id); p.GetCaptured().GetMinorUnits() != o.GetTotal().GetMinorUnits() {
		t.Fatalf("captured %v, total %v", p.GetCaptured(), o.GetTotal())
	}
	if after := s.stock(); after != [3]int64{before[0] - 2, before[1], before[2] + 2} {
		t.Fatalf("stock %v -> %v, want 2 units sold", before, after)
	}
	st, err := s.OrderService().Saga(context.Background(), id)
	if err != nil || st.Status != saga.Completed {
		t.Fatalf("saga %v %v", st.Status, err)
	}
	s.audit()
}

func TestSagaDeclinedCard(t *testing.T) {
	s := startSagaShop(t)
	before := s.stock()
	id := s.place(provider.TokenChargeDeclined, 1)
	o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_CANCELLED)
	if !strings.Contains(o.GetCancelReason(), "declined") {
		t.Errorf("cancel reason %q, want the decline", o.GetCancelReason())
	}
	p := s.payment(id)
	if p.GetCaptured().GetMinorUnits() != 0 || p.GetAuthorized().GetMinorUnits() != 0 {
		t.Errorf("declined payment moved money: %v", p)
	}
	if after := s.stock(); after != before {
		t.Errorf("stock %v -> %v, want untouched", before, after)
	}
	s.audit()
}

func TestSagaOutOfStock(t *testing.T) {
	s := startSagaShop(t, withFlags("-inventory-seed-stock", "3"))
	id := s.place("tok_visa", 4)
	o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_CANCELLED)
	if want := "out of stock: " + s.product.GetId(); o.GetCancelReason() != want {
		t.Errorf("cancel reason %q, want %q", o.GetCancelReason(), want)
	}
	if p := s.payment(id); p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_VOIDED {
		t.Errorf("payment %v, want the authorization voided", p.GetStatus())
	}
	if got := s.stock(); got != [3]int64{3, 0, 0} {
		t.Errorf("stock %v, want 3 available", got)
	}
	s.audit()
}

func TestSagaShippingFailure(t *testing.T) {
	refusing := carrier.NewSimulated(carrier.Faults{FailRate: 1})
	s := startSagaShop(t, func(m *Main, _ *[]string) { m.ShippingCarrier = refusing })
	before := s.stock()
	id := s.place("tok_visa", 1)
	o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_CANCELLED)
	if !strings.Contains(o.GetCancelReason(), "shipment failed") {
		t.Errorf("cancel reason %q", o.GetCancelReason())
	}
	if p := s.payment(id); p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_VOIDED {
		t.Errorf("payment %v, want voided", p.GetStatus())
	}
	if after := s.stock(); after != before {
		t.Errorf("stock %v -> %v, want the reservation released", before, after)
	}
	s.audit()
}

// flakyProvider fails the first n authorizations transiently, as a card network
// having a bad moment does, then behaves as the simulated network.
type flakyProvider struct {
	provider.Simulated
	failures atomic.Int32
	calls    atomic.Int32
}

func (p *flakyProvider) Authorize(ctx context.Context, req provider.AuthorizeRequest) (provider.Authorization, error) {
	p.calls.Add(1)
	if p.failures.Add(-1) >= 0 {
		return provider.Authorization{}, fmt.Errorf("%w: network hiccup", provider.ErrProcessing)
	}
	return p.Simulated.Authorize(ctx, req)
}

func TestSagaTransientPaymentFailure(t *testing.T) {
	flaky := &flakyProvider{}
	flaky.failures.Store(2)
	s := startSagaShop(t, func(m *Main, _ *[]string) { m.PaymentProvider = flaky })
	id := s.place("tok_visa", 1)
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	if n := flaky.calls.Load(); n < 3 {
		t.Errorf("%d authorization calls, want the 2 failures retried", n)
	}
	s.audit()
}

// TestSagaPaymentNeverAnswers: a card network that fails every call leaves the
// authorize step without a reply; after its attempts the saga cancels the order and
// voids whatever may have been authorized unseen.
func TestSagaPaymentNeverAnswers(t *testing.T) {
	s := startSagaShop(t, withFlags("-order-saga-step-timeout", "1s", "-order-saga-step-attempts", "2",
		"-order-saga-backoff", "100ms", "-payment-max-deliver", "1"))
	before := s.stock()
	id := s.place(provider.TokenProcessingError, 1)
	o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_CANCELLED)
	if o.GetCancelReason() != "step authorize_payment did not answer" {
		t.Errorf("cancel reason %q", o.GetCancelReason())
	}
	st, err := s.OrderService().Saga(context.Background(), id)
	if err != nil || st.Attempts[app.StepAuthorizePayment] != 2 || st.UndoAttempts[app.StepAuthorizePayment] < 1 {
		t.Errorf("saga attempts %v, compensations %v (%v), want 2 attempts and the void", st.Attempts, st.UndoAttempts, err)
	}
	if after := s.stock(); after != before {
		t.Errorf("stock %v -> %v, want untouched", before, after)
	}
	s.audit()
}

// TestSagaParticipantRestart stops each participant while the saga waits on it and
// starts it again: the command waits in its work queue and the saga finishes.
func TestSagaParticipantRestart(t *testing.T) {
	s := startSagaShop(t)
	for step := app.StepAuthorizePayment; step <= app.StepCommitInventory; step++ {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		id := s.placeHeldAt(ctx, step)
		if err := s.Start(ctx, stepService[step]); err != nil {
			t.Fatal(err)
		}
		cancel()
		s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	}
	s.audit()
}

// TestSagaOrchestratorRestart stops the order service (the orchestrator) between
// transitions: right after the order is placed, and while a reply is waiting for
// it; the restarted one resumes from the saga log and finishes.
func TestSagaOrchestratorRestart(t *testing.T) {
	s := startSagaShop(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// Placed, then the orchestrator stops at once: the saga may not even be started.
	first := s.place("tok_visa", 1)
	if err := s.Restart(ctx, "order"); err != nil {
		t.Fatal(err)
	}
	s.awaitStatus(first, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)

	// At each step: the orchestrator is down while the participant answers.
	for step := app.StepAuthorizePayment; step <= app.StepCommitInventory; step++ {
		id := s.placeHeldAt(ctx, step)
		if err := s.Stop(ctx, "order"); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx, stepService[step]); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx, "order"); err != nil {
			t.Fatal(err)
		}
		s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	}
	s.audit()
}

// noDedup publishes without Nats-Msg-Id, so JetStream stores a resend and only the
// participant's own deduplication by command id (ce-id) stands between the copy and
// a second effect.
type noDedup struct{ js jetstream.JetStream }

func (p noDedup) Publish(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	msg.Header.Del(jetstream.MsgIDHeader)
	return p.js.PublishMsg(ctx, msg, opts...)
}

func TestSagaDuplicateCommand(t *testing.T) {
	s := startSagaShop(t)
	id := s.place("tok_visa", 1)
	o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	before := s.stock()

	// As order itself would: only its identity may send commands.
	nc, err := s.ConnectNATS(natsauth.Order)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	bus := messaging.New(js, "order", messaging.WithPublisher(noDedup{js}))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// The saga's own capture and commit, sent again with their ids.
	resend := []saga.Command{
		{ID: fmt.Sprintf("%s/%d/1", id, app.StepCapturePayment), Request: saga.Request{Subject: app.SubjectCapturePayment,
			Msg: &paymentv1.CapturePayment{OrderId: id, PaymentId: o.GetPaymentId(), Amount: o.GetTotal()}}},
		{ID: fmt.Sprintf("%s/%d/1", id, app.StepReserveInventory), Request: saga.Request{Subject: app.SubjectReserveInventory,
			Msg: reserveOf(id, s.product.GetId(), 1)}},
	}
	for _, c := range resend {
		c.SagaID = id
		if err := (saga.BusTransport{Bus: bus}).Send(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Then a fresh command behind them on the same queues: once it is answered, the
	// copies (sent before it) were handled.
	other := s.place("tok_visa", 1)
	s.awaitStatus(other, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)

	if p := s.payment(id); p.GetCaptured().GetMinorUnits() != o.GetTotal().GetMinorUnits() {
		t.Errorf("captured %v after a duplicate capture, want %v once", p.GetCaptured(), o.GetTotal())
	}
	if after := s.stock(); after != [3]int64{before[0] - 1, before[1], before[2] + 1} {
		t.Errorf("stock %v -> %v, want only the second order's unit sold", before, after)
	}
	s.audit()
}

func TestSagaUserCancelBeforeShipment(t *testing.T) {
	s := startSagaShop(t)
	before := s.stock()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	id := s.placeHeldAt(ctx, app.StepCreateShipment)
	if _, err := s.orders.CancelOrder(s.ctx, &orderv1.CancelOrderRequest{OrderId: id, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	// The shipment command is still queued: shipping books the parcel when it comes
	// back, and the compensation sent after it cancels it.
	if err := s.Start(ctx, "shipping"); err != nil {
		t.Fatal(err)
	}
	o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_CANCELLED)
	if o.GetCancelReason() != "changed my mind" {
		t.Errorf("cancel reason %q", o.GetCancelReason())
	}
	if p := s.payment(id); p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_VOIDED {
		t.Errorf("payment %v, want voided", p.GetStatus())
	}
	// The shipment compensation is not awaited by the saga; wait for a later order
	// through shipping so the queue behind it drained.
	s.awaitStatus(s.place("tok_visa", 1), orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	if after := s.stock(); after != [3]int64{before[0] - 1, before[1], before[2] + 1} {
		t.Errorf("stock %v -> %v, want only the later order's unit sold", before, after)
	}
	s.audit()
}

func TestSagaUserCancelAfterShipmentRefused(t *testing.T) {
	s := startSagaShop(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	id := s.placeHeldAt(ctx, app.StepCapturePayment)
	if _, err := s.orders.CancelOrder(s.ctx, &orderv1.CancelOrderRequest{OrderId: id}); err == nil {
		t.Error("CancelOrder after the shipment exists succeeded")
	}
	if err := s.Start(ctx, "payment"); err != nil {
		t.Fatal(err)
	}
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	s.audit()
}

func TestAuditorDetectsBrokenState(t *testing.T) {
	s := startSagaShop(t)
	id := s.place("tok_visa", 1)
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	declined := s.place(provider.TokenChargeDeclined, 1)
	s.awaitStatus(declined, orderv1.OrderStatus_ORDER_STATUS_CANCELLED)
	s.audit()

	ctx := context.Background()
	exec := func(db, q string, args ...any) {
		t.Helper()
		conn, err := sqldb.Open(ctx, filepath.Join(s.dataDir, db))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	// A completed order whose capture is gone, and a cancelled one left holding money.
	exec("payment.db", `UPDATE payments SET captured = 0, refunded = 0, status = 1 WHERE order_id = $1`, id)
	exec("order-read.db", `INSERT INTO orders (id, user_id, status, lines, currency, subtotal, shipping, total, address, created_at, updated_at, version)
		VALUES ($1, 'alice', 3, '[]', 'USD', 1, 0, 1, '{}', 0, 0, 3)`, uuid.NewString())
	exec("inventory.db", `UPDATE reservations SET status = 1 WHERE order_id = $1`, id)

	r, err := audit.Run(ctx, audit.DataDir(s.dataDir))
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]bool{}
	for _, v := range r.Violations {
		rules[v.Rule] = true
	}
	for _, want := range []string{audit.RuleCompletedCharge, audit.RuleCompletedStock, audit.RuleNotFinal, audit.RuleStockReserved, audit.RuleStockSold} {
		if !rules[want] {
			t.Errorf("violation %q not reported; got %v", want, r.Violations)
		}
	}

	var out, errOut bytes.Buffer
	err = runAudit(ctx, []string{"-data-dir", s.dataDir}, &out, &errOut)
	if !errors.Is(err, errViolations) || !strings.Contains(out.String(), id) {
		t.Errorf("shopd audit: %v\n%s", err, out.String())
	}
}

func reserveOf(orderID, productID string, qty int32) *inventoryv1.ReserveInventory {
	return &inventoryv1.ReserveInventory{OrderId: orderID, Items: []*commonv1.LineItem{{ProductId: productID, Quantity: qty}}}
}

// TestFlashSale races 500 buyers for 50 units of one product: exactly 50 orders
// complete, the others are cancelled as out of stock, nothing is oversold.
func TestFlashSale(t *testing.T) {
	const buyers, units = 500, 50
	s := startSagaShop(t, withFlags("-inventory-seed-stock", fmt.Sprint(units)))
	start := time.Now()

	ids := make([]string, buyers)
	errs := make(chan error, buyers)
	var wg sync.WaitGroup
	// Every buyer is its own goroutine; the client's bulkhead (64 calls in flight)
	// sheds the excess with ResourceExhausted, and a buyer retries under the same
	// idempotency key, as a real client would.
	for i := range buyers {
		wg.Go(func() {
			key := fmt.Sprintf("flash-%d-%s", i, uuid.NewString())
			var err error
			for attempt := 0; attempt < 100; attempt++ {
				if ids[i], err = s.tryPlaceKeyed("tok_visa", 1, key); err == nil {
					return
				}
				if c := status.Code(err); c != codes.ResourceExhausted && c != codes.Unavailable && c != codes.DeadlineExceeded && c != codes.Aborted {
					break
				}
				time.Sleep(time.Duration(50+rand.IntN(150)) * time.Millisecond)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	placed := time.Since(start)

	byStatus := map[orderv1.OrderStatus]int{}
	reasons := map[string]int{}
	pending := ids
	deadline := time.Now().Add(5 * time.Minute)
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []string
		for _, id := range pending {
			resp, err := s.orders.GetOrder(s.ctx, &orderv1.GetOrderRequest{OrderId: id})
			st := resp.GetOrder().GetStatus()
			if err != nil || (st != orderv1.OrderStatus_ORDER_STATUS_COMPLETED && st != orderv1.OrderStatus_ORDER_STATUS_CANCELLED) {
				still = append(still, id)
				continue
			}
			byStatus[st]++
			reasons[resp.GetOrder().GetCancelReason()]++
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("%d orders placed in %v, all final after %v", buyers, placed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if len(pending) > 0 {
		t.Fatalf("%d orders not final: %v", len(pending), byStatus)
	}
	if byStatus[orderv1.OrderStatus_ORDER_STATUS_COMPLETED] != units || byStatus[orderv1.OrderStatus_ORDER_STATUS_CANCELLED] != buyers-units {
		t.Fatalf("statuses %v, want %d completed and %d cancelled", byStatus, units, buyers-units)
	}
	if n := reasons["out of stock: "+s.product.GetId()]; n != buyers-units {
		t.Errorf("%d cancelled as out of stock, reasons %v", n, reasons)
	}
	if got := s.stock(); got != [3]int64{0, 0, units} {
		t.Errorf("stock %v, want all %d sold", got, units)
	}
	s.audit()
}

// By default the order service's three readers of the order category share one
// subscription; with -order-shared-read=false each has its own, and orders complete
// and cancel as with the default, and the watches see them end.
func TestSagaWithoutSharedRead(t *testing.T) {
	s := startSagaShop(t, withFlags("-order-shared-read=false"))
	s.completeAndCancel()
	s.audit()
}

// completeAndCancel places an order that completes and one whose payment is
// declined, and checks that each one's watch ends it so and its saga is over.
func (s *sagaShop) completeAndCancel() {
	s.t.Helper()
	ok := s.place("tok_visa", 1)
	declined := s.place(provider.TokenChargeDeclined, 1)
	for id, want := range map[string]orderv1.OrderStatus{
		ok:       orderv1.OrderStatus_ORDER_STATUS_COMPLETED,
		declined: orderv1.OrderStatus_ORDER_STATUS_CANCELLED,
	} {
		seen := s.watchFinal(id)
		if got := seen[len(seen)-1].GetStatus(); got != want {
			s.t.Errorf("order %s ended %v, want %v", id, got, want)
		}
		if st, err := s.OrderService().Saga(context.Background(), id); err != nil || !st.Status.Final() {
			s.t.Errorf("saga of %s: %+v, %v", id, st, err)
		}
	}
}

// -event-store chooses where the order streams and their saga logs live; on the
// in-memory store (the conformance suite's reference backend) the shop completes
// and cancels orders as on JetStream, and a value it cannot use stops the start
// with the flag's name.
func TestSagaOnTheMemoryEventStore(t *testing.T) {
	s := startSagaShop(t, withFlags("-event-store", "memory"))
	if got := s.Order.EventStore; got != "memory" {
		t.Fatalf("order's event store %q after -event-store memory", got)
	}
	s.completeAndCancel()
	s.audit()
	// Nothing of the orders went to JetStream's event store.
	if _, err := s.operatorJetStream().Stream(context.Background(), eventstore.DefaultStreamPrefix+"order"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("JetStream's order event stream: %v, want none with -event-store memory", err)
	}

	m := NewMain()
	m.Stdout, m.Stderr = io.Discard, io.Discard
	args := append(shopArgs(t.TempDir(), "127.0.0.1:0"), "-event-store", "mysql://nope")
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "event-store") {
		t.Fatalf("start with -event-store mysql://nope: %v", err)
	}
}
