// Package domain holds the product catalog: products, categories, search ranking and
// pagination. It does no I/O and knows nothing of protobuf or gRPC.
package domain

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/eventshop/eventshop/pkg/money"
)

// Errors the catalog returns; match them with errors.Is.
var (
	// ErrNotFound means no product has the requested id.
	ErrNotFound = errors.New("not found")
	// ErrInvalidProduct means a product breaks a catalog rule (bad id, price, ...).
	ErrInvalidProduct = errors.New("invalid product")
	// ErrInvalidPageToken means a page token is malformed or belongs to another query.
	ErrInvalidPageToken = errors.New("invalid page token")
)

// idPattern is the product id (slug) rule shared with the API.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Money is the shop's one amount type: minor units of a currency (pkg/money).
type Money = money.Money

// Product is one sellable item. Products are values: the catalog hands out copies.
type Product struct {
	ID          string
	Name        string
	Description string
	Categories  []string
	Price       Money
	ImageURL    string
	Attributes  map[string]string
	WeightGrams int32
}

// Validate returns an error wrapping ErrInvalidProduct that says which rule p breaks.
func (p Product) Validate() error {
	var problems []string
	if !idPattern.MatchString(p.ID) {
		problems = append(problems, fmt.Sprintf("id %q does not match %s", p.ID, idPattern))
	}
	if strings.TrimSpace(p.Name) == "" {
		problems = append(problems, "name is empty")
	}
	if p.Price.Units <= 0 {
		problems = append(problems, fmt.Sprintf("price %d is not positive", p.Price.Units))
	}
	if len(p.Price.Currency) != 3 || strings.ToUpper(p.Price.Currency) != p.Price.Currency {
		problems = append(problems, fmt.Sprintf("currency %q is not an upper-case ISO-4217 code", p.Price.Currency))
	}
	if len(p.Categories) == 0 {
		problems = append(problems, "has no category")
	}
	for _, c := range p.Categories {
		if strings.TrimSpace(c) == "" || len(c) > 64 {
			problems = append(problems, fmt.Sprintf("category %q is empty or longer than 64 bytes", c))
		}
	}
	if p.WeightGrams <= 0 {
		problems = append(problems, fmt.Sprintf("weight %d g is not positive", p.WeightGrams))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidProduct, strings.Join(problems, "; "))
	}
	return nil
}

func (p Product) clone() Product {
	p.Categories = append([]string(nil), p.Categories...)
	if p.Attributes != nil {
		attrs := make(map[string]string, len(p.Attributes))
		for k, v := range p.Attributes {
			attrs[k] = v
		}
		p.Attributes = attrs
	}
	return p
}
