package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/cmd/internal/audit"
	"github.com/eventshop/eventshop/cmd/internal/jsbench"
	"github.com/eventshop/eventshop/cmd/internal/shop"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/services/shipping/carrier"
)

// DefaultShopFlags shorten the in-process shop's saga step timeout and backoff, so an
// order paid with a card that never answers (tok_processingError) is cancelled in
// seconds rather than after three 30-second attempts, and closed-model users move on.
const DefaultShopFlags = "-order-saga-step-timeout 5s -order-saga-backoff 200ms -order-saga-max-backoff 2s"

// Config is one load run.
type Config struct {
	Scenario string // steady, flash-sale or chaos
	Mode     string // http (through the gateway) or grpc (straight to the services)
	Target   string // gateway URL of a running shop; empty runs the shop in-process
	Issuer   string // dev issuer of the running shop
	DataDir  string // data directory of the running shop, for the audit ("" skips it)

	Rate     float64       // open model: sessions started per second (0: closed model)
	Users    int           // closed model: concurrent users
	Orders   int           // stop after this many placed orders (0: Duration only)
	Duration time.Duration // stop after this long (0: Orders only)
	Mix      string        // card-token mix, e.g. "ok=90,declined=5,transient=5"
	Buyers   int           // flash-sale: buyers racing
	Units    int           // flash-sale: units on sale
	Restock  int64         // steady/chaos: units set on every product first (0: leave stock)

	ChaosRounds int // chaos: times each of ChaosServices is restarted
	// ChaosServices are restarted in turn each round: in-process, services of the
	// shop; with RestartCmd, any name the command knows (a service, "postgres",
	// "nats", "shopd").
	ChaosServices string
	ChaosFaults   bool          // chaos: the card network and shipping faults after each round
	ChaosEvery    time.Duration // chaos: pause between two faults
	NATSNodes     string        // chaos with RestartCmd: NATS nodes to kill, one per round
	FinalWait     time.Duration // how long placed orders may take to become final
	ShopFlags     string        // extra shopd flags for the in-process shop
	RestartCmd    string        // chaos against processes: command run with a service name to kill -9 and restart it
	AuditDSN      string        // audit this database (postgres:// URL shared by the services) instead of DataDir
	Ceiling       bool          // after the load, measure the raw JetStream publish rate of the shop's NATS server
	NATSURL       string        // NATS server of a running shop, for Ceiling
	NATSNkey      string        // seed of the shop's operator NATS identity, for Ceiling
	JSON          bool
	Progress      bool

	// Service addresses of a running shop for -mode grpc.
	CatalogAddr, CartAddr, OrderAddr, InventoryAddr string
	// addrsSet is whether one of them was given, which in -mode grpc also selects a
	// running shop.
	addrsSet bool
}

// chaosServices lists ChaosServices.
func (c *Config) chaosServices() []string {
	var names []string
	for _, n := range strings.Split(c.ChaosServices, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func (c *Config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Scenario, "scenario", "steady", "steady, flash-sale or chaos")
	fs.StringVar(&c.Mode, "mode", "http", "http: shoppers call the gateway's JSON API; grpc: they call catalog, cart, order and inventory directly")
	fs.StringVar(&c.Target, "target", "", "gateway URL of a running shop (e.g. http://127.0.0.1:8080); empty runs the shop in-process (in -mode grpc, so do unset -*-addr flags)")
	fs.StringVar(&c.CatalogAddr, "catalog-addr", "127.0.0.1:9401", "-mode grpc: catalog gRPC address of the running shop")
	fs.StringVar(&c.CartAddr, "cart-addr", "127.0.0.1:9402", "-mode grpc: cart gRPC address of the running shop")
	fs.StringVar(&c.OrderAddr, "order-addr", "127.0.0.1:9403", "-mode grpc: order gRPC address of the running shop")
	fs.StringVar(&c.InventoryAddr, "inventory-addr", "127.0.0.1:9405", "-mode grpc: inventory gRPC address of the running shop")
	fs.StringVar(&c.Issuer, "issuer", "http://127.0.0.1:9400", "dev OIDC issuer of the running shop (-target)")
	fs.StringVar(&c.DataDir, "data-dir", "data", "data directory of the running shop (-target), audited at the end; empty skips the audit")
	fs.Float64Var(&c.Rate, "rate", 0, "open model: sessions started per second (0: closed model with -users)")
	fs.IntVar(&c.Users, "users", 8, "closed model: concurrent users")
	fs.IntVar(&c.Orders, "orders", 200, "stop after this many placed orders (0: -duration only)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (0: -orders only)")
	fs.StringVar(&c.Mix, "mix", "ok=90,declined=5,transient=5", "card-token mix in percent: ok (tok_visa), declined (tok_chargeDeclined), transient (tok_processingError), slow (tok_slow)")
	fs.IntVar(&c.Buyers, "buyers", 500, "flash-sale: buyers racing for the units")
	fs.IntVar(&c.Units, "units", 50, "flash-sale: units of the one product on sale")
	fs.Int64Var(&c.Restock, "restock", 1000000, "steady and chaos: units set available on the products used first (0 leaves stock alone)")
	fs.IntVar(&c.ChaosRounds, "chaos-rounds", 2, "chaos: times each of -chaos-services is restarted")
	fs.StringVar(&c.ChaosServices, "chaos-services", strings.Join(restartable, ","), "chaos: comma-separated names restarted in turn each round; with -restart-cmd any name it knows (run-split: a service, postgres, nats; run-shopd: shopd)")
	fs.BoolVar(&c.ChaosFaults, "chaos-faults", true, "chaos: after each round, the card network and shipping faults in turn (needs payment and shipping: in-process, or run-split's -restart-cmd)")
	fs.StringVar(&c.NATSNodes, "chaos-nats-nodes", "", "chaos with -restart-cmd on a NATS cluster: comma-separated node names (run-cluster: nats-1,nats-2,nats-3); each round kills -9 and restarts one, the order stream's leader when -nats-url tells which")
	fs.DurationVar(&c.ChaosEvery, "chaos-every", 2*time.Second, "chaos: pause between two faults")
	fs.DurationVar(&c.FinalWait, "final-wait", 3*time.Minute, "bound for every placed order to become COMPLETED or CANCELLED, and for a shopper's PlaceOrder to be answered (retried with backoff meanwhile)")
	fs.StringVar(&c.ShopFlags, "shop-flags", DefaultShopFlags, "extra shopd flags for the in-process shop, space-separated (e.g. \"-shipping-fail-rate 0.02\")")
	fs.StringVar(&c.RestartCmd, "restart-cmd", "", "chaos with -target: command that kills -9 and restarts the service named as its next argument, adding any further arguments to the new process's flags (card network and shipping faults are switched that way; e.g. \"scripts/run-split.sh restart\")")
	fs.StringVar(&c.AuditDSN, "audit-dsn", "", "with -target: audit this database URL shared by the services instead of -data-dir")
	fs.BoolVar(&c.Ceiling, "ceiling", false, "after the load, measure the raw JetStream publish rate of the shop's NATS server and report the throughput as a share of it (the ceiling: that rate / "+strconv.Itoa(jsbench.WritesPerOrder)+" writes per order)")
	fs.StringVar(&c.NATSNkey, "nats-nkey", "", "with -nats-url: seed file of the shop's operator identity (make run: data/nats-identities/operator.nk)")
	fs.StringVar(&c.NATSURL, "nats-url", "", "with -target and -ceiling: the running shop's NATS server (make run: nats://127.0.0.1:4223; run-split: nats://127.0.0.1:4233)")
	fs.BoolVar(&c.JSON, "json", false, "print the final report as JSON")
	fs.BoolVar(&c.Progress, "progress", isTerminal(os.Stderr), "live progress line on stderr")
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// tokenMix picks card tokens by weight.
type tokenMix struct {
	tokens  []string
	weights []int
	total   int
}

var mixTokens = map[string]string{"ok": "tok_visa", "declined": "tok_chargeDeclined", "transient": "tok_processingError", "slow": "tok_slow"}

func parseMix(s string) (tokenMix, error) {
	var m tokenMix
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		tok, known := mixTokens[name]
		n, err := strconv.Atoi(w)
		if !ok || !known || err != nil || n < 0 {
			return m, fmt.Errorf("mix %q: want name=percent with name ok, declined, transient or slow", part)
		}
		m.tokens, m.weights, m.total = append(m.tokens, tok), append(m.weights, n), m.total+n
	}
	if m.total == 0 {
		return m, errors.New("mix: weights sum to 0")
	}
	return m, nil
}

func (m tokenMix) pick() string {
	n := rand.IntN(m.total)
	for i, w := range m.weights {
		if n < w {
			return m.tokens[i]
		}
		n -= w
	}
	return m.tokens[0]
}

// run is one load run: set up, drive load (and faults), wait for every placed
// order to become final, audit. It returns the report; an error only when the run
// could not be set up.
func run(ctx context.Context, cfg Config, stderr io.Writer) (*Report, error) {
	mix, err := parseMix(cfg.Mix)
	if err != nil {
		return nil, err
	}
	if cfg.Mode != "http" && cfg.Mode != "grpc" {
		return nil, fmt.Errorf("mode %q: want http or grpc", cfg.Mode)
	}
	inProcess := cfg.Target == "" && (cfg.Mode == "http" || !cfg.addrsSet)
	if cfg.Scenario == "chaos" && inProcess {
		for _, svc := range cfg.chaosServices() {
			if !slices.Contains(restartable, svc) {
				return nil, fmt.Errorf("-chaos-services: %q is not a service of the in-process shop (%s); other names need -target and -restart-cmd", svc, strings.Join(restartable, ", "))
			}
		}
	}
	r := &runner{cfg: cfg, mix: mix, stats: newStats(), stderr: stderr, orders: map[string]placedOrder{}}
	if inProcess {
		if err := r.startShop(ctx); err != nil {
			return nil, err
		}
		defer func() {
			r.shop.Close()
			os.RemoveAll(r.dataDir) // the in-process shop's data: audited by now
		}()
	} else {
		r.base, r.issuer, r.dataDir = strings.TrimRight(cfg.Target, "/"), cfg.Issuer, cfg.DataDir
	}
	if cfg.Mode == "grpc" {
		addrs := map[string]string{"catalog": cfg.CatalogAddr, "cart": cfg.CartAddr, "order": cfg.OrderAddr, "inventory": cfg.InventoryAddr}
		if r.shop != nil {
			for name := range addrs {
				addrs[name] = r.shop.Addr(name)
			}
		}
		svc, err := dialServices(addrs)
		if err != nil {
			return nil, err
		}
		defer svc.close()
		r.grpc = svc
	}
	if cfg.Ceiling && r.shop == nil && cfg.NATSURL == "" {
		return nil, errors.New("-ceiling with -target: needs -nats-url, the shop's NATS server")
	}
	if cfg.Scenario == "chaos" && r.shop == nil && cfg.RestartCmd == "" {
		return nil, errors.New("chaos: needs the in-process shop (no -target), or -restart-cmd for processes")
	}
	if cfg.NATSNodes != "" && (r.shop != nil || cfg.RestartCmd == "") {
		return nil, errors.New("-chaos-nats-nodes: needs -target and -restart-cmd (the nodes are processes)")
	}
	if err := r.login(ctx); err != nil {
		return nil, err
	}
	return r.run(ctx)
}

type runner struct {
	cfg     Config
	mix     tokenMix
	stats   *stats
	stderr  io.Writer
	shop    *shop.Main
	faults  *faultyProvider
	carrier *carrier.Simulated
	base    string
	grpc    *grpcServices // -mode grpc
	issuer  string
	dataDir string

	users    []shopAPI
	admin    shopAPI
	products []*catalogv1.Product

	mu       sync.Mutex
	orders   map[string]placedOrder // orders placed and not yet seen final
	restarts map[string]int
	faultLog []string
}

// startShop runs the shop in-process on random loopback ports, with gateway rate
// limits out of the way (the load comes from one address and few users).
func (r *runner) startShop(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "loadgen-shop-")
	if err != nil {
		return err
	}
	started := false
	defer func() {
		if !started {
			os.RemoveAll(dir)
		}
	}()
	m := shop.NewMain()
	m.Stdout, m.Stderr = io.Discard, io.Discard
	args := []string{"-data-dir", dir, "-nats-port", "0", "-issuer-addr", "127.0.0.1:0", "-log-level", "error",
		"-gateway-http-addr", "127.0.0.1:0",
		"-gateway-rate-ip", "1e9", "-gateway-rate-ip-burst", "1000000000",
		"-gateway-rate-user", "1e9", "-gateway-rate-user-burst", "1000000000"}
	for _, svc := range []string{"catalog", "cart", "order", "payment", "inventory", "shipping"} {
		args = append(args, "-"+svc+"-grpc-addr", "127.0.0.1:0")
	}
	args = append(args, strings.Fields(r.cfg.ShopFlags)...)
	if err := m.ParseFlags(args); err != nil {
		return fmt.Errorf("shop flags: %w", err)
	}
	r.faults = newFaultyProvider(m.Payment.SlowDelay)
	m.PaymentProvider = r.faults
	r.carrier = carrier.NewSimulated(carrier.Faults{FailRate: m.Shipping.FailRate, Latency: m.Shipping.Latency})
	m.ShippingCarrier = r.carrier
	if err := m.Run(ctx); err != nil {
		m.Close()
		return fmt.Errorf("start shop: %w", err)
	}
	r.shop, r.base, r.issuer, r.dataDir = m, m.StorefrontURL(), m.IssuerURL(), dir
	started = true
	return nil
}

func (r *runner) client(cred *credential) shopAPI {
	if r.grpc != nil {
		return &grpcClient{svc: r.grpc, cred: cred, stats: r.stats}
	}
	return &shopClient{base: r.base, cred: cred, stats: r.stats, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
	}}
}

// login gets real tokens from the dev issuer through the authorization-code flow:
// the demo shoppers alice and bob, and admin for setting stock.
func (r *runner) login(ctx context.Context) error {
	var sf devissuer.Client
	for _, c := range devissuer.DefaultClients() {
		if c.ID == "storefront" {
			sf = c
		}
	}
	tok := func(user string) (*credential, error) {
		login := func(ctx context.Context) (string, error) {
			t, err := devissuer.LoginAt(ctx, r.issuer, sf, user, user+"-password")
			if err != nil {
				return "", fmt.Errorf("login %s: %w", user, err)
			}
			return t, nil
		}
		t, err := login(ctx)
		if err != nil {
			return nil, err
		}
		return &credential{login: login, token: t}, nil
	}
	for _, u := range []string{"alice", "bob"} {
		c, err := tok(u)
		if err != nil {
			return err
		}
		r.users = append(r.users, r.client(c))
	}
	c, err := tok("admin")
	if err != nil {
		return err
	}
	r.admin = r.client(c)
	products, err := r.admin.listProducts(ctx)
	if err != nil {
		return err
	}
	if len(products) == 0 {
		return errors.New("the catalog lists no products")
	}
	r.products = products
	return nil
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	if r.cfg.Scenario == "flash-sale" {
		if err := r.admin.setStock(ctx, r.products[0].GetId(), int64(r.cfg.Units)); err != nil {
			return nil, fmt.Errorf("flash-sale stock: %w", err)
		}
	} else if r.cfg.Restock > 0 {
		for _, p := range r.products {
			if err := r.admin.setStock(ctx, p.GetId(), r.cfg.Restock); err != nil {
				return nil, fmt.Errorf("restock: %w", err)
			}
		}
	}
	r.stats.reset()

	stopProgress := r.progress()
	start := time.Now()
	var chaosDone chan struct{}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	switch r.cfg.Scenario {
	case "flash-sale":
		r.flashSale(loadCtx)
	case "steady", "chaos":
		if r.cfg.Scenario == "chaos" {
			chaosDone = make(chan struct{})
			go func() { defer close(chaosDone); r.chaos(loadCtx) }()
		}
		r.steady(loadCtx, chaosDone)
	default:
		return nil, fmt.Errorf("unknown scenario %q", r.cfg.Scenario)
	}
	if chaosDone != nil {
		<-chaosDone
	}
	r.awaitFinal(ctx)
	loadTime := time.Since(start)
	stopProgress()

	rep := r.stats.report(r.cfg.Scenario, loadTime)
	rep.OfferedRate, rep.Users = r.cfg.Rate, r.cfg.Users
	if r.cfg.Rate > 0 {
		rep.Users = 0
	}
	r.mu.Lock()
	rep.Restarts, rep.Faults = r.restarts, r.faultLog
	r.mu.Unlock()
	if rep.Unplaced > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d shoppers got no answer to PlaceOrder within %v", rep.Unplaced, r.cfg.FinalWait))
	}
	if rep.NotFinal > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d orders not final within %v", rep.NotFinal, r.cfg.FinalWait))
	}
	if r.cfg.Scenario == "flash-sale" {
		rep.Units = r.cfg.Units
		if rep.Completed != r.cfg.Units && r.cfg.Buyers >= r.cfg.Units {
			rep.Failures = append(rep.Failures, fmt.Sprintf("flash sale: %d orders completed, want exactly %d (the units)", rep.Completed, r.cfg.Units))
		}
	}
	if r.cfg.Scenario == "chaos" {
		for _, svc := range r.cfg.chaosServices() {
			if rep.Restarts[svc] < r.cfg.ChaosRounds {
				rep.Failures = append(rep.Failures, fmt.Sprintf("chaos: %s restarted %d times, want %d", svc, rep.Restarts[svc], r.cfg.ChaosRounds))
			}
		}
	}
	if r.cfg.Ceiling {
		r.measureCeiling(ctx, rep)
	}
	if src, ok := r.auditSources(); ok {
		// The audit runs even when the load was stopped (Ctrl-C cancels ctx): what
		// was done by then must still hold. It reads databases and is bounded here.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		a, err := audit.Run(actx, src)
		if err != nil {
			rep.Failures = append(rep.Failures, "audit: "+err.Error())
		} else {
			rep.Audit = &AuditSummary{Orders: a.Orders, Products: a.Products, ByStatus: a.ByStatus, Violations: []string{}}
			for _, v := range a.Violations {
				rep.Audit.Violations = append(rep.Audit.Violations, v.String())
			}
			if !a.OK() {
				rep.Failures = append(rep.Failures, fmt.Sprintf("audit: %d invariant violations", len(a.Violations)))
			}
		}
	}
	return rep, nil
}

// ceilingPublishers and ceilingMessages size the publish-rate measurement: as many
// publishers as the shop has concurrent saga writers under load, a few seconds long.
const (
	ceilingPublishers = 16
	ceilingMessages   = 20000
)

// ceilingServer is the shop's NATS server and how to connect to it as the operator.
func (r *runner) ceilingServer() (string, []nats.Option, error) {
	var (
		op  nats.Option
		err error
	)
	switch {
	case r.shop != nil:
		op, err = r.shop.Identities().Option(natsauth.Operator)
		return r.shop.NATSClientURL(), []nats.Option{op}, err
	case r.cfg.NATSNkey != "":
		op, err = natsauth.Option(natsauth.Operator, r.cfg.NATSNkey)
		return r.cfg.NATSURL, []nats.Option{op}, err
	}
	return r.cfg.NATSURL, nil, nil
}

// measureCeiling measures, after the load and on the same server, the raw JetStream
// publish rate and reports the run's throughput as a share of the ceiling it allows.
func (r *runner) measureCeiling(ctx context.Context, rep *Report) {
	url, opts, err := r.ceilingServer()
	var raw float64
	if err == nil {
		raw, err = jsbench.PublishRate(ctx, url, ceilingPublishers, ceilingMessages, opts...)
	}
	if err != nil {
		rep.Failures = append(rep.Failures, "ceiling: "+err.Error())
		return
	}
	c := &Ceiling{PublishesPerS: raw, WritesPerOrder: jsbench.WritesPerOrder, OrdersPerS: raw / jsbench.WritesPerOrder}
	c.Share = rep.Throughput / c.OrdersPerS
	rep.Ceiling = c
}

func (r *runner) auditSources() (audit.Sources, bool) {
	if d := r.cfg.AuditDSN; d != "" && r.shop == nil {
		return audit.Sources{Orders: d, Payments: d, Inventory: d, Shipping: d}, true
	}
	return audit.DataDir(r.dataDir), r.dataDir != ""
}

// progress prints the live line every second until the returned func is called.
func (r *runner) progress() func() {
	if !r.cfg.Progress {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(r.stderr, "\r%s\n", r.stats.progress())
				return
			case <-t.C:
				fmt.Fprintf(r.stderr, "\r%s", r.stats.progress())
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// awaitFinal watches every order not yet seen final until it is COMPLETED or
// CANCELLED, or FinalWait passes; the ones left are reported as not final.
func (r *runner) awaitFinal(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.FinalWait)
	defer cancel()
	r.mu.Lock()
	pending := make(map[string]shopAPI, len(r.orders))
	for id, p := range r.orders {
		pending[id] = p.by
	}
	r.mu.Unlock()
	slots := make(chan struct{}, awaitWatches)
	var wg sync.WaitGroup
	for id, c := range pending {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r.watchFinal(ctx, c, id)
		})
	}
	wg.Wait()
}

// placedOrder is an order placed and not yet seen final: when, and by whom (orders
// are private to their shopper).
type placedOrder struct {
	at time.Time
	by shopAPI
}

// parseConfig reads flags (and SHOP_LOADGEN_* variables through config.Parse).
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs)
	err := config.Parse(fs, args)
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "catalog-addr", "cart-addr", "order-addr", "inventory-addr":
			cfg.addrsSet = true
		}
	})
	return cfg, err
}
