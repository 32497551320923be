package domain

import (
	"fmt"
	"math"
)

// Money is an amount in the currency's minor unit (cents for USD), never a float.
type Money struct {
	MinorUnits int64
	Currency   string
}

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
	var currency string
	var subtotal int64
	for _, it := range c.items {
		pi := PricedItem{Item: it}
		p, ok := products[it.ProductID]
		if !ok {
			allPriced = false
			pc.Items = append(pc.Items, pi)
			continue
		}
		line, ok := mul(p.Price.MinorUnits, int64(it.Quantity))
		if !ok {
			return PricedCart{}, fmt.Errorf("price %q: line total overflows", it.ProductID)
		}
		pi.Priced, pi.Name, pi.ImageURL = true, p.Name, p.ImageURL
		pi.UnitPrice = p.Price
		pi.LineTotal = Money{MinorUnits: line, Currency: p.Price.Currency}
		pc.Items = append(pc.Items, pi)

		switch {
		case currency == "":
			currency = p.Price.Currency
		case currency != p.Price.Currency:
			allPriced = false
		}
		if subtotal > math.MaxInt64-line {
			return PricedCart{}, fmt.Errorf("price cart: subtotal overflows")
		}
		subtotal += line
	}
	if allPriced {
		pc.Subtotal = Money{MinorUnits: subtotal, Currency: currency}
		pc.HasSubtotal = true
	}
	return pc, nil
}

func mul(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	r := a * b
	return r, r/b == a && !(a < 0 && b < 0 && r < 0)
}
