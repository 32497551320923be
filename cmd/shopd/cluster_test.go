package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/natsauth"
)

// natsCluster is one nats-server process, or three with routes on loopback, admitting
// the shop's identities.
type natsCluster struct {
	t     *testing.T
	bin   string
	dir   string
	ids   *natsauth.Identities
	urls  []string
	procs []*exec.Cmd
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// awaitAllSold waits for every order of ids to complete, one unit each of the shop's
// first product, and checks that the stock moved by exactly that from before and
// that the auditor finds nothing.
func (s *sagaShop) awaitAllSold(ids []string, before [3]int64) {
	s.t.Helper()
	for _, id := range ids {
		s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	}
	n := int64(len(ids))
	if after := s.stock(); after != [3]int64{before[0] - n, before[1], before[2] + n} {
		s.t.Fatalf("stock %v -> %v after %d orders", before, after, n)
	}
	s.audit()
}

func startNATSCluster(t *testing.T, nodes int) *natsCluster {
	t.Helper()
	bin := os.Getenv("SHOP_TEST_NATS_SERVER")
	if bin == "" {
		t.Skip("set SHOP_TEST_NATS_SERVER to a nats-server binary (2.11+) to run the shop against nats-server processes it kills")
	}
	c := &natsCluster{t: t, bin: bin, dir: t.TempDir(), procs: make([]*exec.Cmd, nodes)}
	var err error
	if c.ids, err = natsauth.Ensure(filepath.Join(c.dir, "ids")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "auth.conf"), []byte(c.ids.ServerConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	var routes []string
	ports := make([]int, nodes)
	for i := range nodes {
		ports[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", freePort(t)))
	}
	for i := range nodes {
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		cluster := ""
		if nodes > 1 {
			cluster = fmt.Sprintf("cluster { name: shoptest, listen: %s, routes: [%s] }",
				strings.TrimPrefix(routes[i], "nats://"), strings.Join(routes, ", "))
		}
		conf := fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
jetstream { store_dir: %q }
%s
include auth.conf
`, i, ports[i], filepath.Join(c.dir, fmt.Sprintf("js%d", i)), cluster)
		if err := os.WriteFile(filepath.Join(c.dir, fmt.Sprintf("n%d.conf", i)), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	c.awaitJetStream()
	return c
}

func (c *natsCluster) start(i int) {
	c.t.Helper()
	log, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("n%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", filepath.Join(c.dir, fmt.Sprintf("n%d.conf", i)))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
}

// kill stops node i as a crash would (SIGKILL).
func (c *natsCluster) kill(i int) {
	if p := c.procs[i]; p != nil {
		_ = p.Process.Kill()
		_ = p.Wait()
		c.procs[i] = nil
	}
}

func (c *natsCluster) operator() jetstream.JetStream {
	c.t.Helper()
	op, err := c.ids.Option(natsauth.Operator)
	if err != nil {
		c.t.Fatal(err)
	}
	nc, err := nats.Connect(strings.Join(c.urls, ","), op, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}

// awaitJetStream waits until the cluster answers JetStream requests (a meta leader
// is elected).
func (c *natsCluster) awaitJetStream() {
	c.t.Helper()
	js := c.operator()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("NATS cluster has no JetStream after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leader returns the index of the node leading stream.
func (c *natsCluster) leader(js jetstream.JetStream, stream string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		c.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		c.t.Fatalf("stream %s info: %v %+v", stream, err, info)
	}
	var i int
	if _, err := fmt.Sscanf(info.Cluster.Leader, "n%d", &i); err != nil {
		c.t.Fatalf("leader %q: %v", info.Cluster.Leader, err)
	}
	return i
}

// placeRetrying places an order, retrying while the shop answers that a dependency
// is unavailable (a failover), under one idempotency key.
func (s *sagaShop) placeThroughFailover(t *testing.T) string {
	t.Helper()
	key := "k-" + uuid.NewString()
	deadline := time.Now().Add(waitFor)
	for {
		id, err := s.tryPlaceKeyed("tok_visa", 1, key)
		if err == nil {
			return id
		}
		if c := status.Code(err); (c != codes.Unavailable && c != codes.DeadlineExceeded) || time.Now().After(deadline) {
			t.Fatalf("place during failover: %v (want success, or Unavailable while it lasts)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The shop on a 3-node NATS cluster, every stream and bucket at three replicas:
// orders complete, the node leading the order stream is killed (SIGKILL) and orders
// placed meanwhile still complete, the node comes back, and the books balance. While
// the stream has no leader the shop answers Unavailable (retryable), never Internal.
func TestShopOnANATSClusterSurvivesALeaderKill(t *testing.T) {
	cl := startNATSCluster(t, 3)
	flags := []string{"-nats-url", strings.Join(cl.urls, ","), "-nats-identities", cl.ids.Dir()}
	for _, svc := range []string{"order", "cart", "payment", "inventory", "shipping"} {
		flags = append(flags, "-"+svc+"-stream-replicas", "3")
	}
	s := startSagaShop(t, withFlags(flags...))
	before := s.stock()

	var ids []string
	for range 3 {
		ids = append(ids, s.place("tok_visa", 1))
	}
	for _, id := range ids {
		s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	}

	js := cl.operator()
	victim := cl.leader(js, "ES_order")
	cl.kill(victim)
	for range 3 {
		ids = append(ids, s.placeThroughFailover(t))
	}
	cl.start(victim)
	for range 2 {
		ids = append(ids, s.placeThroughFailover(t))
	}
	s.awaitAllSold(ids, before)
}

// The shop against one nats-server that is killed (SIGKILL) and started again: while
// it is down PlaceOrder answers Unavailable, never Internal; once it is back every
// order completes from what the server kept on disk, and the books balance.
func TestShopSurvivesANATSServerKill(t *testing.T) {
	srv := startNATSCluster(t, 1)
	s := startSagaShop(t, withFlags("-nats-url", srv.urls[0], "-nats-identities", srv.ids.Dir()))
	before := s.stock()
	ids := []string{s.place("tok_visa", 1)}
	s.awaitStatus(ids[0], orderv1.OrderStatus_ORDER_STATUS_COMPLETED)

	srv.kill(0)
	_, err := s.tryPlace("tok_visa", 1)
	if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
		t.Fatalf("PlaceOrder with NATS down: %v, want Unavailable", err)
	}
	srv.start(0)
	srv.awaitJetStream()
	for range 3 {
		ids = append(ids, s.placeThroughFailover(t))
	}
	s.awaitAllSold(ids, before)
}
