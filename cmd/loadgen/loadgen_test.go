package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// testConfig is a small run against the shop started in-process.
func testConfig(t *testing.T, scenario string) Config {
	t.Helper()
	cfg, err := parseConfig([]string{"-scenario", scenario, "-progress=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runOK(t *testing.T, cfg Config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.Print(&b)
	t.Logf("\n%s", b.String())
	if !rep.OK() {
		t.Fatalf("run failed: %v", rep.Failures)
	}
	if rep.NotFinal != 0 || rep.Completed+rep.Cancelled != rep.Placed {
		t.Fatalf("placed %d, completed %d, cancelled %d, not final %d", rep.Placed, rep.Completed, rep.Cancelled, rep.NotFinal)
	}
	if rep.Audit == nil || len(rep.Audit.Violations) != 0 || rep.Audit.Orders != rep.Placed {
		t.Fatalf("audit %+v, want %d orders and no violation", rep.Audit, rep.Placed)
	}
	return rep
}

func TestFlashSaleSellsExactlyTheUnits(t *testing.T) {
	cfg := testConfig(t, "flash-sale")
	cfg.Buyers, cfg.Units, cfg.Ceiling = 60, 10, true
	rep := runOK(t, cfg)
	if rep.Placed != 60 || rep.Completed != 10 || rep.Cancelled != 50 {
		t.Fatalf("placed %d, completed %d, cancelled %d; want 60 orders, 10 completed, 50 cancelled", rep.Placed, rep.Completed, rep.Cancelled)
	}
	c := rep.Ceiling
	if c == nil || c.PublishesPerS <= 0 || c.WritesPerOrder <= 0 || c.Share <= 0 {
		t.Fatalf("ceiling %+v, want a measured publish rate and share", c)
	}
	if got, want := c.OrdersPerS, c.PublishesPerS/float64(c.WritesPerOrder); got != want {
		t.Errorf("ceiling %v orders/s, want publishes/s / writes per order = %v", got, want)
	}
}

func TestCeilingAgainstARunningShopNeedsItsNATS(t *testing.T) {
	cfg, err := parseConfig([]string{"-target", "http://127.0.0.1:1", "-ceiling", "-progress=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(context.Background(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-nats-url") {
		t.Fatalf("run: %v, want an error naming -nats-url", err)
	}
}

func TestFlashSaleOverGRPCSellsExactlyTheUnits(t *testing.T) {
	cfg := testConfig(t, "flash-sale")
	cfg.Mode, cfg.Buyers, cfg.Units = "grpc", 40, 8
	rep := runOK(t, cfg)
	if rep.Placed != 40 || rep.Completed != 8 || rep.Cancelled != 32 {
		t.Fatalf("placed %d, completed %d, cancelled %d; want 40 orders, 8 completed, 32 cancelled", rep.Placed, rep.Completed, rep.Cancelled)
	}
	for k := range rep.Errors {
		if strings.Contains(k, "HTTP") {
			t.Errorf("error %q in -mode grpc: a call went through the gateway", k)
		}
	}
}

func TestRetryableByGRPCCode(t *testing.T) {
	for code, want := range map[codes.Code]bool{
		codes.ResourceExhausted: true, codes.Unavailable: true, codes.DeadlineExceeded: true, codes.Internal: true,
		codes.InvalidArgument: false, codes.FailedPrecondition: false, codes.NotFound: false,
		codes.Unauthenticated: false, codes.PermissionDenied: false, codes.AlreadyExists: false, codes.Canceled: false,
	} {
		err := fmt.Errorf("%s: %w", opPlaceOrder, status.Error(code, "x"))
		if got := retryable(err); got != want {
			t.Errorf("retryable(%v) = %v, want %v", code, got, want)
		}
	}
	if retryable(nil) {
		t.Error("retryable(nil) = true")
	}
}

func TestChaosKeepsEverySagaFinalAndTheBooksBalanced(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	cfg := testConfig(t, "chaos")
	cfg.Orders, cfg.Users, cfg.ChaosRounds, cfg.ChaosEvery = 150, 8, 1, time.Second
	rep := runOK(t, cfg)
	if rep.Placed < 150 {
		t.Fatalf("%d orders placed, want at least 150", rep.Placed)
	}
	for _, svc := range restartable {
		if rep.Restarts[svc] != 1 {
			t.Errorf("%s restarted %d times, want 1", svc, rep.Restarts[svc])
		}
	}
	var shippingFaulted bool
	for _, f := range rep.Faults {
		shippingFaulted = shippingFaulted || strings.Contains(f, "shipments fail")
	}
	if !shippingFaulted {
		t.Errorf("no shipping fault injected; faults: %q", rep.Faults)
	}
	// The mix sends declined and never-answering cards, and the card network goes
	// down for a while: some orders must end cancelled, most completed.
	if rep.Cancelled == 0 || rep.Completed == 0 {
		t.Fatalf("completed %d, cancelled %d: want both outcomes", rep.Completed, rep.Cancelled)
	}
}

func TestReportJSONRoundTrips(t *testing.T) {
	s := newStats()
	s.observe(opPlaceOrder, 3*time.Millisecond)
	s.orderPlaced()
	s.outcome("COMPLETED")
	s.fail(opWatchOrder, "HTTP 503")
	rep := s.report("steady", time.Second)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Placed != 1 || back.Completed != 1 || back.Errors["WatchOrder HTTP 503"] != 1 || back.Ops[opPlaceOrder].Count != 1 {
		t.Fatalf("round trip: %s", b)
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"ok=90,declined=5,transient=5", false},
		{"ok=100", false},
		{"ok=0", true},
		{"visa=10", true},
		{"ok", true},
		{"ok=-1", true},
	}
	for _, tt := range tests {
		m, err := parseMix(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseMix(%q) error %v, want error %v", tt.in, err, tt.wantErr)
		}
		if err == nil && !strings.HasPrefix(m.pick(), "tok_") {
			t.Errorf("parseMix(%q).pick() = %q", tt.in, m.pick())
		}
	}
}

// Against processes, a chaos round restarts every service, then switches each fault
// on by restarting its service with the fault's flag and off by restarting it plain.
func TestChaosAgainstProcessesRunsTheRestartCommand(t *testing.T) {
	script, log := recordingScript(t)
	cfg := testConfig(t, "chaos")
	cfg.RestartCmd, cfg.ChaosRounds, cfg.ChaosEvery = script+" restart", 1, time.Millisecond
	r := &runner{cfg: cfg}
	r.chaos(context.Background())
	got := restartCalls(t, log)
	want := []string{
		"restart catalog", "restart cart", "restart payment", "restart inventory", "restart shipping", "restart order",
		"restart payment -provider-fail-rate 1", "restart payment",
		"restart payment -provider-latency 2s", "restart payment",
		"restart shipping -fail-rate 0.5", "restart shipping",
		"restart shipping -latency 2s", "restart shipping",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("restart command calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, svc := range restartable {
		if r.restarts[svc] != 1 {
			t.Errorf("%s counted %d restarts, want 1 (fault switches are not chaos restarts)", svc, r.restarts[svc])
		}
	}
	if len(r.faultLog) != 4 {
		t.Errorf("fault log %q, want the 4 faults", r.faultLog)
	}
}

// recordingScript returns a restart command that only appends its arguments, one
// call a line, to log.
func recordingScript(t *testing.T) (script, log string) {
	t.Helper()
	dir := t.TempDir()
	log, script = dir+"/calls", dir+"/restart"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$*\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, log
}

func restartCalls(t *testing.T, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// -chaos-services names what the restart command restarts, a database or a whole
// shopd as well as a service, and -chaos-faults=false leaves the fault switches
// out; the in-process shop refuses a name that is not one of its services, before
// any load.
func TestChaosServicesChooseWhatIsRestarted(t *testing.T) {
	script, log := recordingScript(t)
	cfg, err := parseConfig([]string{"-scenario", "chaos", "-restart-cmd", script, "-chaos-services", "order, postgres,nats",
		"-chaos-faults=false", "-chaos-rounds", "2", "-chaos-every", "1ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: cfg}
	r.chaos(context.Background())
	want := []string{"order", "postgres", "nats", "order", "postgres", "nats"}
	if got := restartCalls(t, log); !slices.Equal(got, want) {
		t.Fatalf("restart command calls %q, want %q", got, want)
	}
	if r.restarts["postgres"] != 2 || len(r.faultLog) != 0 {
		t.Fatalf("restarts %v, faults %q; want postgres twice and no fault", r.restarts, r.faultLog)
	}

	cfg = testConfig(t, "chaos")
	cfg.ChaosServices = "order,postgres"
	if _, err := run(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), `"postgres"`) {
		t.Fatalf("in-process chaos with postgres: %v, want a refusal naming it", err)
	}
}

// Stopped early, as Ctrl-C does, a run still audits the shop it loaded: the audit
// must not inherit the cancelled context of the load.
func TestStoppedRunStillAudits(t *testing.T) {
	cfg := testConfig(t, "steady")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel)
	rep, err := run(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Failures {
		if strings.HasPrefix(f, "audit:") {
			t.Fatalf("the audit of a stopped run failed: %s", f)
		}
	}
	if rep.Audit == nil || len(rep.Audit.Violations) != 0 {
		t.Fatalf("audit %+v, want one with no violation", rep.Audit)
	}
}
