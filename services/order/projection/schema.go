package projection

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"

	"github.com/eventshop/eventshop/pkg/sqldb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationsTable records which files of migrations/ were applied.
const MigrationsTable = "order_projection_migrations"

// DefaultName is the checkpoint name of the order read models.
const DefaultName = "order_read_model"

// Migrate creates or updates the read-model tables and the checkpoint table. It is
// safe to call at every start and from several processes at once. It returns the
// error of sqldb.Migrate.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("projection: migrations: %w", err)
	}
	if err := sqldb.Migrate(ctx, db, sub, MigrationsTable); err != nil {
		return fmt.Errorf("projection: %w", err)
	}
	return nil
}

// tables names one set of read-model tables: the live ones, or those a rebuild fills.
type tables struct {
	orders string
	sales  string
}

var liveTables = tables{orders: "orders", sales: "sales_by_product"}

// readModelNames are the identifiers Rebuild renames when it replays the migrations
// into fresh tables. A new read-model table or index must be listed here.
var readModelNames = regexp.MustCompile(`\b(orders|sales_by_product|orders_by_user_idx|orders_by_user_status_idx)\b`)

// rebuildSchema returns the statements of every migration with the read-model tables
// renamed to t and their indexes suffixed with gen (index names are per schema, and
// an index keeps its name when its table is renamed, so each rebuild needs new ones).
func rebuildSchema(t tables, gen string) ([]string, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	migs, err := sqldb.Migrations(sub)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range migs {
		out = append(out, readModelNames.ReplaceAllStringFunc(m.SQL, func(name string) string {
			switch name {
			case liveTables.orders:
				return t.orders
			case liveTables.sales:
				return t.sales
			}
			return name + "_" + gen
		}))
	}
	return out, nil
}
