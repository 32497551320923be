package order

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/services/order/projection"
)

// changeRelay carries the read model's committed changes between the instances that
// share it. Each projects only the partitions it leases, yet serves watches of any
// order, so its projector publishes what it committed on a core NATS subject (order
// ids, one per line; "*" for all) and every instance, itself included, feeds what
// it hears into its hub.
//
// Core NATS delivers at most once: a notification published while an instance was
// disconnected is lost to it. After each reconnect the relay therefore notifies every
// watcher of the instance, which re-reads its order; a lost notification costs a
// re-read, never a watch that hangs on a finished order.
type changeRelay struct {
	nc      *nats.Conn
	subject string
	hub     *projection.Hub
	sub     *nats.Subscription
	log     *slog.Logger
}

var _ projection.Notifier = (*changeRelay)(nil)

// newChangeRelay subscribes hub to subject on nc. It returns the subscription error.
func newChangeRelay(nc *nats.Conn, subject string, hub *projection.Hub, log *slog.Logger) (*changeRelay, error) {
	r := &changeRelay{nc: nc, subject: subject, hub: hub, log: log}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if string(m.Data) == "*" {
			hub.PublishAll()
			return
		}
		hub.Notify(strings.Split(string(m.Data), "\n")...)
	})
	if err != nil {
		return nil, fmt.Errorf("changes relay: subscribe %s: %w", subject, err)
	}
	r.sub = sub
	return r, nil
}

// Publish implements projection.Notifier. Only the ids of orders whose shown state
// changed travel, once each: the watchers that hear them re-read the row.
func (r *changeRelay) Publish(changes ...projection.Change) {
	seen := make(map[string]bool, len(changes))
	var ids []string
	for _, c := range changes {
		if c.Shown && !seen[c.OrderID] {
			seen[c.OrderID] = true
			ids = append(ids, c.OrderID)
		}
	}
	if len(ids) > 0 {
		r.send(strings.Join(ids, "\n"))
	}
}

// PublishAll implements projection.Notifier.
func (r *changeRelay) PublishAll() { r.send("*") }

func (r *changeRelay) send(data string) {
	if err := r.nc.Publish(r.subject, []byte(data)); err != nil {
		// Watchers of those orders are told at the next reconnect, or by the next
		// change; the projection itself lost nothing.
		r.log.Warn("order changes not relayed", "error", err)
	}
}

// watchReconnects notifies every watcher after each reconnect of nc, until ctx ends.
// It reads a counter of the connection each second; no query runs.
func (r *changeRelay) watchReconnects(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	seen := r.nc.Stats().Reconnects
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := r.nc.Stats().Reconnects; n != seen {
			seen = n
			r.hub.PublishAll()
		}
	}
}

func (r *changeRelay) close() { _ = r.sub.Unsubscribe() }
