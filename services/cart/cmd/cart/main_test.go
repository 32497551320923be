package main

import (
	"context"
	"strings"
	"testing"

	"github.com/eventshop/eventshop/pkg/auth/devissuer"
)

func TestRunRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no issuer", nil, []string{"-nats-store-dir", t.TempDir()}, "-oidc-issuer"},
		{"quantity above the API limit", map[string]string{"SHOP_MAX_QUANTITY": "500"}, []string{"-oidc-issuer", "http://127.0.0.1:1"}, "max-quantity"},
		{"bad env value", map[string]string{"SHOP_CART_TTL": "a week"}, nil, "SHOP_CART_TTL"},
		{"unreachable nats", nil, []string{"-oidc-issuer", "http://127.0.0.1:1", "-nats-url", "nats://127.0.0.1:1"}, "nats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			err := run(t.Context(), tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRunWithEmbeddedNATSStopsWhenContextEnds(t *testing.T) {
	iss, err := devissuer.Start(t.Context(), devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = run(ctx, []string{"-grpc-addr", "127.0.0.1:0", "-oidc-issuer", iss.URL(), "-nats-store-dir", t.TempDir()})
	if err != nil {
		t.Fatalf("run = %v, want nil after a clean stop", err)
	}
}
