package domain

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Page sizes of ListProducts and Search.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Catalog is an immutable set of valid products, safe for concurrent use.
type Catalog struct {
	products []Product // by name, then id: the listing order
	byID     map[string]int
	lower    []lowered // lower-cased search texts, by index in products
}

// lowered holds a product's texts in lower case for search: its name, its
// categories and attribute values (one line each), its description.
type lowered struct{ name, tags, description string }

// Category is a product grouping with its size.
type Category struct {
	Name         string
	ProductCount int
}

// Page is one page of a listing or search.
type Page struct {
	Products []Product
	// NextPageToken continues the same query; empty on the last page.
	NextPageToken string
	// TotalSize counts every product the query matches, across pages.
	TotalSize int
}

// NewCatalog validates every product and returns the catalog. It returns an error
// wrapping ErrInvalidProduct naming the first product that is invalid, has an id
// already taken, or is priced in another currency than the first product.
func NewCatalog(products []Product) (*Catalog, error) {
	c := &Catalog{byID: make(map[string]int, len(products))}
	var currency string
	for i, p := range products {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("product %d (%q): %w", i, p.ID, err)
		}
		if _, dup := c.byID[p.ID]; dup {
			return nil, fmt.Errorf("product %d (%q): %w: id is used twice", i, p.ID, ErrInvalidProduct)
		}
		if currency == "" {
			currency = p.Price.Currency
		} else if p.Price.Currency != currency {
			return nil, fmt.Errorf("product %d (%q): %w: currency %s differs from the catalog's %s", i, p.ID, ErrInvalidProduct, p.Price.Currency, currency)
		}
		c.byID[p.ID] = i
		c.products = append(c.products, p.clone())
	}
	slices.SortFunc(c.products, func(a, b Product) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	c.lower = make([]lowered, len(c.products))
	for i, p := range c.products {
		c.byID[p.ID] = i
		tags := slices.Clone(p.Categories)
		for _, k := range slices.Sorted(maps.Keys(p.Attributes)) {
			tags = append(tags, p.Attributes[k])
		}
		c.lower[i] = lowered{strings.ToLower(p.Name), strings.ToLower(strings.Join(tags, "\n")), strings.ToLower(p.Description)}
	}
	return c, nil
}

// Len returns the number of products.
func (c *Catalog) Len() int { return len(c.products) }

// Product returns the product with id, or an error wrapping ErrNotFound.
func (c *Catalog) Product(id string) (Product, error) {
	i, ok := c.byID[id]
	if !ok {
		return Product{}, fmt.Errorf("product %q: %w", id, ErrNotFound)
	}
	return c.products[i].clone(), nil
}

// Products returns the products with ids in the order given, each once. It returns an
// error wrapping ErrNotFound naming the first unknown id.
func (c *Catalog) Products(ids []string) ([]Product, error) {
	out := make([]Product, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		p, err := c.Product(id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// List returns a page of products ordered by name, only those in category when it is
// not empty (compared case-insensitively). pageSize 0 means DefaultPageSize; larger
// than MaxPageSize is capped. It returns an error wrapping ErrInvalidPageToken for a
// token not issued for this same query.
func (c *Catalog) List(category string, pageSize int, pageToken string) (Page, error) {
	category = strings.TrimSpace(category)
	var matched []Product
	if category == "" {
		matched = c.products
	} else {
		for _, p := range c.products {
			if slices.ContainsFunc(p.Categories, func(pc string) bool { return strings.EqualFold(pc, category) }) {
				matched = append(matched, p)
			}
		}
	}
	return c.page(matched, queryKey("list", strings.ToLower(category)), pageSize, pageToken)
}

// Categories returns every category with its product count, ordered by name.
// Categories differing only in case are one category, named as first seen in listing order.
func (c *Catalog) Categories() []Category {
	counts := make(map[string]int)
	names := make(map[string]string)
	for _, p := range c.products {
		seen := make(map[string]bool, len(p.Categories))
		for _, name := range p.Categories {
			key := strings.ToLower(name)
			if seen[key] {
				continue
			}
			seen[key] = true
			if _, ok := names[key]; !ok {
				names[key] = name
			}
			counts[key]++
		}
	}
	out := make([]Category, 0, len(counts))
	for key, n := range counts {
		out = append(out, Category{Name: names[key], ProductCount: n})
	}
	slices.SortFunc(out, func(a, b Category) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func (c *Catalog) page(matched []Product, key uint64, pageSize int, pageToken string) (Page, error) {
	switch {
	case pageSize <= 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	offset := 0
	if pageToken != "" {
		var err error
		if offset, err = decodePageToken(pageToken, key); err != nil {
			return Page{}, err
		}
	}
	page := Page{TotalSize: len(matched)}
	if offset >= len(matched) {
		return page, nil
	}
	end := min(offset+pageSize, len(matched))
	page.Products = make([]Product, 0, end-offset)
	for _, p := range matched[offset:end] {
		page.Products = append(page.Products, p.clone())
	}
	if end < len(matched) {
		page.NextPageToken = encodePageToken(end, key)
	}
	return page, nil
}
