package messaging_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/poll"
)

// A message no handler could process is listed with why, where it came from and how
// often it was tried; replayed once the handler is fixed, it is handled under its
// own id (the replay is a new stream message, not dropped as a duplicate), and it
// leaves the dead-letter stream. Dropping removes one for good.
func TestDeadLettersListReplayDrop(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var broken atomic.Bool
	broken.Store(true)
	var mu sync.Mutex
	handled := map[string]int{}
	c, err := e.bus.NewConsumer(ctx, fastConfig("payment-commands", "cmd.payment.>"),
		messaging.Handle(func(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) error {
			if broken.Load() {
				return messaging.Permanent(errors.New("card network adapter broken"))
			}
			mu.Lock()
			handled[m.ID]++
			mu.Unlock()
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)

	first, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "", authorize())
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "", authorize())
	if err != nil {
		t.Fatal(err)
	}
	dls := messaging.NewDeadLetters(e.js)
	var list []messaging.DeadLetter
	poll.Until(t, "two dead letters", func() bool {
		list, err = dls.List(ctx, 0)
		return err == nil && len(list) == 2
	})
	if n := deadLetterGauge(t, dls); n != 2 {
		t.Errorf("messaging.dead_letters = %d, want 2", n)
	}
	// The two may be dead-lettered in either order.
	dl, other := list[0], list[1]
	if dl.ID != first {
		dl, other = other, dl
	}
	if dl.ID != first || dl.Subject != "cmd.payment.authorize" || dl.Consumer != "payment-commands" ||
		!strings.Contains(dl.Error, "adapter broken") || dl.Deliveries < 1 || dl.Type != "eventshop.payment.v1.AuthorizePayment" {
		t.Fatalf("dead letter = %+v", dl)
	}
	if got, err := dls.Get(ctx, dl.Seq); err != nil || got.ID != first {
		t.Fatalf("Get(%d) = %+v, %v", dl.Seq, got, err)
	}
	if _, err := dls.Get(ctx, 9999); !errors.Is(err, messaging.ErrNoDeadLetter) {
		t.Errorf("Get(9999) = %v, want ErrNoDeadLetter", err)
	}

	broken.Store(false)
	if _, err := dls.Replay(ctx, dl.Seq); err != nil {
		t.Fatalf("replay: %v", err)
	}
	poll.Until(t, "the replay handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled[first] == 1
	})
	if _, err := dls.Replay(ctx, dl.Seq); !errors.Is(err, messaging.ErrNoDeadLetter) {
		t.Errorf("second replay of one dead letter = %v, want ErrNoDeadLetter", err)
	}

	if err := dls.Drop(ctx, other.Seq); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if err := dls.Drop(ctx, other.Seq); !errors.Is(err, messaging.ErrNoDeadLetter) {
		t.Errorf("second drop = %v, want ErrNoDeadLetter", err)
	}
	if left, err := dls.List(ctx, 0); err != nil || len(left) != 0 {
		t.Fatalf("dead letters left: %+v, %v", left, err)
	}
	if n := deadLetterGauge(t, dls); n != 0 {
		t.Errorf("messaging.dead_letters = %d after the replay and the drop, want 0", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if handled[second] != 0 || handled[first] != 1 {
		t.Errorf("handled %v: want the replayed one once and the dropped one never", handled)
	}
}

// deadLetterGauge collects messaging.dead_letters once.
func deadLetterGauge(t *testing.T, dls *messaging.DeadLetters) int64 {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	reg, err := dls.ObserveDepth(mp)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "messaging.dead_letters" && len(g.DataPoints) == 1 {
				return g.DataPoints[0].Value
			}
		}
	}
	t.Fatalf("no messaging.dead_letters in %+v", rm)
	return 0
}
