package devissuer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventshop/eventshop/pkg/auth/devissuer"
)

// With a key file, a token issued before the issuer restarts (on the same address)
// still verifies after it, the file is the owner's only, and an unreadable key file
// stops the start instead of being replaced (which would sign everyone out).
func TestKeyFileSurvivesRestart(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "data", "issuer-key.pem")
	first, err := devissuer.Start(t.Context(), devissuer.Config{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(first.URL(), "http://")
	tok, err := first.Login(t.Context(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}

	second := start(t, devissuer.Config{Addr: addr, KeyFile: keyFile})
	if c := verify(t, second, tok); c.Subject != "alice" {
		t.Fatalf("token from before the restart: subject %q", c.Subject)
	}

	bad := filepath.Join(t.TempDir(), "issuer-key.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := devissuer.Start(t.Context(), devissuer.Config{KeyFile: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("start with a broken key file: %v, want an error naming it", err)
	}
	if raw, _ := os.ReadFile(bad); string(raw) != "not a key" {
		t.Fatal("a broken key file was replaced")
	}
}
