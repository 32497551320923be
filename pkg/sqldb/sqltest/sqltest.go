// Package sqltest gives each test a fresh, empty sqldb.DB: a SQLite file in
// t.TempDir() or, when SHOP_TEST_PG_DSN is set, its own PostgreSQL schema that is
// dropped at the end. ForEach runs one suite on every dialect.
package sqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/sqldb"
)

// EnvPostgresDSN names the variable holding the PostgreSQL server tests use,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvPostgresDSN = "SHOP_TEST_PG_DSN"

// Dialects lists every dialect a suite should run on, PostgreSQL included even when
// it is not configured: Open then skips with a message naming EnvPostgresDSN.
func Dialects(t testing.TB) []sqldb.Dialect {
	t.Helper()
	return []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres}
}

// ForEach runs fn as a subtest named after each dialect, each with its own fresh
// database.
func ForEach(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	for _, d := range Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, Open(t, d)) })
	}
}

// Open returns a fresh, empty database of dialect, closed (and for PostgreSQL its
// schema dropped) in t.Cleanup. PostgreSQL skips the test unless EnvPostgresDSN is set.
// Any setup failure fails the test.
func Open(t testing.TB, dialect sqldb.Dialect) *sqldb.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch dialect {
	case sqldb.SQLite:
		db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatalf("sqltest: open sqlite: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	case sqldb.Postgres:
		return openPostgres(ctx, t)
	}
	t.Fatalf("sqltest: unknown dialect %q", dialect)
	return nil
}

func openPostgres(ctx context.Context, t testing.TB) *sqldb.DB {
	t.Helper()
	dsn := os.Getenv(EnvPostgresDSN)
	if dsn == "" {
		t.Skipf("set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run PostgreSQL tests", EnvPostgresDSN)
	}
	admin, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("sqltest: open postgres: %v", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("sqltest: create schema: %v", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		admin.Close()
		t.Fatalf("sqltest: parse %s: %v", EnvPostgresDSN, err)
	}
	q := u.Query()
	// pgx sends unknown DSN parameters as run-time parameters on every connection.
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sqldb.Open(ctx, u.String())
	if err != nil {
		admin.Close()
		t.Fatalf("sqltest: open postgres schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("sqltest: drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return db
}
