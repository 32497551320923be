// Package domain holds the shopping cart: its lines, the limits on them, and how a
// cart is priced. It does no I/O and knows nothing of protobuf, NATS or gRPC.
package domain

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors the cart returns; match them with errors.Is.
var (
	// ErrInvalidQuantity means a quantity is not positive or above the per-line limit.
	ErrInvalidQuantity = errors.New("invalid quantity")
	// ErrTooManyLines means adding a product would exceed the distinct-product limit.
	ErrTooManyLines = errors.New("too many lines")
	// ErrItemNotFound means the product is not in the cart.
	ErrItemNotFound = errors.New("item not in cart")
)

// Limits bound a cart. Both must be positive.
type Limits struct {
	// MaxLines is the most distinct products a cart holds.
	MaxLines int
	// MaxQuantity is the most units of one product a cart holds.
	MaxQuantity int32
}

// Item is one line of a cart.
type Item struct {
	ProductID string
	Quantity  int32
}

// Cart is one user's basket. Its zero value is not usable; see New and Rehydrate.
type Cart struct {
	userID     string
	items      []Item // in the order first added
	updateTime time.Time
}

// New returns an empty cart for userID.
func New(userID string) *Cart {
	return &Cart{userID: userID}
}

// Rehydrate rebuilds a cart from storage. It is not a constructor: it enforces no
// limit, so a cart stored under older, looser limits still loads.
func Rehydrate(userID string, items []Item, updateTime time.Time) *Cart {
	return &Cart{userID: userID, items: slices.Clone(items), updateTime: updateTime}
}

// UserID returns the owner of the cart.
func (c *Cart) UserID() string { return c.userID }

// Items returns a copy of the lines, in the order first added.
func (c *Cart) Items() []Item { return slices.Clone(c.items) }

// UpdateTime returns when the cart last changed; zero if never.
func (c *Cart) UpdateTime() time.Time { return c.updateTime }

// Quantity returns the quantity of productID, 0 if absent.
func (c *Cart) Quantity(productID string) int32 {
	if i := c.index(productID); i >= 0 {
		return c.items[i].Quantity
	}
	return 0
}

// Add adds quantity units of productID, summing with an existing line. It returns
// an error wrapping ErrInvalidQuantity if quantity is not positive or the line would
// exceed lim.MaxQuantity, and ErrTooManyLines if a new line would exceed lim.MaxLines.
// On error the cart is unchanged.
func (c *Cart) Add(productID string, quantity int32, lim Limits, now time.Time) error {
	if err := checkQuantity(quantity, lim); err != nil {
		return err
	}
	if i := c.index(productID); i >= 0 {
		sum := int64(c.items[i].Quantity) + int64(quantity)
		if sum > int64(lim.MaxQuantity) {
			return fmt.Errorf("%w: %d of %q already in the cart, adding %d exceeds the limit of %d",
				ErrInvalidQuantity, c.items[i].Quantity, productID, quantity, lim.MaxQuantity)
		}
		c.items[i].Quantity = int32(sum)
		c.updateTime = now
		return nil
	}
	if len(c.items) >= lim.MaxLines {
		return fmt.Errorf("%w: the cart already holds %d different products, the limit", ErrTooManyLines, len(c.items))
	}
	c.items = append(c.items, Item{ProductID: productID, Quantity: quantity})
	c.updateTime = now
	return nil
}

// SetQuantity sets the quantity of a product already in the cart. It returns an
// error wrapping ErrInvalidQuantity for a quantity out of range and ErrItemNotFound
// if the product is not in the cart. On error the cart is unchanged.
func (c *Cart) SetQuantity(productID string, quantity int32, lim Limits, now time.Time) error {
	if err := checkQuantity(quantity, lim); err != nil {
		return err
	}
	i := c.index(productID)
	if i < 0 {
		return fmt.Errorf("product %q: %w", productID, ErrItemNotFound)
	}
	c.items[i].Quantity = quantity
	c.updateTime = now
	return nil
}

// Remove removes productID; removing an absent product changes nothing.
func (c *Cart) Remove(productID string, now time.Time) {
	if i := c.index(productID); i >= 0 {
		c.items = slices.Delete(c.items, i, i+1)
		c.updateTime = now
	}
}

// Empty removes every line.
func (c *Cart) Empty(now time.Time) {
	c.items = nil
	c.updateTime = now
}

func (c *Cart) index(productID string) int {
	return slices.IndexFunc(c.items, func(it Item) bool { return it.ProductID == productID })
}

func checkQuantity(q int32, lim Limits) error {
	if q <= 0 || q > lim.MaxQuantity {
		return fmt.Errorf("%w: %d is not between 1 and %d", ErrInvalidQuantity, q, lim.MaxQuantity)
	}
	return nil
}
