package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/pkg/testlog"
)

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-metrics-addr", "127.0.0.1:0", "-log-level", "WARN"}); err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "127.0.0.1:0" || c.LogLevel != slog.LevelWarn {
		t.Errorf("parsed %+v", c)
	}
	if fs.Lookup("trace-sample") == nil || fs.Lookup("otlp-endpoint") == nil {
		t.Error("telemetry flags not registered")
	}
}

// TestRun checks that serve gets a logger and a live context and that its error
// comes back, with a metrics listener open meanwhile.
func TestRun(t *testing.T) {
	c := Config{MetricsAddr: "127.0.0.1:0", LogLevel: slog.LevelError}
	boom := errors.New("boom")
	err := c.Run(context.Background(), "test", func(ctx context.Context, tel *telemetry.Telemetry) error {
		logger := tel.Logger()
		if logger == nil {
			t.Error("nil logger")
		}
		if ctx.Err() != nil {
			t.Errorf("context done before serve: %v", ctx.Err())
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Run = %v, want serve's error", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- Config{LogLevel: slog.LevelError}.Run(ctx, "test", func(ctx context.Context, _ *telemetry.Telemetry) error {
			close(started)
			<-ctx.Done()
			return nil
		})
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func TestRunMetricsListenError(t *testing.T) {
	err := Config{MetricsAddr: "not an address"}.Run(context.Background(), "test", func(context.Context, *telemetry.Telemetry) error {
		t.Error("serve ran although metrics could not listen")
		return nil
	})
	if err == nil {
		t.Error("no error for a bad metrics address")
	}
}

func TestServeMetrics(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "up 1") })
	var logs testlog.Buffer
	shutdown, err := serveMetrics("127.0.0.1:0", h, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // the serving goroutine returns after the close
	// A shutdown is no failure to serve.
	if s := logs.String(); s != "" {
		t.Errorf("logged at shutdown: %s", s)
	}
}
