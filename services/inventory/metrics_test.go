package inventory_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/inventory"
	"github.com/eventshop/eventshop/services/inventory/app"
)

// gauge returns the last value of an int64 gauge, or -1 when it was not reported.
func gauge(t *testing.T, r *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == name && len(g.DataPoints) > 0 {
				return g.DataPoints[0].Value
			}
		}
	}
	return -1
}

func TestOutstandingReservationsGauge(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	h := start(t, sqltest.Open(t, sqldb.SQLite), inventory.Config{SeedStock: 10}, nil)
	if got := gauge(t, reader, "inventory.reservations.outstanding"); got != 0 {
		t.Fatalf("outstanding before any order = %d, want 0", got)
	}
	decode(t, h.do(t, app.SubjectReserve, "m-res-1", reserve(order1, "mug", 3, "kettle", 2)), &inventoryv1.InventoryReserved{})
	decode(t, h.do(t, app.SubjectReserve, "m-res-2", reserve(order2, "mug", 1)), &inventoryv1.InventoryReserved{})
	if got := gauge(t, reader, "inventory.reservations.outstanding"); got != 2 {
		t.Fatalf("outstanding = %d, want 2", got)
	}
	if got := gauge(t, reader, "inventory.reservations.outstanding_units"); got != 6 {
		t.Fatalf("outstanding units = %d, want 6", got)
	}
	decode(t, h.do(t, app.SubjectCommit, "m-com-1", &inventoryv1.CommitReservation{OrderId: order1}), &inventoryv1.ReservationCommitted{})
	decode(t, h.do(t, app.SubjectRelease, "m-rel-2", &inventoryv1.ReleaseInventory{OrderId: order2}), &inventoryv1.InventoryReleased{})
	if got := gauge(t, reader, "inventory.reservations.outstanding"); got != 0 {
		t.Fatalf("outstanding after commit and release = %d, want 0", got)
	}
}
