package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/payment/provider"
	"github.com/eventshop/eventshop/services/shipping/carrier"
)

// restartable are the services of the in-process shop the chaos scenario can stop
// and start, and the default -chaos-services, in this order.
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
		if err := resilience.Sleep(ctx, d); err != nil {
			return err
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

// chaos restarts each of ChaosServices in turn, ChaosRounds times, and after each
// round kills a NATS node (NATSNodes) and injects every fault of chaosFaults in
// turn (ChaosFaults), for ChaosEvery each.
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
		for _, svc := range r.cfg.chaosServices() {
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
		if nodes := strings.Split(r.cfg.NATSNodes, ","); r.cfg.NATSNodes != "" {
			if !pause() {
				return
			}
			r.killNATSNode(ctx, round, nodes)
		}
		if !r.cfg.ChaosFaults {
			continue
		}
		if !pause() {
			return
		}
		for _, f := range chaosFaults {
			r.inject(ctx, round, f, pause)
		}
	}
}

// killNATSNode kills -9 and restarts one node of the NATS cluster: the leader of
// the order stream when the shop's NATS can be asked (the node whose loss moves the
// most), else the round's turn.
func (r *runner) killNATSNode(ctx context.Context, round int, nodes []string) {
	node, why := nodes[round%len(nodes)], "in turn"
	if leader := r.streamLeader(ctx, "ES_order"); slices.Contains(nodes, leader) {
		node, why = leader, "leader of the order stream"
	}
	if err := r.restart(context.WithoutCancel(ctx), node); err != nil {
		r.logFault(fmt.Sprintf("round %d: restart NATS node %s failed: %v", round+1, node, err))
		return
	}
	r.logFault(fmt.Sprintf("round %d: NATS node %s (%s) killed and restarted", round+1, node, why))
	r.mu.Lock()
	r.restarts[node]++
	r.mu.Unlock()
}

// streamLeader names the server leading stream, "" when it cannot be told.
func (r *runner) streamLeader(ctx context.Context, stream string) string {
	if r.cfg.NATSURL == "" {
		return ""
	}
	url, opts, err := r.ceilingServer()
	if err != nil {
		return ""
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return ""
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return ""
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// chaosFault is one fault of a chaos round. The in-process shop switches it with
// set; a service running as a process has no switch at run time, so it is
// restarted with flags (its chaos flag) and, when the fault ends, without them.
type chaosFault struct {
	what  string
	svc   string
	flags []string
	set   func(r *runner, on bool)
}

// chaosFaults: the card network failing, then hanging, make the saga retry, void
// and cancel; half of the shipments failing, then shipping hanging, make it
// compensate the failed ones (release the stock, void the payment) and wait out
// the slow ones.
var chaosFaults = []chaosFault{
	{"card network down", "payment", []string{"-provider-fail-rate", "1"},
		func(r *runner, on bool) { r.faults.failing.Store(on) }},
	{"card network hangs 2s per call", "payment", []string{"-provider-latency", "2s"},
		func(r *runner, on bool) { r.faults.hangFor.Store(int64(onOff(on, 2*time.Second))) }},
	{"half of new shipments fail", "shipping", []string{"-fail-rate", "0.5"},
		func(r *runner, on bool) { r.setShippingFaults(carrier.Faults{FailRate: onOff(on, 0.5)}) }},
	{"shipping hangs 2s per command", "shipping", []string{"-latency", "2s"},
		func(r *runner, on bool) { r.setShippingFaults(carrier.Faults{Latency: onOff(on, 2*time.Second)}) }},
}

func onOff[T any](on bool, v T) T {
	if on {
		return v
	}
	var zero T
	return zero
}

// setShippingFaults replaces the faults of the in-process shipping service's carrier,
// which outlives restarts of the service.
func (r *runner) setShippingFaults(f carrier.Faults) { r.carrier.SetFaults(f) }

// inject turns fault f on for ChaosEvery, then off again: in-process through its
// switch, for processes by restarting its service with its flags and then without
// (two more kill -9).
func (r *runner) inject(ctx context.Context, round int, f chaosFault, pause func() bool) {
	if r.shop != nil {
		r.logFault(fmt.Sprintf("round %d: %s for %v", round+1, f.what, r.cfg.ChaosEvery))
		f.set(r, true)
		pause()
		f.set(r, false)
		return
	}
	ctx = context.WithoutCancel(ctx) // a fault once on must be switched off
	if err := r.restart(ctx, f.svc, f.flags...); err != nil {
		r.logFault(fmt.Sprintf("round %d: %s: %v", round+1, f.what, err))
		return
	}
	r.logFault(fmt.Sprintf("round %d: %s for %v (%s restarted with %s)", round+1, f.what, r.cfg.ChaosEvery, f.svc, strings.Join(f.flags, " ")))
	pause()
	if err := r.restart(ctx, f.svc); err != nil {
		r.logFault(fmt.Sprintf("round %d: ending %s: %v", round+1, f.what, err))
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
