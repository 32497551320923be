package domain

import (
	"fmt"

	"github.com/eventshop/eventshop/pkg/money"
)

// Money is the shop's one amount type: minor units of a currency (pkg/money).
type Money = money.Money

// Product is what the cart needs to know of a catalog product.
type Product struct {
	ID       string
	Name     string
	Price    Money
	ImageURL string
}

// PricedItem is a cart line with its catalog data. Priced is false when no price was
// known for the product (catalog unreachable and nothing cached, or the product has
// left the catalog); then only ProductID and Quantity are meaningful.
type PricedItem struct {
	Item
	Priced    bool
	Name      string
	ImageURL  string
	UnitPrice Money
	LineTotal Money
}

// PricedCart is a cart priced with catalog prices.
type PricedCart struct {
	Cart  *Cart
	Items []PricedItem
	// Subtotal sums the line totals. It is set only when every line is priced, the
	// cart is not empty and all prices share one currency: a partial sum would
	// understate what the customer will pay.
	Subtotal    Money
	HasSubtotal bool
}

// Price prices every line of c with products (by id); lines whose product is
// missing stay unpriced. It returns an error if a line total or the subtotal
// overflows int64, which real prices and quantities cannot reach.
func Price(c *Cart, products map[string]Product) (PricedCart, error) {
	pc := PricedCart{Cart: c}
	allPriced := len(c.items) > 0
	var subtotal Money
	for _, it := range c.items {
		pi := PricedItem{Item: it}
		p, ok := products[it.ProductID]
		if !ok {
			allPriced = false
			pc.Items = append(pc.Items, pi)
			continue
		}
		line, err := p.Price.Mul(int64(it.Quantity))
		if err != nil {
			return PricedCart{}, fmt.Errorf("price %q: line total: %w", it.ProductID, err)
		}
		pi.Priced, pi.Name, pi.ImageURL = true, p.Name, p.ImageURL
		pi.UnitPrice = p.Price
		pi.LineTotal = line
		pc.Items = append(pc.Items, pi)

		switch {
		case subtotal.Currency == "":
			subtotal = line
		case subtotal.Currency != line.Currency:
			allPriced = false // no subtotal across currencies
		default:
			if subtotal, err = subtotal.Add(line); err != nil {
				return PricedCart{}, fmt.Errorf("price cart: subtotal: %w", err)
			}
		}
	}
	if allPriced {
		pc.Subtotal = subtotal
		pc.HasSubtotal = true
	}
	return pc, nil
}
