package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventshop/eventshop/services/order/domain"
)

// Product is what the order needs of a catalog product.
type Product struct {
	ID          string
	Name        string
	Price       domain.Money
	WeightGrams int32
}

// Catalog prices products. Products returns every requested product by id. It
// returns an *UnknownProductError (ErrUnknownProduct) naming an id the catalog does
// not know, and an error matching ErrUnavailable when the catalog cannot answer.
type Catalog interface {
	Products(ctx context.Context, ids []string) (map[string]Product, error)
}

// Item is a product and a quantity, as the client asked for it.
type Item struct {
	ProductID string
	Quantity  int32
}

// QuoteRequest is what a shipping quote depends on.
type QuoteRequest struct {
	Items   []Item
	Address domain.Address
	// Currency the order is priced in; the quote must be in it.
	Currency string
}

// ShippingQuoter prices shipping. Quote returns an error matching ErrUnavailable
// when the quote cannot be obtained; a quote in another currency than asked makes
// PlaceOrder fail with domain.ErrCurrencyMismatch.
type ShippingQuoter interface {
	Quote(ctx context.Context, req QuoteRequest) (domain.Money, error)
}

// FlatRate charges the same shipping cost, Units minor units of the order's
// currency, for every order. It is the configured price when no shipping service is
// configured (-flat-shipping-minor), not an imitation of one: it never looks at
// weight or destination.
type FlatRate struct{ Units int64 }

var _ ShippingQuoter = FlatRate{}

// Quote returns Units in req.Currency; it never fails.
func (f FlatRate) Quote(_ context.Context, req QuoteRequest) (domain.Money, error) {
	return domain.NewMoney(f.Units, req.Currency), nil
}

// OrderPlacedHook is told about every successfully placed order, e.g. to start its
// fulfilment saga. It runs again on every retry of PlaceOrder, so it must be
// idempotent by order id. Until one is configured, the order category stream in the
// event store is the only signal that an order was placed.
type OrderPlacedHook interface {
	OrderPlaced(ctx context.Context, o *domain.Order) error
}

// PlaceOrderCommand asks to place an order for UserID (the verified caller).
type PlaceOrderCommand struct {
	UserID         string
	IdempotencyKey string
	Items          []Item
	Address        domain.Address
	PaymentToken   string
}

// PlaceOrder prices an order from the catalog and the shipping quoter, records it
// once per idempotency key, and tells the hook.
type PlaceOrder struct {
	repo     *Repository
	catalog  Catalog
	shipping ShippingQuoter
	hook     OrderPlacedHook
	// start stores OrderPlaced together with the start of the order's saga; nil
	// stores it alone.
	start NewStreamAppend
	// resume makes sure the saga of an order placed before is being driven.
	resume func(ctx context.Context, orderID string) error
}

// WithSagaResume returns h calling resume for an order a retried request finds
// placed already (saga.Orchestrator.ResumeSaga): when the first request's append was
// stored but failed on the way back, nothing sent the saga's first command, and the
// retry is what gets it going instead of the next restart.
func (h PlaceOrder) WithSagaResume(resume func(ctx context.Context, orderID string) error) PlaceOrder {
	h.resume = resume
	return h
}

// WithSagaStart returns h storing each new order with start, which starts the
// order's saga in the same append (SagaStartAppend).
func (h PlaceOrder) WithSagaStart(start NewStreamAppend) PlaceOrder {
	h.start = start
	return h
}

// NewPlaceOrder returns the handler. hook may be nil; it panics on any other nil
// dependency.
func NewPlaceOrder(repo *Repository, catalog Catalog, shipping ShippingQuoter, hook OrderPlacedHook) PlaceOrder {
	switch {
	case repo == nil:
		panic("place order: nil repository")
	case catalog == nil:
		panic("place order: nil catalog")
	case shipping == nil:
		panic("place order: nil shipping quoter")
	}
	return PlaceOrder{repo: repo, catalog: catalog, shipping: shipping, hook: hook}
}

// Handle places the order and returns it. Items naming the same product are merged
// into one line. A repeated command (same user and idempotency key) returns the order
// the first one placed and stores nothing new, even when it races the first.
//
// It returns ErrUnauthenticated without a user, domain.ErrInvalidOrder (or an error
// matching it) for an order the domain rejects, an *UnknownProductError naming the
// first unknown item, errors matching ErrUnavailable when the catalog, the shipping
// quoter or the hook fail, ErrConcurrency and event-store errors wrapped. Nothing is
// stored when pricing fails.
func (h PlaceOrder) Handle(ctx context.Context, cmd PlaceOrderCommand) (*domain.Order, error) {
	if cmd.UserID == "" {
		return nil, ErrUnauthenticated
	}
	if cmd.IdempotencyKey == "" {
		return nil, fmt.Errorf("place order: idempotency key is empty: %w", domain.ErrInvalidOrder)
	}
	orderID := OrderIDFor(cmd.UserID, cmd.IdempotencyKey)
	params, err := h.price(ctx, cmd)
	if err != nil {
		// A retry of a request that was placed gets its order even while the
		// catalog or shipping is down.
		if o, lerr := h.repo.Load(ctx, orderID); lerr == nil {
			return h.placed(ctx, o)
		}
		return nil, fmt.Errorf("place order: %w", err)
	}
	params.OrderID = orderID
	o, err := h.repo.Create(ctx, orderID, func(o *domain.Order) ([]domain.Event, error) {
		return o.Place(params)
	}, h.start)
	if errors.Is(err, errExists) {
		// An earlier request with this key placed it: answer with that order,
		// whatever this one priced.
		o, err = h.repo.Load(ctx, orderID)
		if err == nil && h.resume != nil {
			if rerr := h.resume(ctx, orderID); rerr != nil {
				return nil, fmt.Errorf("order %s placed, driving its fulfilment failed (retry with the same key): %w: %w", orderID, ErrUnavailable, rerr)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("place order: %w", err)
	}
	return h.placed(ctx, o)
}

func (h PlaceOrder) placed(ctx context.Context, o *domain.Order) (*domain.Order, error) {
	if h.hook != nil {
		if err := h.hook.OrderPlaced(ctx, o); err != nil {
			return nil, fmt.Errorf("order %s placed, starting fulfilment failed (retry with the same key): %w: %w", o.ID(), ErrUnavailable, err)
		}
	}
	return o, nil
}

// price merges the items, prices them from the catalog and quotes shipping.
func (h PlaceOrder) price(ctx context.Context, cmd PlaceOrderCommand) (domain.PlaceParams, error) {
	merged, firstIndex := mergeItems(cmd.Items)
	if len(merged) == 0 {
		return domain.PlaceParams{}, fmt.Errorf("no items: %w", domain.ErrInvalidOrder)
	}
	ids := make([]string, len(merged))
	for i, it := range merged {
		ids[i] = it.ProductID
	}
	products, err := h.catalog.Products(ctx, ids)
	var unknown *UnknownProductError
	if errors.As(err, &unknown) {
		return domain.PlaceParams{}, &UnknownProductError{Index: firstIndex[unknown.ProductID], ProductID: unknown.ProductID}
	}
	if err != nil {
		return domain.PlaceParams{}, fmt.Errorf("price items: %w", err)
	}
	lines := make([]domain.Line, len(merged))
	for i, it := range merged {
		p, ok := products[it.ProductID]
		if !ok {
			return domain.PlaceParams{}, &UnknownProductError{Index: firstIndex[it.ProductID], ProductID: it.ProductID}
		}
		lines[i] = domain.Line{ProductID: it.ProductID, Name: p.Name, Quantity: it.Quantity, UnitPrice: p.Price}
	}
	shipping, err := h.shipping.Quote(ctx, QuoteRequest{Items: merged, Address: cmd.Address, Currency: lines[0].UnitPrice.Currency})
	if err != nil {
		return domain.PlaceParams{}, fmt.Errorf("quote shipping: %w", err)
	}
	return domain.PlaceParams{
		UserID:         cmd.UserID,
		Lines:          lines,
		ShippingCost:   shipping,
		Address:        cmd.Address,
		PaymentToken:   cmd.PaymentToken,
		IdempotencyKey: cmd.IdempotencyKey,
	}, nil
}

// mergeItems sums the quantities of items naming the same product, keeping the
// order of first appearance, and returns each product's first index in items.
func mergeItems(items []Item) ([]Item, map[string]int) {
	merged := make([]Item, 0, len(items))
	pos := make(map[string]int, len(items))
	first := make(map[string]int, len(items))
	for i, it := range items {
		if j, ok := pos[it.ProductID]; ok {
			merged[j].Quantity += it.Quantity
			continue
		}
		pos[it.ProductID] = len(merged)
		first[it.ProductID] = i
		merged = append(merged, it)
	}
	return merged, first
}
