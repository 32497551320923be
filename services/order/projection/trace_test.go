package projection

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/pkg/telemetry/telemetrytest"
	"github.com/eventshop/eventshop/services/order/domain"
)

// An event appended with trace context is projected inside a span of that trace, so a
// placed order's trace reaches the read model; events caught up on get no span.
func TestLiveEventsAreProjectedInTheirTrace(t *testing.T) {
	rec := telemetrytest.Start(t, "order")
	db := sqltest.Open(t, sqldb.SQLite)
	ctx := testCtx(t)
	store := &countingStore{Store: eventstore.NewMemory(), subscribed: make(chan struct{})}
	rng := rand.New(rand.NewPCG(3, 3))

	// Already stored before the projector starts: caught up on, not traced.
	old := orderID(rng, 0)
	octx, oldSpan := otel.Tracer("test").Start(ctx, "old order")
	pos := appendTraced(octx, t, store, old, 1, history(t, rng, old, "user-1")[0])
	oldSpan.End()

	p := newTestProjector(t, db, store)
	runCtx, cancel := context.WithCancel(telemetry.NewContext(context.Background(), rec.Telemetry()))
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	r := &running{Projector: p, cancel: cancel, done: done}
	r.waitFor(t, pos)
	// Caught up and following: what is appended now arrives live. (Reaching pos
	// alone is not enough; the catch-up may still read the next event itself.)
	<-store.subscribed

	id := orderID(rng, 1)
	placed := history(t, rng, id, "user-1")[0]
	tctx, place := otel.Tracer("test").Start(ctx, "place order")
	r.waitFor(t, appendTraced(tctx, t, store, id, 1, placed))
	place.End()

	spans := rec.WaitFor(t, func(s telemetrytest.Spans) bool { return len(s.Named("place order")) == 1 })
	projected := spans.WithPrefix("project ")
	if len(projected) != 1 {
		t.Fatalf("want one projection span (the live event), got %d:\n%s", len(projected), spans.Tree())
	}
	telemetrytest.RequireChildOf(t, projected[0], telemetrytest.RequireSpan(t, spans, "place order"))
	if want := "project " + domain.EventType(placed); projected[0].Name != want {
		t.Errorf("span name = %q, want %q", projected[0].Name, want)
	}
}

// appendTraced stores e as version v of orderID's stream with the trace context of
// ctx in its metadata, as the write side does, and returns the category head.
func appendTraced(ctx context.Context, t testing.TB, s eventstore.Store, orderID string, v int, e domain.Event) eventstore.Position {
	t.Helper()
	data, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(md))
	if _, err := s.Append(ctx, Category+"-"+orderID, eventstore.Version(v-1), eventstore.Event{
		ID: fmt.Sprintf("%s-%d", orderID, v), Type: domain.EventType(e), Data: data, Time: epoch, Metadata: md,
	}); err != nil {
		t.Fatal(err)
	}
	return head(ctx, t, s)
}
