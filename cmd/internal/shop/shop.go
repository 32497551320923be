// Package shop is the whole shop in one process: embedded NATS, the dev OIDC issuer,
// every service on its own port and the gateway. shopd runs it; loadgen runs it too, so
// its chaos scenario can stop and restart services in-process.
package shop

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/gateway"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/services/cart"
	"github.com/eventshop/eventshop/services/catalog"
	"github.com/eventshop/eventshop/services/inventory"
	"github.com/eventshop/eventshop/services/order"
	orderapp "github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/payment"
	"github.com/eventshop/eventshop/services/payment/provider"
	"github.com/eventshop/eventshop/services/shipping"
	"github.com/eventshop/eventshop/services/shipping/carrier"
)

// Main is the shopd program with its configuration, so tests can run the real thing
// on random ports.
type Main struct {
	DataDir  string
	NATSURL  string
	NATSPort int
	NATSSync bool
	// NATSIdentities is the directory of the services' NATS identities; empty means
	// <DataDir>/nats-identities. They are created there at first start.
	NATSIdentities string
	IssuerAddr     string
	OIDCIssuer     string
	OIDCAudience   string
	LogLevel       string

	Catalog   catalog.Config
	Cart      cart.Config
	Order     order.Config
	Payment   payment.Config
	Inventory inventory.Config
	Shipping  shipping.Config
	Gateway   gateway.Config
	// Telemetry is set up once for the process as service "shopd"; each service
	// reports under its own name (telemetry.ForService).
	Telemetry telemetry.Config
	// TelemetryOptions are added to Setup's (tests record spans with them).
	TelemetryOptions []telemetry.Option

	Stdout io.Writer
	Stderr io.Writer

	// PaymentProvider replaces the simulated card network (tests inject faults).
	PaymentProvider provider.Provider
	// WrapOrderCancel is middleware around how the order service puts a user's
	// cancellation to the saga (tests force interleavings; see order.Deps).
	WrapOrderCancel func(orderapp.SagaCanceller) orderapp.SagaCanceller
	// ShippingCarrier replaces the simulated carrier (tests inject faults).
	ShippingCarrier carrier.Carrier

	logger    *slog.Logger
	tel       *telemetry.Telemetry
	nats      *natsembed.Server
	ids       *natsauth.Identities
	conns     []*nats.Conn
	issuer    *devissuer.Issuer
	issuerURL string
	services  []*service
	runCtx    context.Context

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	errs   []error
}

// NewMain returns a Main with the defaults of a laptop run.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr}
}

// FlagSet defines every shopd flag; each one can also be set from SHOP_<NAME>.
func (m *Main) FlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("shopd", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.DataDir, "data-dir", "data", "directory for the embedded NATS store and SQLite files")
	fs.StringVar(&m.NATSURL, "nats-url", "", "external NATS JetStream URL; empty starts an embedded server")
	fs.IntVar(&m.NATSPort, "nats-port", 4223, "port of the embedded NATS server (0 picks one)")
	fs.StringVar(&m.NATSIdentities, "nats-identities", "", "directory of the services' NATS identities (nkey seeds), created at first start; default <data-dir>/nats-identities")
	fs.BoolVar(&m.NATSSync, "nats-sync-always", false, "embedded NATS fsyncs every JetStream write before acknowledging it (slower; survives a machine crash)")
	fs.StringVar(&m.IssuerAddr, "issuer-addr", "127.0.0.1:9400", "listen address of the dev OIDC issuer")
	fs.StringVar(&m.OIDCIssuer, "oidc-issuer", "", "external OIDC issuer URL; empty starts the dev issuer")
	fs.StringVar(&m.OIDCAudience, "oidc-audience", "eventshop", "audience the services require in access tokens")
	fs.StringVar(&m.LogLevel, "log-level", "info", "debug, info, warn or error")
	addPrefixed(fs, "catalog-", m.Catalog.RegisterFlags)
	addPrefixed(fs, "cart-", m.Cart.RegisterFlags)
	addPrefixed(fs, "order-", m.Order.RegisterFlags)
	fs.Func("event-store", "where order streams and saga logs are kept, as -order-event-store: jetstream (default), memory (lost at exit) or an EventStoreDB URL (esdb://host:2113?tls=false)", func(v string) error {
		m.Order.EventStore = v
		return nil
	})
	addPrefixed(fs, "payment-", m.Payment.RegisterFlags)
	addPrefixed(fs, "inventory-", m.Inventory.RegisterFlags)
	addPrefixed(fs, "shipping-", m.Shipping.RegisterFlags)
	addPrefixed(fs, "gateway-", m.Gateway.RegisterFlags)
	m.Telemetry.RegisterFlags(fs)
	return fs
}

// ParseFlags reads flags and SHOP_* variables. It returns flag.ErrHelp for -h.
func (m *Main) ParseFlags(args []string) error {
	fs := m.FlagSet()
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// shopd takes flags only: a word here is a command misspelt, and starting
		// a shop for it would be a surprise.
		return fmt.Errorf("unexpected argument %q (shopd help lists the commands)", fs.Arg(0))
	}
	return nil
}

// Run starts everything and returns once every service is listening.
func (m *Main) Run(ctx context.Context) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	m.Telemetry.ServiceName = "shopd"
	opts := append([]telemetry.Option{telemetry.WithLogOutput(m.Stderr), telemetry.WithLogLevel(lvl)}, m.TelemetryOptions...)
	tel, err := telemetry.Setup(ctx, m.Telemetry, opts...)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	m.tel = tel
	m.logger = tel.Logger()

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.runCtx = runCtx

	// Each service reaches NATS as itself, with only its role's permissions; the
	// embedded server admits no one else.
	if m.NATSIdentities == "" {
		m.NATSIdentities = filepath.Join(m.DataDir, "nats-identities")
	}
	if m.ids, err = natsauth.Ensure(m.NATSIdentities); err != nil {
		return err
	}
	probe, err := m.ids.Option(natsauth.Operator)
	if err != nil {
		return err
	}
	m.nats, err = natsembed.Start(ctx, natsembed.Config{
		URL:        m.NATSURL,
		StoreDir:   filepath.Join(m.DataDir, "nats"),
		Port:       m.NATSPort,
		SyncAlways: m.NATSSync,
		Users:      m.ids.Users(),
		Identity:   probe,
		Logger:     m.logger,
	})
	if err != nil {
		return err
	}
	ncs := map[string]*nats.Conn{}
	for _, name := range []string{natsauth.Cart, natsauth.Payment, natsauth.Inventory, natsauth.Shipping, natsauth.Order, natsauth.Gateway} {
		if ncs[name], err = m.ConnectNATS(name); err != nil {
			return err
		}
	}

	// The gateway's port is known before the issuer starts, so the dev issuer takes
	// the storefront's redirect to it whatever -gateway-http-addr says.
	gwAddr := m.Gateway.HTTPAddr
	if gwAddr == "" {
		gwAddr = gateway.DefaultHTTPAddr
	}
	gwLis, err := net.Listen("tcp", gwAddr)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	defer func() {
		if gwLis != nil { // not handed to the gateway: Run failed before it
			gwLis.Close()
		}
	}()

	m.issuerURL = m.OIDCIssuer
	if m.issuerURL == "" {
		m.issuer, err = devissuer.Start(ctx, devissuer.Config{
			Clients: storefrontClients(gwLis.Addr(), m.Gateway.PublicURL),
			Addr:    m.IssuerAddr, Logger: m.logger.With("service", "devissuer"),
			// Under the data dir, so a restart (or a crash) signs nobody out.
			KeyFile: filepath.Join(m.DataDir, "issuer-key.pem"),
		})
		if err != nil {
			return fmt.Errorf("dev issuer: %w", err)
		}
		m.issuerURL = m.issuer.URL()
	}
	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: m.issuerURL, Audience: m.OIDCAudience})
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}

	dsn := func(name string) string { return filepath.Join(m.DataDir, name+".db") }
	// Each service names itself in its log lines ("service"), as it does when it
	// runs alone: the loggers given here carry no name, or the key came twice.

	// Catalog first: the others ask it for prices, weights and the products to stock.
	newCatalog := func(addr string) (runner, error) {
		cfg := m.Catalog
		cfg.GRPCAddr = defaultString(addr, "", cfg.GRPCAddr)
		return catalog.New(runCtx, cfg, catalog.Deps{Logger: m.logger, Verifier: verifier})
	}
	if err := m.build(runCtx, "catalog", newCatalog); err != nil {
		return err
	}
	catalogAddr := m.Addr("catalog")

	cartCfg := m.Cart
	cartCfg.CatalogAddr = catalogAddr
	newCart := func(addr string) (runner, error) {
		cfg := cartCfg
		cfg.GRPCAddr = defaultString(addr, "", cfg.GRPCAddr)
		return cart.New(runCtx, cfg, cart.Deps{Logger: m.logger, Verifier: verifier, NATS: ncs["cart"]})
	}
	if err := m.build(runCtx, "cart", newCart); err != nil {
		return err
	}

	payCfg := m.Payment
	payCfg.DBDSN = defaultString(payCfg.DBDSN, payment.DefaultDBDSN, dsn("payment"))
	newPayment := func(addr string) (runner, error) {
		cfg := payCfg
		cfg.GRPCAddr = defaultString(addr, "", cfg.GRPCAddr)
		svc, err := payment.New(runCtx, cfg, payment.Deps{Logger: m.logger, Verifier: verifier, NATS: ncs["payment"], Provider: m.PaymentProvider})
		return svc, err
	}
	if err := m.build(runCtx, "payment", newPayment); err != nil {
		return err
	}

	invCfg := m.Inventory
	invCfg.CatalogAddr = catalogAddr
	invCfg.DBDSN = defaultString(invCfg.DBDSN, inventory.DefaultDBDSN, dsn("inventory"))
	newInventory := func(addr string) (runner, error) {
		cfg := invCfg
		cfg.GRPCAddr = defaultString(addr, "", cfg.GRPCAddr)
		svc, err := inventory.New(runCtx, cfg, inventory.Deps{Logger: m.logger, Verifier: verifier, NATS: ncs["inventory"]})
		return svc, err
	}
	if err := m.build(runCtx, "inventory", newInventory); err != nil {
		return err
	}

	shipCfg := m.Shipping
	shipCfg.CatalogAddr = catalogAddr
	shipCfg.DBDSN = defaultString(shipCfg.DBDSN, shipping.DefaultDBDSN, dsn("shipping"))
	newShipping := func(addr string) (runner, error) {
		cfg := shipCfg
		cfg.GRPCAddr = defaultString(addr, "", cfg.GRPCAddr)
		svc, err := shipping.New(runCtx, cfg, shipping.Deps{Logger: m.logger, Verifier: verifier, NATS: ncs["shipping"], Carrier: m.ShippingCarrier})
		return svc, err
	}
	if err := m.build(runCtx, "shipping", newShipping); err != nil {
		return err
	}

	ordCfg := m.Order
	ordCfg.CatalogAddr = catalogAddr
	if ordCfg.ShippingAddr == "" {
		ordCfg.ShippingAddr = m.Addr("shipping")
	}
	if ordCfg.ReadDSN == "" {
		ordCfg.ReadDSN = dsn("order-read")
	}
	newOrder := func(addr string) (runner, error) {
		cfg := ordCfg
		cfg.GRPCAddr = defaultString(addr, "", cfg.GRPCAddr)
		svc, err := order.New(runCtx, cfg, order.Deps{Logger: m.logger, Verifier: verifier, NATS: ncs["order"], WrapSagaCanceller: m.WrapOrderCancel})
		return svc, err
	}
	if err := m.build(runCtx, "order", newOrder); err != nil {
		return err
	}

	// The gateway last: it fronts every service started above.
	gc := m.Gateway
	gc.CatalogAddr, gc.CartAddr, gc.OrderAddr = catalogAddr, m.Addr("cart"), m.Addr("order")
	gc.PaymentAddr, gc.InventoryAddr, gc.ShippingAddr = m.Addr("payment"), m.Addr("inventory"), m.Addr("shipping")
	if gc.OIDCIssuer == "" {
		gc.OIDCIssuer = m.issuerURL
	}
	if m.issuer != nil && gc.OIDCClientSecret == "" {
		gc.OIDCClientSecret = devissuer.StorefrontSecret
	}
	gwJS, err := jetstream.New(ncs[natsauth.Gateway])
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	// The admin pages replay dead letters as the operator: in one process the shop
	// holds every identity anyway (a gateway run on its own gets no Operations).
	opNC, err := m.ConnectNATS(natsauth.Operator)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	opJS, err := jetstream.New(opNC)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	ops := &gateway.Operations{DeadLetters: messaging.NewDeadLetters(opJS), StuckSagas: m.stuckSagas}
	newGateway := func(addr string) (runner, error) {
		cfg := gc
		deps := gateway.Deps{Logger: m.logger, Verifier: verifier, JetStream: gwJS, Operations: ops, Telemetry: m.tel.ForService("gateway")}
		if addr == "" { // the first start, on the listener the issuer was told of
			deps.Listener, gwLis = gwLis, nil
		}
		cfg.HTTPAddr = defaultString(addr, "", cfg.HTTPAddr)
		return gateway.New(runCtx, cfg, deps)
	}
	return m.build(runCtx, "gateway", newGateway)
}

// StorefrontURL is where a browser reaches the shop; empty while the gateway is
// stopped.
func (m *Main) StorefrontURL() string {
	gw, _ := m.running("gateway").(*gateway.Gateway)
	if gw == nil {
		return ""
	}
	return gw.URL()
}

// storefrontClients are the dev issuer's clients with the storefront's redirect URIs
// on the gateway's bound address added: under each loopback name, and publicURL's.
// The default ones stay, for tools that log in as the storefront on its default port.
func storefrontClients(gw net.Addr, publicURL string) []devissuer.Client {
	clients := devissuer.DefaultClients()
	_, port, _ := net.SplitHostPort(gw.String())
	var uris []string
	if publicURL != "" {
		uris = append(uris, strings.TrimSuffix(publicURL, "/")+"/auth/callback")
	}
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]"} {
		uris = append(uris, "http://"+host+":"+port+"/auth/callback")
	}
	if ip := gw.(*net.TCPAddr).IP; !ip.IsLoopback() && !ip.IsUnspecified() {
		uris = append(uris, "http://"+gw.String()+"/auth/callback")
	}
	for i := range clients {
		if clients[i].ID != devissuer.StorefrontClientID {
			continue
		}
		for _, u := range uris {
			if !slices.Contains(clients[i].RedirectURIs, u) {
				clients[i].RedirectURIs = append(clients[i].RedirectURIs, u)
			}
		}
	}
	return clients
}

// stuckSagas are the running order service's (gateway.Operations).
func (m *Main) stuckSagas(ctx context.Context) ([]saga.State, error) {
	svc := m.OrderService()
	if svc == nil {
		return nil, errors.New("the order service is stopped")
	}
	return svc.StuckSagas(ctx)
}

// runner is a built service: what Stop and Start need of it.
type runner interface {
	Addr() net.Addr
	Run(ctx context.Context) error
}

// build creates a restartable service and starts it.
func (m *Main) build(ctx context.Context, name string, newSvc func(addr string) (runner, error)) error {
	svc, err := newSvc("")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	m.start(ctx, name, svc.Addr().String(), svc.Run, newSvc)
	m.services[len(m.services)-1].current = svc
	return nil
}

// defaultString returns override when v is still the package default, so shopd keeps
// every database under -data-dir unless a flag says otherwise.
func defaultString(v, pkgDefault, override string) string {
	if v == "" || v == pkgDefault {
		return override
	}
	return v
}

type service struct {
	name string
	addr string
	// newSvc rebuilds the service on an address; nil for services Stop cannot stop.
	newSvc  func(addr string) (runner, error)
	current runner
	stop    context.CancelFunc
	done    chan struct{}
}

func (m *Main) start(ctx context.Context, name, addr string, run func(context.Context) error, newSvc func(string) (runner, error)) {
	s := &service{name: name, addr: addr, newSvc: newSvc}
	m.services = append(m.services, s)
	m.serve(ctx, s, run)
}

func (m *Main) serve(ctx context.Context, s *service, run func(context.Context) error) {
	// Spans started from this context (consumers, followers, projectors, the gRPC
	// server) report as this service, not as shopd.
	ctx = telemetry.NewContext(ctx, m.tel.ForService(s.name))
	ctx, s.stop = context.WithCancel(ctx)
	s.done = make(chan struct{})
	name := s.name
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(s.done)
		if err := run(ctx); err != nil {
			m.logger.Error("service stopped", "service", name, "error", err)
			m.errMu.Lock()
			m.errs = append(m.errs, fmt.Errorf("%s: %w", name, err))
			m.errMu.Unlock()
		}
	}()
}

func (m *Main) service(name string) (*service, error) {
	for _, s := range m.services {
		if s.name == name {
			if s.newSvc == nil {
				return nil, fmt.Errorf("shopd: %s cannot be stopped and started", name)
			}
			return s, nil
		}
	}
	return nil, fmt.Errorf("shopd: no service %q", name)
}

// Stop stops one service (catalog, cart, payment, inventory, shipping, order or
// gateway) as a crash would look to the others: its consumers stop taking messages,
// unacknowledged ones come back later, and its port closes. It returns once the
// service has stopped, or ctx's error, and an error naming a service that cannot be
// stopped.
func (m *Main) Stop(ctx context.Context, name string) error {
	s, err := m.service(name)
	if err != nil {
		return err
	}
	s.stop()
	select {
	case <-s.done:
		s.current = nil
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shopd: stop %s: %w", name, ctx.Err())
	}
}

// Start starts a stopped service again on its former address, with its data. It
// returns the service's construction error, or an error for a service that is
// running or cannot be started.
func (m *Main) Start(ctx context.Context, name string) error {
	s, err := m.service(name)
	if err != nil {
		return err
	}
	if s.current != nil {
		return fmt.Errorf("shopd: %s is running", name)
	}
	svc, err := s.newSvc(s.addr)
	if err != nil {
		return fmt.Errorf("shopd: start %s: %w", name, err)
	}
	s.current = svc
	m.serve(m.runCtx, s, svc.Run)
	return nil
}

// Restart is Stop then Start.
func (m *Main) Restart(ctx context.Context, name string) error {
	if err := m.Stop(ctx, name); err != nil {
		return err
	}
	return m.Start(ctx, name)
}

// PaymentService, InventoryService, ShippingService and OrderService return the
// running instance of a service, nil while it is stopped.
func (m *Main) PaymentService() *payment.Service {
	svc, _ := m.running("payment").(*payment.Service)
	return svc
}

// InventoryService: see PaymentService.
func (m *Main) InventoryService() *inventory.Service {
	svc, _ := m.running("inventory").(*inventory.Service)
	return svc
}

// ShippingService: see PaymentService.
func (m *Main) ShippingService() *shipping.Service {
	svc, _ := m.running("shipping").(*shipping.Service)
	return svc
}

// OrderService: see PaymentService.
func (m *Main) OrderService() *order.Service {
	svc, _ := m.running("order").(*order.Service)
	return svc
}

func (m *Main) running(name string) runner {
	for _, s := range m.services {
		if s.name == name {
			return s.current
		}
	}
	return nil
}

// Summary is the one-line description of where everything listens.
func (m *Main) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nats=%s issuer=%s", m.nats.ClientURL(), m.issuerURL)
	for _, s := range m.services {
		fmt.Fprintf(&b, " %s=%s", s.name, s.addr)
	}
	return b.String()
}

// IssuerURL is the OIDC issuer the services trust.
func (m *Main) IssuerURL() string { return m.issuerURL }

// Issuer is the dev issuer, nil when an external one is configured.
func (m *Main) Issuer() *devissuer.Issuer { return m.issuer }

// NATSClientURL returns the URL of the NATS server in use.
func (m *Main) NATSClientURL() string { return m.nats.ClientURL() }

// Identities are the NATS identities the services connect with.
func (m *Main) Identities() *natsauth.Identities { return m.ids }

// ConnectNATS connects to the shop's NATS server as identity name (natsauth.Names:
// a service, or natsauth.Operator for tools); Close closes the connection.
func (m *Main) ConnectNATS(name string, opts ...nats.Option) (*nats.Conn, error) {
	as, err := m.ids.Option(name)
	if err != nil {
		return nil, err
	}
	// The server refuses what a role may not do by an asynchronous error (a publish
	// has no answer); log it, or a missing permission would fail silently.
	logAsync := nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		m.logger.Error("nats", "identity", name, "subscription", subject, "error", err)
	})
	nc, err := m.nats.Connect(append([]nats.Option{nats.Name("shopd " + name), as, logAsync}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("nats connect as %s: %w", name, err)
	}
	m.conns = append(m.conns, nc)
	return nc, nil
}

// Addr returns the bound address of a started service by name ("catalog", ...), or
// "" if it is not running.
func (m *Main) Addr(name string) string {
	for _, s := range m.services {
		if s.name == name {
			return s.addr
		}
	}
	return ""
}

// Close stops the services (draining in-flight calls), then the issuer and NATS.
func (m *Main) Close() error {
	if m.cancel != nil {
		m.cancel()
	}
	// A service that outlives the 30 s below may still fail and record it (serve),
	// so every record goes through errMu.
	fail := func(err error) {
		m.errMu.Lock()
		m.errs = append(m.errs, err)
		m.errMu.Unlock()
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		fail(errors.New("services did not stop within 30s"))
	}
	if m.tel != nil {
		// Every service has stopped: flush their last spans.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.tel.Shutdown(sctx); err != nil {
			fail(fmt.Errorf("telemetry: %w", err))
		}
		cancel()
	}
	if m.issuer != nil {
		if err := m.issuer.Close(); err != nil {
			fail(fmt.Errorf("issuer: %w", err))
		}
	}
	for _, nc := range m.conns {
		nc.Close()
	}
	if m.nats != nil {
		m.nats.Close()
	}
	m.errMu.Lock()
	defer m.errMu.Unlock()
	return errors.Join(m.errs...)
}

// addPrefixed lets one service register its own flags, then re-exposes each of them
// on into under prefix (sharing the flag.Value), so two services' -grpc-addr never
// collide inside one process.
func addPrefixed(into *flag.FlagSet, prefix string, register func(*flag.FlagSet)) {
	own := flag.NewFlagSet(prefix, flag.ContinueOnError)
	register(own)
	own.VisitAll(func(f *flag.Flag) { into.Var(f.Value, prefix+f.Name, f.Usage) })
}
