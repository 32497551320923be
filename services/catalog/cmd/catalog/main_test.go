package main

import (
	"context"
	"strings"
	"testing"
)

func TestRunRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad env value", map[string]string{"SHOP_DRAIN_TIMEOUT": "soon"}, nil, "SHOP_DRAIN_TIMEOUT"},
		{"missing products file", nil, []string{"-products-file", "/nonexistent/products.json"}, "products file"},
		{"bad issuer", nil, []string{"-oidc-issuer", "not-a-url", "-grpc-addr", "127.0.0.1:0"}, "issuer"},
		{"unknown flag", nil, []string{"-no-such-flag"}, "no-such-flag"},
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

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := run(ctx, []string{"-grpc-addr", "127.0.0.1:0"}); err != nil {
		t.Fatalf("run = %v, want nil after a clean stop", err)
	}
}
