package main

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// The scenarios: what simulated shoppers do (steady sessions, a flash sale) and how
// an order is followed to its end. The runner in loadgen.go starts the shop, logs
// the shoppers in, runs a scenario with its chaos beside it, and reports.

// steady drives sessions (browse, search, add to cart, checkout) until the order
// count or the duration is reached, and for chaos also until the faults are over.
func (r *runner) steady(ctx context.Context, chaosDone <-chan struct{}) {
	var placed atomic.Int64
	enough := func() bool {
		if r.cfg.Orders > 0 && placed.Load() >= int64(r.cfg.Orders) {
			if chaosDone == nil {
				return true
			}
			select {
			case <-chaosDone:
				return true
			default:
			}
		}
		return ctx.Err() != nil
	}
	if r.cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	session := func(n int) {
		if r.session(ctx, r.users[n%len(r.users)]) {
			placed.Add(1)
		}
	}
	if r.cfg.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Rate))
		defer t.Stop()
		for n := 0; !enough(); n++ {
			select {
			case <-ctx.Done():
			case <-t.C:
				wg.Add(1)
				go func() { defer wg.Done(); session(n) }()
			}
		}
	} else {
		for u := range max(r.cfg.Users, 1) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !enough() {
					session(u)
				}
			}()
		}
	}
	wg.Wait()
}

// session is one shopper's visit; it reports whether an order was placed.
func (r *runner) session(ctx context.Context, c shopAPI) bool {
	p := r.products[rand.IntN(len(r.products))]
	if _, err := c.listProducts(ctx); err != nil && ctx.Err() != nil {
		return false
	}
	if rand.IntN(4) == 0 {
		_ = c.search(ctx, strings.Fields(p.GetName() + " x")[0])
	}
	if err := c.addItem(ctx, p.GetId()); err == nil {
		defer c.clearCart(context.WithoutCancel(ctx))
	}
	return r.place(ctx, c, p.GetId(), r.mix.pick(), true)
}

// place places one order, resending with the same idempotency key while the shop
// answers with a retryable error, so an order placed before a crash is not doubled.
func (r *runner) place(ctx context.Context, c shopAPI, productID, card string, follow bool) bool {
	key := "lg-" + strings.ReplaceAll(uuid.NewString(), "-", "")
	// A shopper refused for now (429, 503, a timeout) tries again with the same
	// idempotency key, backing off with jitter as a well-behaved client does: a
	// stampede of fixed-interval retries would be most of the load a flash sale
	// puts on the shop. One who gets no answer within FinalWait gives up and is
	// counted (Report.Unplaced), since an order may exist that nobody follows.
	giveUp := time.Now().Add(r.cfg.FinalWait)
	pauses := resilience.Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second}
	for {
		id, err := c.placeOrder(context.WithoutCancel(ctx), key, productID, card)
		if err == nil {
			r.stats.orderPlaced()
			r.mu.Lock()
			r.orders[id] = placedOrder{at: time.Now(), by: c}
			r.mu.Unlock()
			if follow {
				r.follow(ctx, c, id)
			}
			return true
		}
		if !retryable(err) {
			return false
		}
		if time.Now().After(giveUp) {
			r.stats.orderUnplaced()
			return false
		}
		time.Sleep(pauses.Next())
	}
}

// flashSale releases every buyer at once on one product.
func (r *runner) flashSale(ctx context.Context) {
	product := r.products[0].GetId()
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range r.cfg.Buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			r.place(ctx, r.users[i%len(r.users)], product, "tok_visa", false)
		}()
	}
	close(gate)
	wg.Wait()
}

// rewatchAfter is the pause before watching an order again after its watch broke
// (a service restarting under chaos, a watch limit): long enough not to hammer a
// recovering shop, short against a saga's outcome.
const rewatchAfter = 200 * time.Millisecond

// follow watches an order as its shopper would until it is final, within FinalWait.
func (r *runner) follow(ctx context.Context, c shopAPI, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.FinalWait)
	defer cancel()
	r.watchFinal(ctx, c, id)
}

// watchFinal watches order id until it is seen final or ctx ends; the shop pushes
// each change, so nothing polls. A broken watch is opened again after a pause.
func (r *runner) watchFinal(ctx context.Context, c shopAPI, id string) {
	for {
		st, _ := c.watchOrder(ctx, id) // a failure is counted in the stats
		if r.final(id, st) {
			return
		}
		if resilience.Sleep(ctx, rewatchAfter) != nil {
			return
		}
	}
}

// final records an order's outcome the first time it is seen final.
func (r *runner) final(id string, st orderv1.OrderStatus) bool {
	if st != orderv1.OrderStatus_ORDER_STATUS_COMPLETED && st != orderv1.OrderStatus_ORDER_STATUS_CANCELLED {
		return false
	}
	r.mu.Lock()
	placed, ok := r.orders[id]
	delete(r.orders, id)
	r.mu.Unlock()
	if ok {
		r.stats.observe(opToFinal, time.Since(placed.at))
		r.stats.outcome(strings.TrimPrefix(st.String(), "ORDER_STATUS_"))
	}
	return true
}

// awaitWatches bounds the watches awaitFinal keeps open at once: each is a stream
// (and, over HTTP, a connection) held until its saga ends.
const awaitWatches = 64
