package inventory

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// registerMetrics publishes the held reservations as gauges, read from the database
// at each scrape, so a growing backlog (a saga stuck before commit or release, or a
// sweeper that stopped) shows without any counter drifting from the truth.
func (s *Service) registerMetrics() error {
	m := otel.Meter("github.com/eventshop/eventshop/services/inventory")
	held, err := m.Int64ObservableGauge("inventory.reservations.outstanding",
		metric.WithDescription("reservations held: neither committed, released nor expired"))
	if err != nil {
		return err
	}
	units, err := m.Int64ObservableGauge("inventory.reservations.outstanding_units",
		metric.WithDescription("units held by outstanding reservations"))
	if err != nil {
		return err
	}
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		n, u, err := s.store.Outstanding(ctx)
		if err != nil {
			return err
		}
		attrs := metric.WithAttributes(attribute.String("service", "inventory"))
		o.ObserveInt64(held, n, attrs)
		o.ObserveInt64(units, u, attrs)
		return nil
	}, held, units)
	if err != nil {
		return err
	}
	s.shell.OnClose(reg.Unregister)
	return nil
}
