package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventshop/eventshop/pkg/service"
)

func TestTogetherStopsEveryPartWhenOneEnds(t *testing.T) {
	boom := errors.New("server failed")
	bgStopped := make(chan struct{})
	err := service.Together(context.Background(),
		[]func(context.Context) error{
			func(context.Context) error { return boom },
			func(ctx context.Context) error { <-ctx.Done(); return nil },
		},
		func(ctx context.Context) { <-ctx.Done(); close(bgStopped) },
	)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the failing part's error", err)
	}
	select {
	case <-bgStopped:
	default:
		t.Fatal("Together returned before its background task stopped")
	}
}

func TestTogetherStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := service.Together(ctx, []func(context.Context) error{
		func(ctx context.Context) error { <-ctx.Done(); return nil },
		func(ctx context.Context) error { <-ctx.Done(); return nil },
	})
	if err != nil {
		t.Fatalf("clean stop returned %v", err)
	}
}
