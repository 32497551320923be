package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/pkg/natsauth"
)

// What shopd nats-auth makes for a NATS server run on its own (the Kubernetes
// Secrets) works in a real server laid out as the manifests lay it out: TLS with
// the generated CA, the users included from a directory beside the configuration.
// Services get in only with their identity and the CA.
func TestNATSAuthMakesWhatARealServerUses(t *testing.T) {
	root := t.TempDir()
	ids := filepath.Join(root, "auth")
	const host = "nats.eventshop-infra.svc.cluster.local"
	args := []string{"-dir", ids, "-tls-hosts", host + ",*.nats-headless.eventshop-infra.svc.cluster.local"}
	if err := runNATSAuth(context.Background(), args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(filepath.Join(ids, "tls", "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := runNATSAuth(context.Background(), args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(ids, "tls", "tls.crt")); !bytes.Equal(again, cert) {
		t.Fatal("a second run replaced the server certificate")
	}
	for _, f := range []string{"ca.key", "tls.key"} {
		if st, err := os.Stat(filepath.Join(ids, "tls", f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, st, err)
		}
	}

	// As in deploy/k8s/infra/nats.yaml: the configuration in config/, the users in
	// auth/ beside it (an include path is relative to the including file).
	tlsDir := filepath.Join(ids, "tls")
	conf := fmt.Sprintf(`port: -1
host: 127.0.0.1
jetstream { store_dir: %q }
tls { cert_file: %q, key_file: %q, ca_file: %q }
include ../auth/auth.conf
`, filepath.Join(root, "js"), filepath.Join(tlsDir, "tls.crt"), filepath.Join(tlsDir, "tls.key"), filepath.Join(tlsDir, "ca.crt"))
	if err := os.MkdirAll(filepath.Join(root, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(root, "config", "nats.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	url := "tls://127.0.0.1:" + portOf(srv)
	name := nats.Secure(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})

	flags := natsauth.ClientFlags{Nkey: filepath.Join(ids, natsauth.Payment+".nk"), CA: filepath.Join(tlsDir, "ca.crt")}
	nc, err := flags.Connect(url, natsauth.Payment, name)
	if err != nil {
		t.Fatalf("payment with its identity and the CA: %v", err)
	}
	nc.Close()

	if nc, err := (natsauth.ClientFlags{CA: flags.CA}).Connect(url, "anonymous", name); err == nil {
		nc.Close()
		t.Fatal("a client without an identity connected over TLS")
	}
	if nc, err := (natsauth.ClientFlags{Nkey: flags.Nkey}).Connect(url, natsauth.Payment, name); err == nil {
		nc.Close()
		t.Fatal("a client that does not trust the shop's CA connected")
	}
	if nc, err := flags.Connect(strings.Replace(url, "tls://", "nats://", 1), natsauth.Payment, nats.Secure(&tls.Config{ServerName: "evil.example", MinVersion: tls.VersionTLS12})); err == nil {
		nc.Close()
		t.Fatal("connected although the certificate names another host")
	}
}

func portOf(s *server.Server) string {
	a := s.Addr().String()
	return a[strings.LastIndex(a, ":")+1:]
}
