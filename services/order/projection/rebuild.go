package projection

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb"
)

// rebuildTables are filled by Rebuild while the live tables keep serving.
var rebuildTables = tables{orders: "orders_rebuild", sales: "sales_by_product_rebuild"}

// RebuildProgress reports how far a Rebuild has come.
type RebuildProgress struct {
	// Applied counts the events replayed so far.
	Applied int
	// Position is the checkpoint of the last replayed event.
	Position eventstore.Position
	// Swapped is true on the last report, once the rebuilt tables are live.
	Swapped bool
}

// Rebuild replays the whole order category from Start into fresh tables and then, in
// one transaction, drops the live read models, renames the fresh ones into their place
// and moves the checkpoint to the last replayed event. Queries keep reading the old
// tables until that commit and the new ones after it; a Projector running meanwhile
// notices the moved checkpoint and resumes from it. progress, if not nil, is called
// after every batch and once after the swap. The order binary's
// "projections rebuild" subcommand calls this.
//
// Run one Rebuild per database at a time: two would share the scratch tables.
// A crashed Rebuild leaves only its scratch tables, which the next one drops. Indexes
// of the rebuilt tables carry a generation suffix (an index keeps its name when its
// table is renamed). It returns the error of the migration, the event store or the
// database; on error the live tables are untouched. opts configure the replaying
// projector; pass WithDecoder with the write side's codec so upcasters apply.
func Rebuild(ctx context.Context, db *sqldb.DB, store eventstore.Store, progress func(RebuildProgress), opts ...Option) error {
	if err := Migrate(ctx, db); err != nil {
		return err
	}
	p := newProjector(db, store, rebuildTables, append(opts, WithName(DefaultName+".rebuild"), WithBatchSize(1000))...)
	// Its statements name the scratch tables; they are closed before the swap renames
	// those tables away (and on any early return).
	defer p.Close()
	gen := strconv.FormatInt(time.Now().UnixNano(), 36)
	schema, err := rebuildSchema(rebuildTables, gen)
	if err != nil {
		return fmt.Errorf("projection: rebuild schema: %w", err)
	}
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		stmts := []string{`DROP TABLE IF EXISTS ` + rebuildTables.orders, `DROP TABLE IF EXISTS ` + rebuildTables.sales}
		for _, s := range append(stmts, schema...) {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM projection_checkpoints WHERE name = $1`, p.name)
		return err
	})
	if err != nil {
		return fmt.Errorf("projection: rebuild: create scratch tables: %w", err)
	}
	if _, err := p.loadCheckpoint(ctx); err != nil {
		return err
	}

	n, err := p.catchUp(ctx, func(n int) {
		if progress != nil {
			progress(RebuildProgress{Applied: n, Position: p.Position()})
		}
	})
	if err != nil {
		return fmt.Errorf("projection: rebuild: %w", err)
	}
	pos := p.Position()
	if err := p.Close(); err != nil {
		return fmt.Errorf("projection: rebuild: %w", err)
	}
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		for _, s := range []string{
			`DROP TABLE ` + liveTables.orders,
			`DROP TABLE ` + liveTables.sales,
			`ALTER TABLE ` + rebuildTables.orders + ` RENAME TO ` + liveTables.orders,
			`ALTER TABLE ` + rebuildTables.sales + ` RENAME TO ` + liveTables.sales,
		} {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
			DefaultName, int64(pos), time.Now().UnixNano()); err != nil {
			return err
		}
		// Partition checkpoints ("<name>#<k>", RunPartitions) move with it.
		if _, err := tx.ExecContext(ctx, `UPDATE projection_checkpoints SET position = $1, updated_at = $2 WHERE name > $3 AND name < $4`,
			int64(pos), time.Now().UnixNano(), DefaultName+"#", DefaultName+"$"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM projection_checkpoints WHERE name = $1`, p.name)
		return err
	})
	if err != nil {
		return fmt.Errorf("projection: rebuild: swap tables: %w", err)
	}
	if progress != nil {
		progress(RebuildProgress{Applied: n, Position: pos, Swapped: true})
	}
	return nil
}
