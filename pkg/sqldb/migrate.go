package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// ErrInvalidMigration is returned by Migrate for a badly named or duplicated file
// or an invalid migrations table name.
var ErrInvalidMigration = errors.New("sqldb: invalid migration")

var (
	migrationName = regexp.MustCompile(`^(\d+)_[A-Za-z0-9_.-]*\.sql$`)
	identifier    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

// Migration is one numbered SQL file.
type Migration struct {
	Version int64
	Name    string // file name, e.g. "001_read_models.sql"
	SQL     string
}

// Migrations returns the "<number>_<name>.sql" files at the root of fsys in version
// order (other files are ignored). It returns ErrInvalidMigration when two files share
// a version and the fs error when fsys cannot be read.
func Migrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("sqldb: read migrations: %w", err)
	}
	var out []Migration
	seen := map[int64]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidMigration, e.Name(), err)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("%w: %s and %s share version %d", ErrInvalidMigration, prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("sqldb: read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies, in version order, the migrations of fsys (see Migrations) that
// table does not record yet, each in its own transaction together with its record,
// so a failed migration leaves neither its changes nor its record. A file may hold
// several statements. On PostgreSQL an advisory lock keyed by table serializes
// processes migrating at once; on SQLite the immediate write lock does. Pass the
// root of the migrations, e.g. fs.Sub(embedded, "migrations"). It returns
// ErrInvalidMigration for a bad table name or file set and otherwise the database
// error, naming the file.
func Migrate(ctx context.Context, db *DB, fsys fs.FS, table string) error {
	migs, err := Migrations(fsys)
	if err != nil {
		return err
	}
	return Apply(ctx, db, migs, table)
}

// Apply is Migrate for migrations built in code (a schema whose table names are
// only known at run time), given in version order.
func Apply(ctx context.Context, db *DB, migs []Migration, table string) error {
	if !identifier.MatchString(table) {
		return fmt.Errorf("%w: table %q is not a plain identifier", ErrInvalidMigration, table)
	}
	create := `CREATE TABLE IF NOT EXISTS ` + table + ` (
	version    BIGINT PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMP NOT NULL
)`
	if err := db.lock(ctx, table, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, create)
		return err
	}); err != nil {
		return fmt.Errorf("sqldb: create %s: %w", table, err)
	}
	for _, m := range migs {
		err := db.lock(ctx, table, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE version = $1`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UTC())
			return err
		})
		if err != nil {
			return fmt.Errorf("sqldb: migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// lock runs fn in a transaction that holds a lock named key until it ends.
func (db *DB) lock(ctx context.Context, key string, fn func(*sql.Tx) error) error {
	return db.InTx(ctx, func(tx *sql.Tx) error {
		if db.Dialect == Postgres {
			h := fnv.New64a()
			h.Write([]byte("sqldb.migrate." + key))
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}
