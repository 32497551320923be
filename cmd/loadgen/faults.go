package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	shippingapp "github.com/eventshop/eventshop/services/shipping/app"

	"github.com/eventshop/eventshop/services/payment/provider"
)

// restartable are the services the chaos scenario stops and starts, in this order.
var restartable = []string{"catalog", "cart", "payment", "inventory", "shipping", "order"}

// faultyProvider is the simulated card network with faults switched on and off
// while the shop runs: failing every call, or hanging on it.
type faultyProvider struct {
	sim     *provider.Simulated
	failing atomic.Bool
	hangFor atomic.Int64 // nanoseconds added to every call
}

var _ provider.Provider = (*faultyProvider)(nil)

func newFaultyProvider(slow time.Duration) *faultyProvider {
	return &faultyProvider{sim: &provider.Simulated{SlowDelay: slow}}
}

func (f *faultyProvider) fault(ctx context.Context) error {
	if d := time.Duration(f.hangFor.Load()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if f.failing.Load() {
		return fmt.Errorf("%w: injected outage", provider.ErrProcessing)
	}
	return nil
}

// Authorize implements provider.Provider; it fails with ErrProcessing during an outage.
func (f *faultyProvider) Authorize(ctx context.Context, req provider.AuthorizeRequest) (provider.Authorization, error) {
	if err := f.fault(ctx); err != nil {
		return provider.Authorization{}, err
	}
	return f.sim.Authorize(ctx, req)
}

// Capture implements provider.Provider; it fails with ErrProcessing during an outage.
func (f *faultyProvider) Capture(ctx context.Context, key, ref string, amount int64) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.sim.Capture(ctx, key, ref, amount)
}

// Void implements provider.Provider; it fails with ErrProcessing during an outage.
func (f *faultyProvider) Void(ctx context.Context, key, ref string) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.sim.Void(ctx, key, ref)
}

// Refund implements provider.Provider; it fails with ErrProcessing during an outage.
func (f *faultyProvider) Refund(ctx context.Context, key, ref string, amount int64) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.sim.Refund(ctx, key, ref, amount)
}

// chaos restarts each restartable service in turn, ChaosRounds times, and between
// rounds takes the card network down and then makes it hang, for ChaosEvery each.
func (r *runner) chaos(ctx context.Context) {
	pause := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(r.cfg.ChaosEvery):
			return true
		}
	}
	r.mu.Lock()
	r.restarts = map[string]int{}
	r.mu.Unlock()
	for round := range r.cfg.ChaosRounds {
		for _, svc := range restartable {
			if !pause() {
				return
			}
			// Restart must finish even when the load is over, or the shop is left broken.
			if err := r.restart(context.WithoutCancel(ctx), svc); err != nil {
				r.logFault(fmt.Sprintf("restart %s failed: %v", svc, err))
				continue
			}
			r.mu.Lock()
			r.restarts[svc]++
			r.mu.Unlock()
		}
		if !pause() {
			return
		}
		if r.faults == nil {
			r.processFaults(ctx, round, pause)
			continue
		}
		r.logFault(fmt.Sprintf("round %d: card network down for %v", round+1, r.cfg.ChaosEvery))
		r.faults.failing.Store(true)
		pause()
		r.faults.failing.Store(false)
		r.logFault(fmt.Sprintf("round %d: card network hangs 2s per call for %v", round+1, r.cfg.ChaosEvery))
		r.faults.hangFor.Store(int64(2 * time.Second))
		pause()
		r.faults.hangFor.Store(0)
		r.shippingFaults(round, pause)
	}
}

// shippingFaults makes half of the new shipments fail, then every shipping command
// hang 2s, for ChaosEvery each: the saga must compensate the failed ones (release the
// stock, void the payment) and wait out the slow ones. In-process only: separate
// processes have no switch for it at run time.
func (r *runner) shippingFaults(round int, pause func() bool) {
	if r.shop == nil {
		return
	}
	set := func(f shippingapp.Faults) {
		if svc := r.shop.ShippingService(); svc != nil { // nil while it restarts
			svc.SetFaults(f)
		}
	}
	r.logFault(fmt.Sprintf("round %d: half of new shipments fail for %v", round+1, r.cfg.ChaosEvery))
	set(shippingapp.Faults{FailRate: 0.5})
	pause()
	r.logFault(fmt.Sprintf("round %d: shipping hangs 2s per command for %v", round+1, r.cfg.ChaosEvery))
	set(shippingapp.Faults{Latency: 2 * time.Second})
	pause()
	set(shippingapp.Faults{})
}

// processFaults is the same sequence of faults as in-process, for services running
// as processes, which have no switch at run time: the faulty service is restarted
// with the fault's chaos flag (RestartCmd <service> <flag> <value>) and, after
// ChaosEvery, restarted without it. Each fault therefore also costs two kill -9.
func (r *runner) processFaults(ctx context.Context, round int, pause func() bool) {
	for _, f := range []struct {
		svc, what string
		flags     []string
	}{
		{"payment", "card network down", []string{"-provider-fail-rate", "1"}},
		{"payment", "card network hangs 2s per call", []string{"-provider-latency", "2s"}},
		{"shipping", "half of new shipments fail", []string{"-fail-rate", "0.5"}},
		{"shipping", "shipping hangs 2s per command", []string{"-latency", "2s"}},
	} {
		ctx := context.WithoutCancel(ctx) // a fault once on must be switched off
		if err := r.restart(ctx, f.svc, f.flags...); err != nil {
			r.logFault(fmt.Sprintf("round %d: %s: %v", round+1, f.what, err))
			continue
		}
		r.logFault(fmt.Sprintf("round %d: %s for %v (%s restarted with %s)", round+1, f.what, r.cfg.ChaosEvery, f.svc, strings.Join(f.flags, " ")))
		pause()
		if err := r.restart(ctx, f.svc); err != nil {
			r.logFault(fmt.Sprintf("round %d: ending %s: %v", round+1, f.what, err))
		}
	}
}

// restart restarts one service: in-process through the shop, or by running
// RestartCmd with the service's name and any extra flags for the new process
// (which kills the old one with SIGKILL).
func (r *runner) restart(ctx context.Context, svc string, flags ...string) error {
	if r.shop != nil {
		return r.shop.Restart(ctx, svc)
	}
	f := strings.Fields(r.cfg.RestartCmd)
	args := append(append(f[1:], svc), flags...)
	out, err := exec.CommandContext(ctx, f[0], args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", r.cfg.RestartCmd, strings.Join(args[len(f)-1:], " "), err, out)
	}
	return nil
}

func (r *runner) logFault(s string) {
	r.mu.Lock()
	r.faultLog = append(r.faultLog, s)
	r.mu.Unlock()
}
