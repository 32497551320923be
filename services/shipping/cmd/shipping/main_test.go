package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/resilience"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

// TestRun runs the real program against an embedded NATS server and a SQLite file
// until its health check says SERVING, then stops it the way a signal would.
func TestRun(t *testing.T) {
	srv := natstest.Start(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	mlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := mlis.Addr().String()
	mlis.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-grpc-addr", addr, "-nats-url", srv.ClientURL(),
			"-read-dsn", filepath.Join(t.TempDir(), "db", "shipping.db"), "-log-level", "WARN", "-metrics-addr", metricsAddr})
	}()

	cc, err := resilience.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	health := healthpb.NewHealthClient(cc)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("run stopped early: %v", err)
		default:
		}
		callCtx, callCancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(callCtx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		callCancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never SERVING: %v %v", resp, err)
		}
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "target_info") {
		t.Fatalf("metrics: %s %v\n%.500s", resp.Status, err, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}
