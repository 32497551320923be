package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"testing"

	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// A dropped connection (what a PostgreSQL restart does to every pooled one) and a
// server that refuses connections are outages; a query the database refused, or no
// row, is not.
func TestIsUnavailable(t *testing.T) {
	ctx := context.Background()
	db := sqltest.Open(t, sqldb.Postgres)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	var one int
	err = conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	if err == nil || !sqldb.IsUnavailable(err) {
		t.Errorf("query on a terminated connection: %v; IsUnavailable = false", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = sqldb.Open(ctx, "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=2")
	if err == nil || !sqldb.IsUnavailable(err) {
		t.Errorf("open on a closed port: %v; IsUnavailable = false", err)
	}

	_, err = db.ExecContext(ctx, `SELEC 1`)
	if err == nil || sqldb.IsUnavailable(err) {
		t.Errorf("syntax error: %v; IsUnavailable = true", err)
	}
	err = db.QueryRowContext(ctx, `SELECT 1 WHERE false`).Scan(&one)
	if !errors.Is(err, sql.ErrNoRows) || sqldb.IsUnavailable(err) {
		t.Errorf("no rows: %v; IsUnavailable = true", err)
	}
	if sqldb.IsUnavailable(nil) {
		t.Error("IsUnavailable(nil)")
	}
}
