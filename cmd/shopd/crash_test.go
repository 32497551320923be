package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"

	"github.com/eventshop/eventshop/cmd/internal/audit"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
)

// childEnv makes the test binary run shopd's main with the arguments in
// childArgsEnv, so a test can kill -9 a whole shopd process.
const (
	childEnv     = "SHOPD_TEST_CHILD"
	childArgsEnv = "SHOPD_TEST_CHILD_ARGS"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(readLoadEnv); spec != "" {
		if err := runReadLoad(spec, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(childEnv) == "1" {
		os.Args = append([]string{"shopd"}, strings.Fields(os.Getenv(childArgsEnv))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var readyAddr = regexp.MustCompile(` (\w+)=(\S+)`)

// startChild runs shopd as a child process and returns it with the address of each
// service once it says it is ready.
func startChild(t *testing.T, args []string) (*exec.Cmd, map[string]string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childArgsEnv+"="+strings.Join(args, " "))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "shopd: ready") {
				addrs := map[string]string{}
				for _, m := range readyAddr.FindAllStringSubmatch(line, -1) {
					addrs[m[1]] = m[2]
				}
				ready <- addrs
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case addrs := <-ready:
		return cmd, addrs
	case <-time.After(60 * time.Second):
		t.Fatal("shopd child not ready after 60s")
		return nil, nil
	}
}

// A whole shopd process killed with SIGKILL while sagas run, then started again on
// the same data dir: the token from before still works, every order placed before the
// crash ends COMPLETED, and the books balance.
func TestShopdCrashLosesNothing(t *testing.T) {
	issuerAddr := freeAddr(t)
	dir := t.TempDir()
	args := shopArgs(dir, issuerAddr)

	child, addrs := startChild(t, args)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var storefront devissuer.Client
	for _, c := range devissuer.DefaultClients() {
		if c.ID == "storefront" {
			storefront = c
		}
	}
	token, err := devissuer.LoginAt(ctx, "http://"+issuerAddr, storefront, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	list, err := catalogv1.NewCatalogServiceClient(dial(t, addrs["catalog"])).ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 1})
	if err != nil || len(list.GetProducts()) == 0 {
		t.Fatalf("ListProducts: %v %v", list, err)
	}
	product := list.GetProducts()[0].GetId()
	orders := orderv1.NewOrderServiceClient(dial(t, addrs["order"]))
	var ids []string
	for range 5 {
		resp, err := orders.PlaceOrder(authed, &orderv1.PlaceOrderRequest{
			IdempotencyKey: "k-" + uuid.NewString(),
			Items:          []*commonv1.LineItem{{ProductId: product, Quantity: 1}},
			ShippingAddress: &commonv1.Address{
				Name: "Alice", Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US",
			},
			// Approved after 3 s: every saga is waiting on the card network when
			// the process dies.
			PaymentToken: "tok_slow",
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetOrder().GetId())
	}

	// Sagas are under way: crash.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	_, addrs = startChild(t, args)
	orders = orderv1.NewOrderServiceClient(dial(t, addrs["order"]))
	for _, id := range ids {
		var last *orderv1.Order
		for {
			resp, err := orders.GetOrder(authed, &orderv1.GetOrderRequest{OrderId: id})
			if err == nil {
				last = resp.GetOrder()
				if last.GetStatus() == orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
					break
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("order %s after the crash: %v, %v (the token from before the crash must work)", id, last.GetStatus(), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	r, err := audit.Run(ctx, audit.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		var b strings.Builder
		r.Print(&b)
		t.Fatalf("auditor after the crash:\n%s", b.String())
	}
}
