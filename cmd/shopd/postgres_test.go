package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/cmd/internal/audit"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// pgServer is a PostgreSQL server of the test's own, made with initdb in a temporary
// directory, so the test can stop and start it without touching a server other
// tests share.
type pgServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	as   []string // runs a PostgreSQL program as its owner
}

func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bin := os.Getenv("SHOP_TEST_PG_BIN")
	if bin == "" {
		t.Skip("set SHOP_TEST_PG_BIN to PostgreSQL's bin directory (initdb, pg_ctl; e.g. /usr/lib/postgresql/15/bin) to run the shop against a PostgreSQL server the test restarts")
	}
	dir, err := os.MkdirTemp("", "shop-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgServer{t: t, bin: bin, dir: dir, port: freePort(t)}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// PostgreSQL refuses to run as root; CI runs as root, so the server runs as the
	// postgres user the Debian package creates.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.as = []string{"runuser", "-u", "postgres", "--"}
	}
	p.run("initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
	p.start()
	t.Cleanup(func() { _ = p.pgctl("stop", "-m", "immediate", "-w") })
	return p
}

func (p *pgServer) data() string { return filepath.Join(p.dir, "data") }

func (p *pgServer) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// command runs one of PostgreSQL's programs as the server's owner.
func (p *pgServer) command(prog string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, p.as...), filepath.Join(p.bin, prog)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

func (p *pgServer) run(prog string, args ...string) {
	p.t.Helper()
	if out, err := p.command(prog, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

func (p *pgServer) pgctl(args ...string) error {
	out, err := p.command("pg_ctl", append([]string{"-D", p.data()}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %w\n%s", args, err, out)
	}
	return nil
}

func (p *pgServer) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off", p.port, p.dir)
	if err := p.pgctl("start", "-w", "-l", filepath.Join(p.dir, "log"), "-o", opts); err != nil {
		p.t.Fatal(err)
	}
}

// restart stops the server as an operator's restart does (fast shutdown: sessions
// are terminated), keeps it down for down, and starts it again.
func (p *pgServer) restart(down time.Duration) {
	p.t.Helper()
	if err := p.pgctl("stop", "-m", "fast", "-w"); err != nil {
		p.t.Fatal(err)
	}
	time.Sleep(down)
	p.start()
}

// shopperLog is what shoppers saw: each failed call with its time.
type shopperLog struct {
	mu       sync.Mutex
	placed   []string
	failures []shopperFailure
}

type shopperFailure struct {
	op   string
	at   time.Time
	code codes.Code
	err  error
}

func (l *shopperLog) failed(op string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, shopperFailure{op: op, at: time.Now(), code: status.Code(err), err: err})
}

// The services' stores and the order read model on PostgreSQL (as in split mode),
// and the server restarted while shoppers place orders and read them back:
// PlaceOrder, which never touches PostgreSQL, never fails; reads fail only as
// Unavailable (retryable) and only while the database is down or reconnecting;
// every order placed before, during and after completes, and the books balance.
func TestShopSurvivesAPostgreSQLRestart(t *testing.T) {
	pg := startPostgres(t)
	dsn := pg.dsn()
	s := startSagaShop(t, withFlags("-payment-db-dsn", dsn, "-inventory-db-dsn", dsn, "-shipping-db-dsn", dsn,
		"-order-read-dsn", dsn, "-inventory-seed-stock", "1000"))
	s.sources = &audit.Sources{Orders: dsn, Payments: dsn, Inventory: dsn, Shipping: dsn}
	before := s.stock()

	var seen shopperLog
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			id, err := s.tryPlace("tok_visa", 1)
			if err != nil {
				seen.failed("PlaceOrder", err)
				continue
			}
			seen.mu.Lock()
			seen.placed = append(seen.placed, id)
			seen.mu.Unlock()
			// A just-placed order may not be projected yet: NotFound is no failure.
			if _, err := s.orders.GetOrder(s.ctx, &orderv1.GetOrderRequest{OrderId: id}); err != nil && status.Code(err) != codes.NotFound {
				seen.failed("GetOrder", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	time.Sleep(time.Second)
	down := time.Now()
	pg.restart(2 * time.Second)
	up := time.Now()
	time.Sleep(3 * time.Second)
	stop()
	<-done

	// Pooled connections the restart broke are found out when next used, so the
	// window closes a little after the server is back.
	const settle = 2 * time.Second
	reads := 0
	for _, f := range seen.failures {
		if f.op == "PlaceOrder" {
			t.Errorf("PlaceOrder failed at +%v of the restart: %v", f.at.Sub(down).Round(time.Millisecond), f.err)
			continue
		}
		reads++
		if f.code != codes.Unavailable {
			t.Errorf("%s answered %v, want Unavailable: %v", f.op, f.code, f.err)
		}
		if f.at.Before(down) || f.at.After(up.Add(settle)) {
			t.Errorf("%s failed at +%v, outside the outage (0 to +%v): %v", f.op, f.at.Sub(down).Round(time.Millisecond), up.Sub(down).Round(time.Millisecond)+settle, f.err)
		}
	}
	if reads == 0 {
		t.Error("no read failed while PostgreSQL was down: the restart did not happen where the test thinks")
	}
	t.Logf("%d orders placed, %d reads failed while PostgreSQL restarted (%v down)", len(seen.placed), reads, up.Sub(down).Round(time.Millisecond))
	s.awaitAllSold(seen.placed, before)
}
