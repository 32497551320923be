package messaging_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

const orderID = "0190b7a4-2f0e-7c3a-9b1e-3f2a1c0d4e5f"

// env is one embedded server with the messaging streams declared.
type env struct {
	srv *natsembed.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	bus *messaging.Bus
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	if err := messaging.DeclareStreams(context.Background(), js, messaging.StreamsConfig{}); err != nil {
		t.Fatalf("declare streams: %v", err)
	}
	return &env{srv: srv, nc: nc, js: js, bus: messaging.New(js, "order")}
}

// conn opens another client connection, as a second process would.
func (e *env) conn(t testing.TB) (*nats.Conn, *messaging.Bus) {
	t.Helper()
	nc, err := e.srv.Connect()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, messaging.New(js, "payment")
}

// run starts c.Run in the background; the returned stop cancels it and waits.
func run(t testing.TB, c *messaging.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("consumer %s did not stop", c.Name())
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// fastConfig keeps redelivery quick enough for tests.
func fastConfig(durable string, subjects ...string) messaging.ConsumerConfig {
	return messaging.ConsumerConfig{
		Durable:    durable,
		Subjects:   subjects,
		AckWait:    time.Second,
		MaxDeliver: 3,
		Backoff:    []time.Duration{10 * time.Millisecond},
	}
}

func authorize() *paymentv1.AuthorizePayment {
	return &paymentv1.AuthorizePayment{
		OrderId:      orderID,
		Amount:       &commonv1.Money{CurrencyCode: "EUR", MinorUnits: 4200},
		PaymentToken: "tok_visa",
	}
}

// eventually polls cond until it holds, failing the test after a bounded wait.
// receive waits for one value on ch, bounded.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// settled reports whether the consumer has nothing pending or unacknowledged.
func settled(t testing.TB, js jetstream.JetStream, stream, durable string) bool {
	t.Helper()
	c, err := js.Consumer(context.Background(), stream, durable)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// lastMsg returns the newest message stored on subject.
func lastMsg(t testing.TB, js jetstream.JetStream, stream, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("last message on %s: %v", subject, err)
	}
	return m
}

// dialects lists the SQL databases available to this test run.
var dialects = []string{"sqlite", "postgres"}

// openDB returns a fresh, empty database of dialect owned by t. PostgreSQL gets its
// own schema, dropped at the end; it is skipped unless SHOP_TEST_PG_DSN is set.
func openDB(t testing.TB, dialect string) *sql.DB {
	t.Helper()
	switch dialect {
	case "sqlite":
		db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/test.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	case "postgres":
		dsn := os.Getenv("SHOP_TEST_PG_DSN")
		if dsn == "" {
			t.Skip("set SHOP_TEST_PG_DSN (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run PostgreSQL tests")
		}
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { admin.Close() })
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		schema := "msgtest_" + hex.EncodeToString(b)
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		db, err := sql.Open("pgx", dsn+sep+"search_path="+schema)
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() {
			db.Close()
			if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
				t.Errorf("drop schema: %v", err)
			}
		})
		return db
	}
	t.Fatalf("unknown dialect %s", dialect)
	return nil
}
