package resilience_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/testlog"
)

var quiet = slog.New(slog.DiscardHandler)

// dial connects to the scripted server through resilience.Dial, named "health".
func dial(t testing.TB, addr string, opts ...resilience.Option) healthpb.HealthClient {
	t.Helper()
	cc, err := resilience.Dial(addr, append([]resilience.Option{resilience.WithName("health"), resilience.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func check(ctx context.Context, c healthpb.HealthClient, opts ...grpc.CallOption) error {
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, opts...)
	return err
}

// fastRetry retries up to 3 attempts with negligible backoff.
var fastRetry = resilience.WithRetry(3, time.Microsecond, time.Microsecond, time.Minute)

func assertCircuitOpen(t *testing.T, err error) {
	t.Helper()
	if status.Code(err) != codes.Unavailable || !errors.Is(err, resilience.ErrCircuitOpen) {
		t.Fatalf("err = %v, want Unavailable circuit open", err)
	}
	if s, _ := status.FromError(err); !strings.Contains(s.Message(), "health: circuit open") {
		t.Fatalf("message %q does not name the target", s.Message())
	}
}

func TestUnaryRetryAndBreakerByCode(t *testing.T) {
	const service = "/grpc.health.v1.Health/"
	tests := []struct {
		name       string
		script     []step
		otherwise  step
		idempotent []resilience.Option
		callOpts   []grpc.CallOption
		wantCode   codes.Code
		wantCalls  int64
		wantTrip   bool // a breaker with threshold 1 opens after this one call
	}{
		{name: "not found is an answer", otherwise: fail(codes.NotFound),
			idempotent: []resilience.Option{resilience.WithIdempotentMethods(checkMethod)},
			wantCode:   codes.NotFound, wantCalls: 1},
		{name: "invalid argument is an answer", otherwise: fail(codes.InvalidArgument),
			idempotent: []resilience.Option{resilience.WithIdempotentMethods(checkMethod)},
			wantCode:   codes.InvalidArgument, wantCalls: 1},
		{name: "failed precondition is an answer", otherwise: fail(codes.FailedPrecondition),
			callOpts: []grpc.CallOption{resilience.Idempotent()},
			wantCode: codes.FailedPrecondition, wantCalls: 1},
		{name: "unavailable idempotent method retried to the bound", otherwise: fail(codes.Unavailable),
			idempotent: []resilience.Option{resilience.WithIdempotentMethods(checkMethod)},
			wantCode:   codes.Unavailable, wantCalls: 3, wantTrip: true},
		{name: "unavailable idempotent service prefix retried", otherwise: fail(codes.Unavailable),
			idempotent: []resilience.Option{resilience.WithIdempotentMethods(service)},
			wantCode:   codes.Unavailable, wantCalls: 3, wantTrip: true},
		{name: "unavailable idempotent call option retried", otherwise: fail(codes.Unavailable),
			callOpts: []grpc.CallOption{resilience.Idempotent()},
			wantCode: codes.Unavailable, wantCalls: 3, wantTrip: true},
		{name: "unavailable non-idempotent never retried", otherwise: fail(codes.Unavailable),
			idempotent: []resilience.Option{resilience.WithIdempotentMethods("/grpc.health.v1.Health/List")},
			wantCode:   codes.Unavailable, wantCalls: 1, wantTrip: true},
		{name: "resource exhausted from server retried", otherwise: fail(codes.ResourceExhausted),
			callOpts: []grpc.CallOption{resilience.Idempotent()},
			wantCode: codes.ResourceExhausted, wantCalls: 3, wantTrip: true},
		{name: "server deadline exceeded retried while caller has time", otherwise: fail(codes.DeadlineExceeded),
			callOpts: []grpc.CallOption{resilience.Idempotent()},
			wantCode: codes.DeadlineExceeded, wantCalls: 3, wantTrip: true},
		{name: "internal counts but is not retried", otherwise: fail(codes.Internal),
			callOpts: []grpc.CallOption{resilience.Idempotent()},
			wantCode: codes.Internal, wantCalls: 1, wantTrip: true},
		{name: "recovers within the retry bound", script: []step{fail(codes.Unavailable), fail(codes.Unavailable)},
			callOpts: []grpc.CallOption{resilience.Idempotent()},
			wantCode: codes.OK, wantCalls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, addr := startHealth(t)
			hs.then(tt.script...).otherwise(tt.otherwise)
			opts := append([]resilience.Option{fastRetry, resilience.WithBreaker(1, time.Hour)}, tt.idempotent...)
			c := dial(t, addr, opts...)

			err := check(context.Background(), c, tt.callOpts...)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if got := hs.calls.Load(); got != tt.wantCalls {
				t.Fatalf("server saw %d calls, want %d", got, tt.wantCalls)
			}

			// A second call tells whether the first one counted against the target.
			hs.otherwise(ok())
			err = check(context.Background(), c)
			if tt.wantTrip {
				assertCircuitOpen(t, err)
				if got := hs.calls.Load(); got != tt.wantCalls {
					t.Fatalf("open breaker let a call through: %d calls, want %d", got, tt.wantCalls)
				}
				return
			}
			if err != nil {
				t.Fatalf("second call: %v; the first call must not count toward the breaker", err)
			}
		})
	}
}

// awaitPastCooldown calls until the breaker stops failing fast, bounded in time:
// the cool-down is a clock, not an event.
func awaitPastCooldown(t *testing.T, c healthpb.HealthClient) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check(context.Background(), c)
		if !errors.Is(err, resilience.ErrCircuitOpen) {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker still open after its cool-down")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBreakerOpensHalfOpensAndCloses(t *testing.T) {
	tests := []struct {
		name       string
		probe      step
		wantProbe  codes.Code
		wantClosed bool
		wantLogs   map[string]int
	}{
		{name: "successful probe closes", probe: ok(), wantProbe: codes.OK, wantClosed: true,
			wantLogs: map[string]int{"to=open": 1, "to=half-open": 1, "to=closed": 1}},
		{name: "failed probe reopens", probe: fail(codes.Unavailable), wantProbe: codes.Unavailable,
			wantLogs: map[string]int{"to=open": 2, "to=half-open": 1, "to=closed": 0}},
		{name: "not found probe closes: the target answered", probe: fail(codes.NotFound), wantProbe: codes.NotFound, wantClosed: true,
			wantLogs: map[string]int{"to=open": 1, "to=half-open": 1, "to=closed": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, addr := startHealth(t)
			hs.then(fail(codes.Unavailable), fail(codes.Unavailable), fail(codes.Unavailable), tt.probe).otherwise(ok())
			logs := &testlog.Buffer{}
			c := dial(t, addr,
				resilience.WithBreaker(3, 20*time.Millisecond),
				resilience.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))

			for i := range 3 {
				if err := check(context.Background(), c); status.Code(err) != codes.Unavailable || errors.Is(err, resilience.ErrCircuitOpen) {
					t.Fatalf("call %d: %v, want the server's Unavailable", i, err)
				}
			}
			for range 5 {
				assertCircuitOpen(t, check(context.Background(), c))
			}
			if got := hs.calls.Load(); got != 3 {
				t.Fatalf("server saw %d calls while open, want 3", got)
			}

			if err := awaitPastCooldown(t, c); status.Code(err) != tt.wantProbe {
				t.Fatalf("probe: %v, want %v", err, tt.wantProbe)
			}
			err := check(context.Background(), c)
			if tt.wantClosed && err != nil {
				t.Fatalf("after the probe: %v, want closed breaker", err)
			}
			if !tt.wantClosed {
				assertCircuitOpen(t, err)
			}
			for s, n := range tt.wantLogs {
				if got := strings.Count(logs.String(), s); got != n {
					t.Fatalf("%q logged %d times, want %d:\n%s", s, got, n, logs.String())
				}
			}
		})
	}
}

func TestCallerCancelDoesNotCount(t *testing.T) {
	hs, addr := startHealth(t)
	entered := make(chan struct{})
	hs.otherwise(func(ctx context.Context) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	c := dial(t, addr, resilience.WithBreaker(1, time.Hour))

	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-entered; cancel() }()
		if err := check(ctx, c); status.Code(err) != codes.Canceled {
			t.Fatalf("cancelled call: %v, want Canceled", err)
		}
	}
	hs.otherwise(ok())
	if err := check(context.Background(), c); err != nil {
		t.Fatalf("after cancellations: %v; cancelling must not open the breaker", err)
	}
}

func TestBulkheadRejectsBeyondCapacity(t *testing.T) {
	const slots = 3
	hs, addr := startHealth(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	hs.otherwise(func(ctx context.Context) error {
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	c := dial(t, addr, resilience.WithBulkhead(slots, time.Millisecond), resilience.WithBreaker(1, time.Hour))

	errs := make(chan error, slots)
	for range slots {
		go func() { errs <- check(context.Background(), c) }()
	}
	for range slots {
		<-entered
	}

	err := check(context.Background(), c)
	if status.Code(err) != codes.ResourceExhausted || !errors.Is(err, resilience.ErrBulkheadFull) {
		t.Fatalf("call %d: %v, want ResourceExhausted bulkhead full", slots+1, err)
	}
	if s, _ := status.FromError(err); !strings.Contains(s.Message(), "health") {
		t.Fatalf("message %q does not name the target", s.Message())
	}

	close(release)
	for range slots {
		if err := <-errs; err != nil {
			t.Fatalf("in-flight call: %v", err)
		}
	}
	// The rejection is the caller's overload, not the target's failure.
	hs.otherwise(ok())
	if err := check(context.Background(), c); err != nil {
		t.Fatalf("after the flood: %v", err)
	}
}

func TestBulkheadWaiterGetsFreedSlot(t *testing.T) {
	hs, addr := startHealth(t)
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	hs.then(func(ctx context.Context) error {
		entered <- struct{}{}
		<-release
		return nil
	}).otherwise(ok())
	c := dial(t, addr, resilience.WithBulkhead(1, time.Minute))

	first := make(chan error, 1)
	go func() { first <- check(context.Background(), c) }()
	<-entered
	second := make(chan error, 1)
	go func() { second <- check(context.Background(), c) }()
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("waiting call: %v, want it served once the slot freed", err)
	}
}

func TestRetryBounds(t *testing.T) {
	tests := []struct {
		name      string
		ctx       func() (context.Context, context.CancelFunc)
		server    step
		retry     resilience.Option
		wantCode  codes.Code
		wantCalls func(n int64) bool
	}{
		{name: "attempt bound", server: fail(codes.Unavailable),
			retry:    resilience.WithRetry(4, time.Microsecond, time.Microsecond, time.Minute),
			wantCode: codes.Unavailable, wantCalls: func(n int64) bool { return n == 4 }},
		{name: "total time bound stops before the attempt bound", server: fail(codes.Unavailable),
			retry:    resilience.WithRetry(10000, 2*time.Millisecond, 2*time.Millisecond, 40*time.Millisecond),
			wantCode: codes.Unavailable, wantCalls: func(n int64) bool { return n > 1 && n < 10000 }},
		{name: "retries disabled", server: fail(codes.Unavailable),
			retry:    resilience.WithRetry(1, time.Microsecond, time.Microsecond, time.Minute),
			wantCode: codes.Unavailable, wantCalls: func(n int64) bool { return n == 1 }},
		{name: "caller deadline spent is not retried", server: hang(),
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 30*time.Millisecond)
			},
			retry:    resilience.WithRetry(5, time.Microsecond, time.Microsecond, time.Minute),
			wantCode: codes.DeadlineExceeded, wantCalls: func(n int64) bool { return n == 1 }},
		{name: "backoff longer than the remaining deadline is not started", server: fail(codes.Unavailable),
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Minute)
			},
			retry:    resilience.WithRetry(5, time.Hour, time.Hour, 2*time.Hour),
			wantCode: codes.Unavailable, wantCalls: func(n int64) bool { return n >= 1 && n < 5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, addr := startHealth(t)
			hs.otherwise(tt.server)
			c := dial(t, addr, tt.retry, resilience.WithBreaker(0, 0))
			ctx := context.Background()
			if tt.ctx != nil {
				var cancel context.CancelFunc
				ctx, cancel = tt.ctx()
				defer cancel()
			}
			err := check(ctx, c, resilience.Idempotent())
			if status.Code(err) != tt.wantCode {
				t.Fatalf("err = %v, want %v", err, tt.wantCode)
			}
			if n := hs.calls.Load(); !tt.wantCalls(n) {
				t.Fatalf("server saw %d calls", n)
			}
		})
	}
}

func TestDefaultDeadline(t *testing.T) {
	const def = time.Hour
	tests := []struct {
		name    string
		caller  time.Duration // 0: no caller deadline
		atLeast time.Duration // server-side deadline bounds, relative to the call
		atMost  time.Duration
	}{
		{name: "default applied when none set", caller: 0, atLeast: def / 2, atMost: def},
		{name: "shorter caller deadline kept", caller: time.Minute, atLeast: 0, atMost: time.Minute},
		{name: "longer caller deadline kept", caller: 3 * time.Hour, atLeast: 2 * time.Hour, atMost: 3 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, addr := startHealth(t)
			c := dial(t, addr, resilience.WithTimeout(def))
			ctx := context.Background()
			if tt.caller > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.caller)
				defer cancel()
			}
			before := time.Now()
			if err := check(ctx, c); err != nil {
				t.Fatalf("check: %v", err)
			}
			dl := hs.lastDeadline()
			if dl.IsZero() {
				t.Fatalf("server saw no deadline")
			}
			if dl.Before(before.Add(tt.atLeast)) || dl.After(time.Now().Add(tt.atMost)) {
				t.Fatalf("server deadline %v after the call began, want within [%v, %v]", dl.Sub(before), tt.atLeast, tt.atMost)
			}
		})
	}

	t.Run("default ends a hanging call", func(t *testing.T) {
		hs, addr := startHealth(t)
		hs.otherwise(hang())
		c := dial(t, addr, resilience.WithTimeout(20*time.Millisecond))
		if err := check(context.Background(), c); status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
}

func TestStream(t *testing.T) {
	t.Run("outlives the default timeout once established", func(t *testing.T) {
		hs, addr := startHealth(t)
		const timeout = 20 * time.Millisecond
		c := dial(t, addr, resilience.WithTimeout(timeout))
		w, err := c.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatalf("first message: %v", err)
		}
		// Let the default timeout pass: the stream must not be bound by it.
		time.Sleep(3 * timeout)
		hs.watchNext <- struct{}{}
		if _, err := w.Recv(); err != nil {
			t.Fatalf("message after the default timeout: %v", err)
		}
		close(hs.watchNext)
		if _, err := w.Recv(); err != io.EOF {
			t.Fatalf("end of stream: %v, want io.EOF", err)
		}
	})

	t.Run("open breaker refuses to establish", func(t *testing.T) {
		hs, addr := startHealth(t)
		hs.otherwise(fail(codes.Unavailable))
		c := dial(t, addr, resilience.WithBreaker(1, time.Hour))
		if err := check(context.Background(), c); status.Code(err) != codes.Unavailable {
			t.Fatalf("check: %v", err)
		}
		_, err := c.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		assertCircuitOpen(t, err)
	})
}

func TestStreamEstablishmentTimeoutCounts(t *testing.T) {
	// Nothing listens on the target; WaitForReady makes establishment wait for it.
	c := dial(t, "127.0.0.1:1", resilience.WithTimeout(20*time.Millisecond), resilience.WithBreaker(1, time.Hour))
	_, err := c.Watch(context.Background(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("establishment: %v, want DeadlineExceeded", err)
	}
	_, err = c.Watch(context.Background(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	assertCircuitOpen(t, err)
}

// A group of methods failing opens its own breaker only: with Check in a group of its
// own, failed checks leave Watch (the target's main group) open for calls, and the
// other way round the main group's breaker stays closed.
func TestMethodGroupsHaveTheirOwnBreakers(t *testing.T) {
	hs, addr := startHealth(t)
	hs.otherwise(fail(codes.Unavailable))
	logs := &testlog.Buffer{}
	c := dial(t, addr, resilience.WithBreaker(1, time.Hour),
		resilience.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		resilience.WithMethodGroups(func(method string) string {
			if method == healthpb.Health_Check_FullMethodName {
				return "checks"
			}
			return ""
		}))
	if err := check(context.Background(), c); status.Code(err) != codes.Unavailable || errors.Is(err, resilience.ErrCircuitOpen) {
		t.Fatalf("check: %v, want the server's Unavailable", err)
	}
	err := check(context.Background(), c)
	if st, _ := status.FromError(err); !errors.Is(err, resilience.ErrCircuitOpen) || !strings.Contains(st.Message(), "health/checks: circuit open") {
		t.Fatalf("second check: %v, want the checks group's circuit open", err)
	}
	if strings.Count(logs.String(), "health/checks") == 0 {
		t.Fatalf("the opened breaker is not reported as the group's:\n%s", logs.String())
	}
	w, err := c.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("watch, in the main group, refused by the checks' breaker: %v", err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	close(hs.watchNext)
}
