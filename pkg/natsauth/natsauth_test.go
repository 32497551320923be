package natsauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/natsembed"
)

func TestEnsureCreatesOwnerOnlySeedsOnceAndOpenRefusesReadableOnes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ids")
	ids, err := natsauth.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode = %v, %v; want 0700", st.Mode().Perm(), err)
	}
	seen := map[string]bool{}
	for _, name := range natsauth.Names {
		st, err := os.Stat(ids.SeedFile(name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode = %v, %v; want 0600", name, st.Mode().Perm(), err)
		}
		pub := ids.PublicKey(name)
		if !strings.HasPrefix(pub, "U") || seen[pub] {
			t.Fatalf("%s public key %q: want a distinct user key", name, pub)
		}
		seen[pub] = true
	}

	again, err := natsauth.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range natsauth.Names {
		if again.PublicKey(name) != ids.PublicKey(name) {
			t.Fatalf("%s changed on the second Ensure", name)
		}
	}

	if err := os.Chmod(ids.SeedFile(natsauth.Payment), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.Open(dir); err == nil || !strings.Contains(err.Error(), "payment.nk") {
		t.Fatalf("Open with a world-readable seed = %v; want an error naming it", err)
	}
	if err := os.WriteFile(ids.SeedFile(natsauth.Payment), []byte("not a seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.Open(dir); err == nil {
		t.Fatal("Open with a garbage seed succeeded")
	}
	if err := os.Remove(ids.SeedFile(natsauth.Payment)); err != nil {
		t.Fatal(err)
	}
	rotated, err := natsauth.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.PublicKey(natsauth.Payment) == ids.PublicKey(natsauth.Payment) ||
		rotated.PublicKey(natsauth.Order) != ids.PublicKey(natsauth.Order) {
		t.Fatal("deleting one seed must rotate that identity and no other")
	}
}

func TestServerConfigIsWhatTheEmbeddedServerEnforces(t *testing.T) {
	ids, err := natsauth.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.conf"), []byte(ids.ServerConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	main := "port: -1\ninclude auth.conf\n"
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
	if err != nil {
		t.Fatalf("nats-server refuses the generated configuration: %v", err)
	}
	want := map[string]*server.Permissions{}
	for _, u := range ids.Users() {
		want[u.Nkey] = u.Permissions
	}
	if len(opts.Nkeys) != len(want) {
		t.Fatalf("config has %d users, want %d", len(opts.Nkeys), len(want))
	}
	for _, u := range opts.Nkeys {
		p, ok := want[u.Nkey]
		if !ok {
			t.Fatalf("unknown user %s in config", u.Nkey)
		}
		if !reflect.DeepEqual(u.Permissions.Publish.Allow, p.Publish.Allow) || !reflect.DeepEqual(u.Permissions.Subscribe.Allow, p.Subscribe.Allow) {
			t.Fatalf("user %s: config permissions %+v %+v, embedded %+v %+v", u.Nkey,
				u.Permissions.Publish, u.Permissions.Subscribe, p.Publish, p.Subscribe)
		}
	}
}

// shop is an embedded server that accepts only the identities.
type shop struct {
	srv *natsembed.Server
	ids *natsauth.Identities
}

func startShop(t *testing.T) *shop {
	t.Helper()
	ids, err := natsauth.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsembed.Start(context.Background(), natsembed.Config{StoreDir: t.TempDir(), Users: ids.Users()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &shop{srv: srv, ids: ids}
}

// as connects as name; permission violations the server reports arrive on the channel.
func (s *shop) as(t *testing.T, name string) (jetstream.JetStream, <-chan error) {
	t.Helper()
	opt, err := s.ids.Option(name)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	nc, err := s.srv.Connect(opt, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, errs
}

func violation(t *testing.T, errs <-chan error, subject string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subject) {
			t.Fatalf("got %v, want a permission violation for %s", err, subject)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no permission violation for %s", subject)
	}
}

func msgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestAClientWithoutAnIdentityIsRefused(t *testing.T) {
	s := startShop(t)
	if nc, err := nats.Connect(s.srv.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("err = %v, want an authorization violation", err)
	}
}

func TestEachRoleDoesItsWorkAndNothingElse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startShop(t)
	op, _ := s.as(t, natsauth.Operator)

	// Every service declares the shared streams at start-up.
	pay, payErrs := s.as(t, natsauth.Payment)
	if err := messaging.DeclareStreams(ctx, pay, messaging.StreamsConfig{}); err != nil {
		t.Fatalf("payment declares the streams: %v", err)
	}
	order, _ := s.as(t, natsauth.Order)
	if err := messaging.DeclareStreams(ctx, order, messaging.StreamsConfig{}); err != nil {
		t.Fatalf("order declares the streams: %v", err)
	}

	// Only order sends commands; payment takes its own from its own consumer.
	if _, err := order.Publish(ctx, "cmd.payment.authorize", []byte("x")); err != nil {
		t.Fatalf("order sends a command: %v", err)
	}
	cons, err := pay.CreateOrUpdateConsumer(ctx, messaging.CommandStream, jetstream.ConsumerConfig{
		Durable: natsauth.CommandConsumer(natsauth.Payment), FilterSubject: "cmd.payment.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("payment declares its consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("payment acknowledges its command: %v", err)
		}
	}
	if _, err := pay.Publish(ctx, "evt.payment.authorized", []byte("x")); err != nil {
		t.Fatalf("payment replies: %v", err)
	}

	// What a compromised payment must not do.
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	before := map[string]uint64{}
	for _, st := range []string{messaging.CommandStream, messaging.EventStream} {
		before[st] = msgs(t, op, st)
	}
	if _, err := pay.Publish(short(), "cmd.shipping.cancel", []byte("x")); err == nil {
		t.Fatal("payment sent a command")
	}
	violation(t, payErrs, "cmd.shipping.cancel")
	if _, err := pay.Publish(short(), "evt.shipping.created", []byte("x")); err == nil {
		t.Fatal("payment spoke for shipping")
	}
	violation(t, payErrs, "evt.shipping.created")
	for _, filter := range []string{"cmd.shipping.>", "cmd.>"} {
		if _, err := pay.CreateOrUpdateConsumer(short(), messaging.CommandStream, jetstream.ConsumerConfig{
			Durable: natsauth.CommandConsumer(natsauth.Payment), FilterSubject: filter,
		}); err == nil {
			t.Fatalf("payment pointed its consumer at %s", filter)
		}
		violation(t, payErrs, filter)
	}
	if _, err := pay.CreateOrUpdateConsumer(short(), messaging.CommandStream, jetstream.ConsumerConfig{
		Durable: natsauth.CommandConsumer(natsauth.Shipping), FilterSubject: "cmd.shipping.>",
	}); err == nil {
		t.Fatal("payment created shipping's consumer")
	}
	violation(t, payErrs, "shipping-commands")
	if err := pay.DeleteStream(short(), messaging.EventStream); err == nil {
		t.Fatal("payment deleted a stream")
	}
	violation(t, payErrs, "STREAM.DELETE")
	if _, err := pay.PauseConsumer(short(), messaging.CommandStream, natsauth.CommandConsumer(natsauth.Payment), time.Now().Add(time.Hour)); err == nil {
		t.Fatal("payment paused a consumer")
	}
	violation(t, payErrs, "CONSUMER.PAUSE")
	if _, err := pay.KeyValue(short(), natsauth.CartBucket); err == nil {
		t.Fatal("payment opened the carts bucket")
	}
	violation(t, payErrs, "KV_carts")
	if _, err := pay.Conn().Subscribe(natsauth.InboxPrefix(natsauth.Order)+".>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	violation(t, payErrs, "_INBOX_order")
	if _, err := pay.Conn().Subscribe(">", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	violation(t, payErrs, ">")
	for st, n := range before {
		if got := msgs(t, op, st); got != n {
			t.Fatalf("%s holds %d messages after the refusals, want %d", st, got, n)
		}
	}

	// Cart owns the carts bucket.
	cart, _ := s.as(t, natsauth.Cart)
	kv, err := cart.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: natsauth.CartBucket})
	if err != nil {
		t.Fatalf("cart opens its bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "u1", []byte("cart")); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "u1"); err != nil || string(e.Value()) != "cart" {
		t.Fatalf("cart reads its bucket: %v", err)
	}
	if _, err := pay.KeyValue(short(), natsauth.CartBucket); err == nil {
		t.Fatal("payment opened the carts bucket")
	}
	violation(t, payErrs, "KV_carts")
}
