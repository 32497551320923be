// Package app runs the cart's use cases: it loads a user's cart from the store,
// checks products with the catalog, applies the domain change and prices the result.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eventshop/eventshop/services/cart/domain"
)

// Errors of the cart use cases, besides the domain's; match them with errors.Is.
var (
	// ErrUnknownProduct means the catalog does not sell the product.
	ErrUnknownProduct = errors.New("unknown product")
	// ErrCatalogUnavailable means the catalog could not be asked.
	ErrCatalogUnavailable = errors.New("catalog unavailable")
	// ErrConflict means the cart kept changing underneath every attempt to update it.
	ErrConflict = errors.New("cart changed concurrently")
)

// Store keeps carts. Implementations must make Update atomic per user: fn sees the
// latest cart and its change is written only if nobody wrote in between.
type Store interface {
	// Get returns the user's cart, an empty one if none is stored.
	Get(ctx context.Context, userID string) (*domain.Cart, error)
	// Update applies fn to the user's cart (empty if none) and stores the result,
	// unless fn returns an error, which Update returns with nothing written. fn may
	// run several times. Update returns ErrConflict when retries are exhausted.
	Update(ctx context.Context, userID string, fn func(*domain.Cart) error) (*domain.Cart, error)
}

// Catalog answers product questions.
type Catalog interface {
	// Product returns the product, asking the catalog now (never a cache). It returns
	// ErrUnknownProduct or ErrCatalogUnavailable.
	Product(ctx context.Context, id string) (domain.Product, error)
	// Products returns the products the catalog sells among ids; unknown ids are
	// left out. It returns ErrCatalogUnavailable when the catalog cannot be asked.
	Products(ctx context.Context, ids []string) (map[string]domain.Product, error)
	// LastKnown returns the products among ids seen in earlier answers.
	LastKnown(ids []string) map[string]domain.Product
}

// Carts runs the cart use cases for the caller's user id. Safe for concurrent use.
type Carts struct {
	store   Store
	catalog Catalog
	limits  domain.Limits
	logger  *slog.Logger
	now     func() time.Time
}

// NewCarts returns Carts over store and catalog. It panics on nil collaborators or
// non-positive limits, so miswiring fails at start-up.
func NewCarts(store Store, catalog Catalog, limits domain.Limits, logger *slog.Logger) *Carts {
	switch {
	case store == nil:
		panic("app: nil store")
	case catalog == nil:
		panic("app: nil catalog")
	case limits.MaxLines <= 0 || limits.MaxQuantity <= 0:
		panic("app: limits must be positive")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Carts{store: store, catalog: catalog, limits: limits, logger: logger, now: time.Now}
}

// Get returns the user's cart, priced (see price).
func (c *Carts) Get(ctx context.Context, userID string) (domain.PricedCart, error) {
	cart, err := c.store.Get(ctx, userID)
	if err != nil {
		return domain.PricedCart{}, err
	}
	return c.price(ctx, cart)
}

// AddItem adds quantity of productID to the user's cart after the catalog confirms
// the product. It returns ErrUnknownProduct, ErrCatalogUnavailable (nothing is
// accepted unchecked), the domain's ErrInvalidQuantity or ErrTooManyLines, or
// ErrConflict; on any error nothing is written.
func (c *Carts) AddItem(ctx context.Context, userID, productID string, quantity int32) (domain.PricedCart, error) {
	// Checking the quantity first spares the catalog a call for a request that
	// cannot succeed.
	if err := domain.New(userID).Add(productID, quantity, c.limits, c.now()); err != nil {
		return domain.PricedCart{}, err
	}
	if _, err := c.catalog.Product(ctx, productID); err != nil {
		return domain.PricedCart{}, err
	}
	cart, err := c.store.Update(ctx, userID, func(cart *domain.Cart) error {
		return cart.Add(productID, quantity, c.limits, c.now())
	})
	if err != nil {
		return domain.PricedCart{}, err
	}
	return c.price(ctx, cart)
}

// UpdateItemQuantity sets the quantity of a product already in the cart. It returns
// the domain's ErrItemNotFound or ErrInvalidQuantity, or ErrConflict.
func (c *Carts) UpdateItemQuantity(ctx context.Context, userID, productID string, quantity int32) (domain.PricedCart, error) {
	cart, err := c.store.Update(ctx, userID, func(cart *domain.Cart) error {
		return cart.SetQuantity(productID, quantity, c.limits, c.now())
	})
	if err != nil {
		return domain.PricedCart{}, err
	}
	return c.price(ctx, cart)
}

// RemoveItem removes productID; an absent product is not an error. It returns
// ErrConflict when retries are exhausted.
func (c *Carts) RemoveItem(ctx context.Context, userID, productID string) (domain.PricedCart, error) {
	cart, err := c.store.Update(ctx, userID, func(cart *domain.Cart) error {
		cart.Remove(productID, c.now())
		return nil
	})
	if err != nil {
		return domain.PricedCart{}, err
	}
	return c.price(ctx, cart)
}

// Empty removes every item. It returns ErrConflict when retries are exhausted.
func (c *Carts) Empty(ctx context.Context, userID string) error {
	_, err := c.store.Update(ctx, userID, func(cart *domain.Cart) error {
		if len(cart.Items()) > 0 {
			cart.Empty(c.now())
		}
		return nil
	})
	return err
}

// price prices the cart with the catalog's current prices. When the catalog cannot
// be asked, it falls back to the last-known prices of this process; lines with no
// known price are returned unpriced and the cart then has no subtotal. Reading a
// cart therefore keeps working through a catalog outage, while adding to it does not.
func (c *Carts) price(ctx context.Context, cart *domain.Cart) (domain.PricedCart, error) {
	items := cart.Items()
	if len(items) == 0 {
		return domain.Price(cart, nil)
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	products, err := c.catalog.Products(ctx, ids)
	switch {
	case errors.Is(err, ErrCatalogUnavailable):
		products = c.catalog.LastKnown(ids)
		c.logger.WarnContext(ctx, "catalog unavailable, pricing cart from last-known prices",
			"lines", len(ids), "known", len(products), "error", err)
	case err != nil:
		return domain.PricedCart{}, fmt.Errorf("price cart: %w", err)
	}
	return domain.Price(cart, products)
}
