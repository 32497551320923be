package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
)

// runNATSAuth creates the services' NATS identities (kept if they exist) and writes
// the nats-server users block for them, for a NATS server run on its own (split mode,
// Kubernetes). shopd's embedded server needs neither: it does the same at start.
func runNATSAuth(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("shopd nats-auth", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("dir", filepath.Join("data", "nats-identities"), "directory of the identities (one <name>.nk seed each, mode 0600); missing ones are created")
	out := flags.String("config", "", "where to write the nats-server users block (default <dir>/auth.conf); include it from the server's configuration")
	tlsHosts := flags.String("tls-hosts", "", "comma-separated DNS names of the NATS servers: also make a CA (ca.crt, ca.key) and a certificate for them (tls.crt, tls.key) in <dir>/tls, kept if present")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: shopd nats-auth [-dir DIR] [-config FILE] [-tls-hosts NAMES]")
		fmt.Fprintln(stderr, "Creates a NATS identity per service and the server configuration that admits them with their permissions.")
		fmt.Fprintln(stderr, "To rotate one, delete its .nk file, run this again, reload the server and restart that service.")
		flags.PrintDefaults()
	}
	if err := config.Parse(flags, args); err != nil {
		return err
	}
	ids, err := natsauth.Ensure(*dir)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(*dir, "auth.conf")
	}
	if err := os.WriteFile(*out, []byte(ids.ServerConfig()), 0o600); err != nil {
		return err
	}
	if *tlsHosts != "" {
		tlsDir := filepath.Join(*dir, "tls")
		if err := ensureTLS(tlsDir, strings.Split(*tlsHosts, ","), time.Now()); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "server certificate and CA:", tlsDir)
	}
	for _, name := range natsauth.Names {
		fmt.Fprintf(stdout, "%-9s %s  %s\n", name, ids.PublicKey(name), ids.SeedFile(name))
	}
	fmt.Fprintln(stdout, "server users:", *out)
	return nil
}

// ensureTLS makes, in dir, a private CA and a certificate signed by it for the NATS
// servers named hosts (server and client auth, as cluster routes are both), unless
// dir already holds them: re-running never replaces keys clients trust. The CA key
// stays in dir to sign a new server certificate later; keep it off the cluster.
func ensureTLS(dir string, hosts []string, now time.Time) error {
	if _, err := os.Stat(filepath.Join(dir, "tls.crt")); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "eventshop NATS CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	files := []struct {
		name, kind string
		der        func() ([]byte, error)
	}{
		{"ca.crt", "CERTIFICATE", func() ([]byte, error) { return caDER, nil }},
		{"ca.key", "PRIVATE KEY", func() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(caKey) }},
		{"tls.key", "PRIVATE KEY", func() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(key) }},
		// Last: its presence says the set is complete.
		{"tls.crt", "CERTIFICATE", func() ([]byte, error) { return leafDER, nil }},
	}
	for _, f := range files {
		der, err := f.der()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: der}), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
