package projection

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/money"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/order/domain"
)

// instrumentation names the projector's tracer and meter.
const instrumentation = "github.com/eventshop/eventshop/services/order/projection"

// Category is the event-store category the projector reads: streams "order-<id>".
const Category = "order"

// DefaultBatchSize is how many stored events one catch-up transaction applies.
const DefaultBatchSize = 500

// errCheckpointMoved reports that the stored checkpoint is not the one this projector
// last wrote: a Rebuild swapped the tables in. The projector reloads and resumes.
var errCheckpointMoved = errors.New("projection: checkpoint moved under the projector")

// Projector folds the order category into the read models. Each transaction applies
// one or more events and moves the checkpoint to the last of them, so a crash at any
// point neither skips nor repeats an event; on top of that every order row carries
// the aggregate version and an event applies only to version-1, so a repeat is a no-op
// anyway. A Projector is safe for concurrent use; Run it once.
type Projector struct {
	db        *sqldb.DB
	store     eventstore.Store
	name      string
	t         tables
	sql       applySQL
	batchSize int
	log       *slog.Logger
	meter     metric.MeterProvider
	now       func() time.Time
	decode    func(eventstore.Event) (domain.Event, error)
	hub       Notifier
	// parts is the number of partitions of the category among instances
	// (RunPartitions); owned maps each partition of the current RunPartitions to its
	// checkpoint, and is nil in a plain Run, which projects every partition under
	// one checkpoint. Only the projector's own goroutine touches owned.
	parts int
	owned map[int]eventstore.Position

	// changes collects, during one applyBatch, the updates of order rows that the
	// hub hands to watchers after the commit. A projector applies one batch at a
	// time.
	changes []Change
	// sales collects, during one applyBatch, what its completed orders add to
	// sales_by_product. They are written at the end of the transaction in key order:
	// instances projecting different partitions share those rows, and two batches
	// that updated them in event order (one X then Y, the other Y then X) deadlocked.
	sales map[saleKey]*saleSum

	// beforeCommit, when set (tests only), runs after the read-model writes of a
	// transaction and before its commit; an error rolls the transaction back.
	beforeCommit func(evs []eventstore.Event) error

	gauge metric.Registration

	mu       sync.Mutex
	pos      eventstore.Position
	lastTime time.Time // time of the event at pos
	advanced chan struct{}
	unknown  map[string]bool
	applied  int64
}

// Option configures NewProjector.
type Option func(*Projector)

// WithName sets the checkpoint name (DefaultName by default). Changing it replays
// the whole category into the same tables, which the version check makes harmless
// but slow: rename deliberately.
func WithName(name string) Option { return func(p *Projector) { p.name = name } }

// WithBatchSize sets how many events a catch-up transaction applies (DefaultBatchSize).
func WithBatchSize(n int) Option { return func(p *Projector) { p.batchSize = n } }

// WithLogger sets the logger (slog.Default() by default).
func WithLogger(l *slog.Logger) Option { return func(p *Projector) { p.log = l } }

// WithDecoder sets how stored events become domain events. The write side's codec
// (app.NewCodec().Decode) must be used wherever upcasters exist, so that old payloads
// are lifted to the current schema here exactly as when the aggregate loads; the
// default only unmarshals the current schema.
func WithDecoder(d func(eventstore.Event) (domain.Event, error)) Option {
	return func(p *Projector) { p.decode = d }
}

// Notifier is told what the projector committed: a *Hub, or a relay to the hubs of
// every instance that shares the read model.
type Notifier interface {
	// Publish tells of the updates of order rows one committed transaction made, in
	// the order made; a Change with Shown false only moved an order's version.
	Publish(changes ...Change)
	// PublishAll tells of a change that may touch any order (a Rebuild's tables).
	PublishAll()
}

// WithHub makes the projector publish to h the changes of order rows each committed
// transaction made, and tell every subscriber to re-read when a Rebuild swapped
// the tables.
func WithHub(h Notifier) Option { return func(p *Projector) { p.hub = h } }

// WithMeterProvider sets where the lag gauge is registered (the global provider by default).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(p *Projector) { p.meter = mp } }

// NewProjector returns a projector of store's order category into db. It registers
// the observable gauge projection.lag.seconds (attribute projection=<name>) and
// returns the error of that registration. It panics on a nil db or store: that is a
// wiring mistake.
func NewProjector(db *sqldb.DB, store eventstore.Store, opts ...Option) (*Projector, error) {
	p := newProjector(db, store, liveTables, opts...)
	meter := p.meter
	if meter == nil {
		meter = otel.GetMeterProvider()
	}
	m := meter.Meter(instrumentation)
	gauge, err := m.Float64ObservableGauge("projection.lag.seconds",
		metric.WithDescription("Age of the oldest event the read model has not applied yet; 0 when caught up."),
		metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("projection: lag gauge: %w", err)
	}
	attrs := metric.WithAttributes(attribute.String("projection", p.name))
	p.gauge, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		lag, err := p.Lag(ctx)
		if err != nil {
			return nil // no observation beats a wrong one
		}
		o.ObserveFloat64(gauge, lag.Behind.Seconds(), attrs)
		return nil
	}, gauge)
	if err != nil {
		return nil, fmt.Errorf("projection: register lag gauge: %w", err)
	}
	return p, nil
}

// Close stops reporting the lag gauge; call it when the projector is done. It returns
// the error of unregistering.
func (p *Projector) Close() error {
	if p.gauge != nil {
		return p.gauge.Unregister()
	}
	return nil
}

// applySQL is the text of the statements that apply events to one set of tables,
// built once per projector. update statements are built per event type from
// updateSQL, a handful of shapes.
type applySQL struct {
	insertPlaced, version, bump, lines, countSale, saveCheckpoint string
}

func newApplySQL(t tables) applySQL {
	s := t.sales
	return applySQL{
		insertPlaced: `INSERT INTO ` + t.orders + ` (id, user_id, status, lines, currency, subtotal, shipping, total, address, created_at, updated_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)
ON CONFLICT (id) DO NOTHING`,
		version: `SELECT version FROM ` + t.orders + ` WHERE id = $1`,
		bump:    `UPDATE ` + t.orders + ` SET version = $1, updated_at = $2 WHERE id = $3 AND version = $4`,
		lines:   `SELECT lines FROM ` + t.orders + ` WHERE id = $1`,
		countSale: `INSERT INTO ` + s + ` (product_id, currency, name, units, revenue, order_count)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (product_id, currency) DO UPDATE SET
	name = excluded.name, units = ` + s + `.units + excluded.units,
	revenue = ` + s + `.revenue + excluded.revenue, order_count = ` + s + `.order_count + excluded.order_count`,
		// The guard on the old position catches a Rebuild that swapped tables and
		// checkpoint in since this projector last looked.
		saveCheckpoint: `UPDATE projection_checkpoints SET position = $1, updated_at = $2
WHERE name = $3 AND position = $4`,
	}
}

func newProjector(db *sqldb.DB, store eventstore.Store, t tables, opts ...Option) *Projector {
	if db == nil || store == nil {
		panic("projection: nil db or store")
	}
	p := &Projector{
		db: db, store: store, name: DefaultName, t: t, batchSize: DefaultBatchSize,
		sql: newApplySQL(t),
		log: slog.Default(), now: time.Now, decode: decode,
		advanced: make(chan struct{}), unknown: map[string]bool{},
	}
	for _, o := range opts {
		o(p)
	}
	if p.batchSize <= 0 {
		p.batchSize = DefaultBatchSize
	}
	return p
}

// Run migrates the schema, resumes from the stored checkpoint, catches up in batches
// and then follows new events until ctx ends, when it returns nil. It returns the
// error of the migration, the event store or the database; an event that cannot be
// decoded is logged and skipped, never fatal.
func (p *Projector) Run(ctx context.Context) error {
	if err := Migrate(ctx, p.db); err != nil {
		return err
	}
	for {
		err := p.run(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errCheckpointMoved):
			p.log.InfoContext(ctx, "projection checkpoint moved, resuming from it", "projection", p.name, "partitions", slices.Sorted(maps.Keys(p.owned)))
			if p.hub != nil {
				// Rebuilt tables may be ahead of what watchers last read.
				p.hub.PublishAll()
			}
			continue
		}
		return err
	}
}

// RunPartitions is Run for an instance that shares the read model with others and
// projects only the partitions owned (of parts; see pkg/partition), each under a
// checkpoint of its own ("<name>#<partition>"), so that partitions move between
// instances without an event skipped or applied on top of another instance's work.
// A partition's checkpoint is created, the first time, at the plain checkpoint's
// position: a service that ran one instance projecting everything goes on from
// there. Events of other partitions are read and skipped. Call it with the owned
// set each time that changes (cancelling the previous call first); with an empty
// set it waits for ctx to end.
func (p *Projector) RunPartitions(ctx context.Context, parts int, owned []int) error {
	if parts < 1 {
		return fmt.Errorf("projection: %d partitions", parts)
	}
	if len(owned) == 0 {
		<-ctx.Done()
		return nil
	}
	p.parts = parts
	p.owned = map[int]eventstore.Position{} // checkpoints filled in by run
	for _, k := range owned {
		p.owned[k] = 0
	}
	defer func() { p.owned = nil }()
	return p.Run(ctx)
}

// mine reports whether e is for this run to apply: every event in a plain Run; in
// RunPartitions, an event of an owned partition after that partition's checkpoint.
func (p *Projector) mine(e eventstore.Event) bool {
	if p.owned == nil {
		return true
	}
	cp, ok := p.owned[eventstore.Partition(e.Stream, p.parts)]
	return ok && e.Position > cp
}

// partitionName is the checkpoint name of partition k.
func (p *Projector) partitionName(k int) string { return p.name + "#" + strconv.Itoa(k) }

func (p *Projector) run(ctx context.Context) error {
	pos, err := p.loadCheckpoint(ctx)
	if err != nil {
		return err
	}
	if p.owned != nil {
		if pos, err = p.loadPartitionCheckpoints(ctx, pos); err != nil {
			return err
		}
	}
	p.setPosition(pos, time.Time{})
	if _, err := p.catchUp(ctx, nil); err != nil {
		return err
	}
	return p.follow(ctx)
}

// follow applies new events as they arrive. Whatever arrives while one transaction
// commits goes into the next (up to the batch size): on PostgreSQL a commit waits
// for its WAL flush, and one per event would make that flush the projection's
// throughput limit, and its lag the order's, under load. A failed batch ends the
// run, which resumes from the stored checkpoint, so nothing handed over is lost.
func (p *Projector) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	arrived := make(chan eventstore.Event, p.batchSize)
	subscribed := make(chan error, 1)
	go func() {
		subscribed <- p.store.SubscribeCategory(ctx, Category, p.Position(), func(ctx context.Context, e eventstore.Event) error {
			select {
			case arrived <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	live := context.WithValue(ctx, liveKey{}, true)
	for {
		var batch []eventstore.Event
		select {
		case e := <-arrived:
			batch = append(batch, e)
		case err := <-subscribed:
			return err
		}
	more:
		for len(batch) < p.batchSize {
			select {
			case e := <-arrived:
				batch = append(batch, e)
			default:
				break more
			}
		}
		if err := p.applyRead(live, batch); err != nil {
			cancel()
			<-subscribed
			return err
		}
	}
}

// catchUp applies stored events in batches until none are left and returns how many
// it read; progress, when set, is called after each batch.
func (p *Projector) catchUp(ctx context.Context, progress func(n int)) (int, error) {
	total := 0
	for {
		evs, err := p.store.ReadCategory(ctx, Category, p.Position(), p.batchSize)
		if err != nil {
			return total, fmt.Errorf("projection: read %s: %w", Category, err)
		}
		if len(evs) == 0 {
			return total, nil
		}
		if err := p.applyRead(ctx, evs); err != nil {
			return total, err
		}
		total += len(evs)
		if progress != nil {
			progress(total)
		}
	}
}

// loadCheckpoint returns the stored position, creating the checkpoint row at Start.
func (p *Projector) loadCheckpoint(ctx context.Context) (eventstore.Position, error) {
	var pos int64
	err := p.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2)
ON CONFLICT (name) DO NOTHING`, p.name, p.now().UnixNano()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, p.name).Scan(&pos)
	})
	if err != nil {
		return 0, fmt.Errorf("projection: load checkpoint %s: %w", p.name, err)
	}
	return eventstore.Position(pos), nil
}

// applyRead applies the events of read (the next ones of the category, in order)
// that are this run's (mine) and moves the position past all of them: the others
// are other partitions', and everything before them has been applied. It filters
// read in place.
func (p *Projector) applyRead(ctx context.Context, read []eventstore.Event) error {
	last := read[len(read)-1]
	if evs := slices.DeleteFunc(read, func(e eventstore.Event) bool { return !p.mine(e) }); len(evs) > 0 {
		if err := p.applyBatch(ctx, evs); err != nil {
			return err
		}
	}
	if p.Position() < last.Position {
		p.setPosition(last.Position, last.Time)
	}
	return nil
}

// loadPartitionCheckpoints loads the checkpoint of each owned partition into
// p.owned, creating a missing one at base (the plain checkpoint), and returns the
// lowest: the position to read the category from.
func (p *Projector) loadPartitionCheckpoints(ctx context.Context, base eventstore.Position) (eventstore.Position, error) {
	err := p.db.InTx(ctx, func(tx *sql.Tx) error {
		for k := range p.owned {
			if _, err := tx.ExecContext(ctx, `INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING`, p.partitionName(k), int64(base), p.now().UnixNano()); err != nil {
				return err
			}
			var pos int64
			if err := tx.QueryRowContext(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, p.partitionName(k)).Scan(&pos); err != nil {
				return err
			}
			p.owned[k] = eventstore.Position(pos)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("projection: load partition checkpoints %s: %w", p.name, err)
	}
	return slices.Min(slices.Collect(maps.Values(p.owned))), nil
}

// touched returns the partitions of evs in RunPartitions, nil in a plain Run.
func (p *Projector) touched(evs []eventstore.Event) []int {
	if p.owned == nil {
		return nil
	}
	set := map[int]bool{}
	for _, e := range evs {
		set[eventstore.Partition(e.Stream, p.parts)] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// saveCheckpoints moves the checkpoint past the batch evs, inside its transaction:
// the one checkpoint from from, or in RunPartitions that of each partition the
// batch touched (touched), from where it was. A checkpoint not where this projector left it
// (a Rebuild swapped the tables in, or another instance took the partition over and
// moved on) fails the batch with errCheckpointMoved.
func (p *Projector) saveCheckpoints(ctx context.Context, tx *sql.Tx, from eventstore.Position, evs []eventstore.Event, touched []int) error {
	last := int64(evs[len(evs)-1].Position)
	now := p.now().UnixNano()
	guarded := func(name string, from eventstore.Position) error {
		res, err := tx.ExecContext(ctx, p.sql.saveCheckpoint, last, now, name, int64(from))
		if err != nil {
			return fmt.Errorf("projection: save checkpoint: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errCheckpointMoved
		}
		return nil
	}
	if p.owned == nil {
		return guarded(p.name, from)
	}
	for _, k := range touched {
		if err := guarded(p.partitionName(k), p.owned[k]); err != nil {
			return err
		}
	}
	return nil
}

// applyBatch applies evs, which follow the current position, in one transaction that
// also moves the checkpoint from the current position to the last event's.
func (p *Projector) applyBatch(ctx context.Context, evs []eventstore.Event) error {
	from := p.Position()
	last := evs[len(evs)-1]
	touched := p.touched(evs)
	// Each event is decoded once: the look-ahead below and apply both need it.
	decoded := make([]decodedEvent, len(evs))
	for i, e := range evs {
		decoded[i].ev, decoded[i].err = p.decode(e)
	}
	err := p.db.InTx(ctx, func(tx *sql.Tx) error {
		p.changes = p.changes[:0] // again on a retried transaction
		p.sales = map[saleKey]*saleSum{}
		for i := 0; i < len(evs); i++ {
			e := evs[i]
			// Saga steps that change nothing the order shows, right behind this
			// event in its stream, ride along in its row update: most of an order's
			// transitions arrive in such runs (a step's completion with the next
			// step's start), and a statement per event was most of the projector's
			// cost.
			through := e
			d := decoded[i]
			for i+1 < len(evs) && evs[i+1].Stream == e.Stream && evs[i+1].Version == through.Version+1 && decoded[i+1].passes() {
				i++
				through = evs[i]
			}
			if err := p.applyTraced(ctx, tx, e, d, through); err != nil {
				return fmt.Errorf("projection: apply %s v%d (%s): %w", e.Stream, e.Version, e.Type, err)
			}
		}
		if err := p.writeSales(ctx, tx); err != nil {
			return err
		}
		if err := p.saveCheckpoints(ctx, tx, from, evs, touched); err != nil {
			return err
		}
		if p.beforeCommit != nil {
			return p.beforeCommit(evs)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range touched {
		p.owned[k] = last.Position
	}
	p.mu.Lock()
	p.applied += int64(len(evs))
	p.mu.Unlock()
	if p.hub != nil && len(p.changes) > 0 {
		// After the commit, so a watcher that re-reads finds the change; before the
		// position moves, so whoever waits for the position (WaitFor) finds the
		// watchers already told.
		p.hub.Publish(p.changes...)
	}
	p.setPosition(last.Position, last.Time)
	return nil
}

func (p *Projector) setPosition(pos eventstore.Position, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pos, p.lastTime = pos, t
	close(p.advanced)
	p.advanced = make(chan struct{})
}

// Position returns the checkpoint of the last applied event.
func (p *Projector) Position() eventstore.Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos
}

// WaitFor blocks until the projector has applied the event at pos (or a later one),
// so a caller can read its own write (and the watchers of what it changed have been
// told). It returns ctx.Err() if ctx ends first.
func (p *Projector) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for {
		p.mu.Lock()
		cur, ch := p.pos, p.advanced
		p.mu.Unlock()
		if cur >= pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Lag says how far the read model is behind the event store.
type Lag struct {
	// Behind is the age of the oldest event not applied yet, zero when caught up:
	// the read model reflects everything that happened before now-Behind.
	Behind time.Duration
	// Position is the checkpoint of the last applied event.
	Position eventstore.Position
	// LastEventTime is the time of the last event applied by this process (zero
	// before the first).
	LastEventTime time.Time
	// Applied counts the events this process applied.
	Applied int64
}

// Lag reports the projector's lag. It reads one event from the store and returns the
// store's error.
func (p *Projector) Lag(ctx context.Context) (Lag, error) {
	p.mu.Lock()
	l := Lag{Position: p.pos, LastEventTime: p.lastTime, Applied: p.applied}
	p.mu.Unlock()
	next, err := p.store.ReadCategory(ctx, Category, l.Position, 1)
	if err != nil {
		return l, fmt.Errorf("projection: lag: %w", err)
	}
	if len(next) > 0 {
		l.Behind = max(p.now().Sub(next[0].Time), 0)
	}
	return l, nil
}

// liveKey marks the context of events applied as they arrive, not caught up on.
type liveKey struct{}

// applyTraced applies e inside a span that continues the trace e was written in (the
// W3C trace context in its metadata), so an order's trace reaches its read model. Only
// events applied as they arrive get a span: catching up or rebuilding would add spans
// to long-finished traces, one per stored event. Events without trace context get none.
func (p *Projector) applyTraced(ctx context.Context, tx *sql.Tx, e eventstore.Event, d decodedEvent, through eventstore.Event) error {
	if ctx.Value(liveKey{}) == nil {
		return p.apply(ctx, tx, e, d, through)
	}
	parent := otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(e.Metadata))
	if !trace.SpanContextFromContext(parent).IsRemote() {
		return p.apply(ctx, tx, e, d, through)
	}
	ctx, span := otel.Tracer(instrumentation).Start(parent, "project "+e.Type, trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	if span.IsRecording() { // unsampled events are most: no attributes to build for them
		span.SetAttributes(
			attribute.String("db.system.name", dbSystem(p.db.Dialect)),
			attribute.String("db.operation.name", "apply"),
			attribute.String("projection", p.name),
			attribute.String("eventstore.stream", e.Stream),
			attribute.Int64("eventstore.version", int64(e.Version)),
		)
	}
	err := p.apply(ctx, tx, e, d, through)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "apply failed")
	}
	return err
}

// dbSystem is the OpenTelemetry db.system.name of a dialect.
func dbSystem(d sqldb.Dialect) string {
	if d == sqldb.Postgres {
		return "postgresql"
	}
	return string(d)
}

// decodedEvent is an event as the projector's decoder read it.
type decodedEvent struct {
	ev  domain.Event
	err error
}

// passes reports whether the event is a step of the order's saga that changes
// nothing the order shows.
func (d decodedEvent) passes() bool { return d.err == nil && d.ev == nil }

// apply folds one event into the read model inside tx, leaving the order's row at the
// version of through: e, or the last of the passing events after it (see applyBatch).
func (p *Projector) apply(ctx context.Context, tx *sql.Tx, e eventstore.Event, d decodedEvent, through eventstore.Event) error {
	_, orderID, err := eventstore.ParseStream(e.Stream)
	if err != nil {
		return err
	}
	ev, err := d.ev, d.err
	if err != nil {
		// A type this version does not know (written by a newer one) or a payload
		// it cannot read: the order's version still moves on, or every later
		// event of the order would be refused.
		p.logUnknown(ctx, e, err)
		_, err := p.update(ctx, tx, orderID, e, through, false)
		return err
	}
	switch ev := ev.(type) {
	case nil:
		// A step of the order's saga that changes nothing the order shows.
		_, err = p.update(ctx, tx, orderID, e, through, false)
	case *orderv1.OrderPlaced:
		return p.insertPlaced(ctx, tx, orderID, e, through, ev)
	case *orderv1.OrderPaymentAuthorized:
		_, err = p.update(ctx, tx, orderID, e, through, true,
			setStatus(orderv1.OrderStatus_ORDER_STATUS_PAYMENT_AUTHORIZED), setText(colPaymentID, ev.GetPaymentId()))
	case *orderv1.OrderInventoryReserved:
		_, err = p.update(ctx, tx, orderID, e, through, true, setStatus(orderv1.OrderStatus_ORDER_STATUS_INVENTORY_RESERVED))
	case *orderv1.OrderShipmentCreated:
		_, err = p.update(ctx, tx, orderID, e, through, true, setStatus(orderv1.OrderStatus_ORDER_STATUS_SHIPMENT_CREATED),
			setText(colShipmentID, ev.GetShipmentId()), setText(colTrackingID, ev.GetTrackingId()))
	case *orderv1.OrderPaymentCaptured:
		_, err = p.update(ctx, tx, orderID, e, through, true, setStatus(orderv1.OrderStatus_ORDER_STATUS_PAYMENT_CAPTURED))
	case *orderv1.OrderCancelling:
		_, err = p.update(ctx, tx, orderID, e, through, true, setStatus(orderv1.OrderStatus_ORDER_STATUS_CANCELLING),
			setText(colCancelReason, ev.GetReason()))
	case *orderv1.OrderCancelled:
		// The reason recorded when cancelling started stands unless this one says more.
		set := []assignment{setStatus(orderv1.OrderStatus_ORDER_STATUS_CANCELLED)}
		if ev.GetReason() != "" {
			set = append(set, setText(colCancelReason, ev.GetReason()))
		}
		_, err = p.update(ctx, tx, orderID, e, through, true, set...)
	case *orderv1.OrderCompleted:
		var ok bool
		ok, err = p.update(ctx, tx, orderID, e, through, true, setStatus(orderv1.OrderStatus_ORDER_STATUS_COMPLETED))
		if err == nil && ok {
			err = p.countSale(ctx, tx, orderID)
		}
	default:
		p.logUnknown(ctx, e, errors.New("no read-model mapping"))
		_, err = p.update(ctx, tx, orderID, e, through, false)
	}
	return err
}

func (p *Projector) insertPlaced(ctx context.Context, tx *sql.Tx, orderID string, e eventstore.Event, through eventstore.Event, ev *orderv1.OrderPlaced) error {
	if e.Version != 1 {
		p.log.WarnContext(ctx, "projection skipped OrderPlaced that does not start its stream",
			"projection", p.name, "stream", e.Stream, "version", uint64(e.Version))
		return nil
	}
	row := orderRow{
		id: orderID, userID: ev.GetUserId(), status: int32(orderv1.OrderStatus_ORDER_STATUS_PENDING),
		currency: ev.GetTotal().GetCurrencyCode(), subtotal: ev.GetSubtotal().GetMinorUnits(),
		shipping: ev.GetShippingCost().GetMinorUnits(), total: ev.GetTotal().GetMinorUnits(),
		created: e.Time.UnixNano(), updated: e.Time.UnixNano(), version: int64(through.Version),
	}
	row.lines = make([]lineJSON, 0, len(ev.GetLines()))
	for _, l := range ev.GetLines() {
		row.lines = append(row.lines, lineJSON{
			ProductID: l.GetProductId(), Name: l.GetName(), Quantity: l.GetQuantity(),
			UnitPrice: money.FromProto(l.GetUnitPrice()), LineTotal: money.FromProto(l.GetLineTotal()),
		})
	}
	a := ev.GetShippingAddress()
	row.address = addressJSON{Name: a.GetName(), Street: a.GetStreet(), City: a.GetCity(), PostalCode: a.GetPostalCode(), CountryCode: a.GetCountryCode()}
	lj, err := json.Marshal(row.lines)
	if err != nil {
		return err
	}
	aj, err := json.Marshal(row.address)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, p.sql.insertPlaced,
		orderID, row.userID, row.status, string(lj), row.currency,
		row.subtotal, row.shipping, row.total, string(aj), row.created, row.version)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		// A new row: a watcher that holds none takes it from the change (built only
		// if one does).
		p.changes = append(p.changes, Change{OrderID: orderID, To: row.version, Shown: true, row: row.order})
		return nil
	}
	return p.settle(ctx, tx, orderID, e, through)
}

// update moves the order row from version e.Version-1 to that of through (e, or the
// last passing event folded in with it), assigning set too, and reports whether it
// did; shown tells watchers whether that changed what the order shows. A row
// already at e.Version or later means the event was applied before: see settle.
func (p *Projector) update(ctx context.Context, tx *sql.Tx, orderID string, e, through eventstore.Event, shown bool, set ...assignment) (bool, error) {
	var q strings.Builder
	q.WriteString(`UPDATE ` + p.t.orders + ` SET `)
	args := []any{through.Time.UnixNano(), int64(through.Version), orderID, int64(e.Version) - 1}
	for _, a := range set {
		args = append(args, a.value)
		q.WriteString(a.column + " = $" + strconv.Itoa(len(args)) + ", ")
	}
	q.WriteString(`updated_at = $1, version = $2 WHERE id = $3 AND version = $4`)
	res, err := tx.ExecContext(ctx, q.String(), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n != 1 {
		return false, p.settle(ctx, tx, orderID, e, through)
	}
	p.changes = append(p.changes, Change{
		OrderID: orderID, From: int64(e.Version) - 1, To: int64(through.Version), Shown: shown,
		at: through.Time.UnixNano(), set: set,
	})
	return true, nil
}

// settle handles an event that did not apply to the order's row: one applied before
// leaves nothing to do but to move a row that stopped inside the run e..through on to
// its end; a row behind e is logged and left.
func (p *Projector) settle(ctx context.Context, tx *sql.Tx, orderID string, e, through eventstore.Event) error {
	var have int64
	err := tx.QueryRowContext(ctx, p.sql.version, orderID).Scan(&have)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	switch {
	case have < int64(e.Version):
		// Positions and versions both come from the store, so this means its history
		// has a hole (or began without OrderPlaced). Keep going: stopping would freeze
		// every other order's view too.
		p.log.WarnContext(ctx, "projection skipped an event that does not follow the order's row",
			"projection", p.name, "stream", e.Stream, "version", uint64(e.Version), "row_version", have)
	case have < int64(through.Version):
		if _, err = tx.ExecContext(ctx, p.sql.bump, int64(through.Version), through.Time.UnixNano(), orderID, have); err == nil {
			// Not a step a watcher can replay: it re-reads.
			p.changes = append(p.changes, Change{OrderID: orderID, Shown: true})
		}
	}
	return err
}

// Columns of the orders table that events assign besides version and updated_at.
const (
	colStatus       = "status"
	colPaymentID    = "payment_id"
	colShipmentID   = "shipment_id"
	colTrackingID   = "tracking_id"
	colCancelReason = "cancel_reason"
)

// assignment is one column an event sets on the order's row. The projector writes
// it to the row and hands it to watchers in a Change, so that what a watcher
// replays and what the row holds come from one definition.
type assignment struct {
	column string
	value  any // int32 for colStatus, string for the others
}

func setStatus(s orderv1.OrderStatus) assignment { return assignment{colStatus, int32(s)} }

func setText(column, v string) assignment { return assignment{column, v} }

// apply sets a's field of o as scanOrder reads the column.
func (a assignment) apply(o *orderv1.Order) {
	switch a.column {
	case colStatus:
		o.Status = orderv1.OrderStatus(a.value.(int32))
	case colPaymentID:
		o.PaymentId = a.value.(string)
	case colShipmentID:
		o.ShipmentId = a.value.(string)
	case colTrackingID:
		o.TrackingId = a.value.(string)
	case colCancelReason:
		o.CancelReason = a.value.(string)
	default:
		panic("projection: assignment to unknown column " + a.column)
	}
}

// saleKey and saleSum are one row of sales_by_product and what a batch adds to it.
type saleKey struct{ product, currency string }

type saleSum struct {
	name                   string
	units, revenue, orders int64
}

// countSale adds a just-completed order's lines to the batch's sales (writeSales).
func (p *Projector) countSale(ctx context.Context, tx *sql.Tx, orderID string) error {
	var raw string
	if err := tx.QueryRowContext(ctx, p.sql.lines, orderID).Scan(&raw); err != nil {
		return err
	}
	var lines []lineJSON
	if err := json.Unmarshal([]byte(raw), &lines); err != nil {
		return fmt.Errorf("order %s lines: %w", orderID, err)
	}
	for _, l := range lines {
		k := saleKey{l.ProductID, l.LineTotal.Currency}
		sum := p.sales[k]
		if sum == nil {
			sum = &saleSum{}
			p.sales[k] = sum
		}
		sum.name = l.Name
		sum.units += int64(l.Quantity)
		sum.revenue += l.LineTotal.Units
		sum.orders++
	}
	return nil
}

// writeSales adds the batch's sales to sales_by_product, row by row in key order.
func (p *Projector) writeSales(ctx context.Context, tx *sql.Tx) error {
	keys := slices.SortedFunc(maps.Keys(p.sales), func(a, b saleKey) int {
		return cmp.Or(cmp.Compare(a.product, b.product), cmp.Compare(a.currency, b.currency))
	})
	for _, k := range keys {
		sum := p.sales[k]
		if _, err := tx.ExecContext(ctx, p.sql.countSale, k.product, k.currency, sum.name, sum.units, sum.revenue, sum.orders); err != nil {
			return err
		}
	}
	return nil
}

// logUnknown logs once per event type that the projector cannot read.
func (p *Projector) logUnknown(ctx context.Context, e eventstore.Event, err error) {
	p.mu.Lock()
	seen := p.unknown[e.Type]
	p.unknown[e.Type] = true
	p.mu.Unlock()
	if !seen {
		p.log.WarnContext(ctx, "projection skips events it cannot read", "projection", p.name,
			"type", e.Type, "stream", e.Stream, "version", uint64(e.Version), "error", err)
	}
}

// decode returns the domain event stored in e; it returns domain.ErrInvalidEvent for
// a type that is not an order event and the protobuf error for a malformed payload.
func decode(e eventstore.Event) (domain.Event, error) {
	ev, err := domain.NewEvent(e.Type)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(e.Data, ev); err != nil {
		return nil, fmt.Errorf("decode %s: %w", e.Type, err)
	}
	return ev, nil
}
