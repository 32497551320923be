package domain

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

var (
	lim = Limits{MaxLines: 3, MaxQuantity: 100}
	now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func TestAdd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		start   []Item
		product string
		qty     int32
		want    []Item
		wantErr error
	}{
		{"new line", nil, "mug", 2, []Item{{"mug", 2}}, nil},
		{"sums with existing", []Item{{"mug", 2}}, "mug", 3, []Item{{"mug", 5}}, nil},
		{"sum at the limit", []Item{{"mug", 60}}, "mug", 40, []Item{{"mug", 100}}, nil},
		{"sum over the limit", []Item{{"mug", 60}}, "mug", 41, []Item{{"mug", 60}}, ErrInvalidQuantity},
		{"zero", nil, "mug", 0, nil, ErrInvalidQuantity},
		{"negative", nil, "mug", -1, nil, ErrInvalidQuantity},
		{"over max", nil, "mug", 101, nil, ErrInvalidQuantity},
		{"too many lines", []Item{{"a", 1}, {"b", 1}, {"c", 1}}, "d", 1, []Item{{"a", 1}, {"b", 1}, {"c", 1}}, ErrTooManyLines},
		{"existing line when full", []Item{{"a", 1}, {"b", 1}, {"c", 1}}, "b", 1, []Item{{"a", 1}, {"b", 2}, {"c", 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Rehydrate("alice", tt.start, time.Time{})
			err := c.Add(tt.product, tt.qty, lim, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(c.Items(), tt.want) {
				t.Fatalf("items = %v, want %v", c.Items(), tt.want)
			}
			if changed := !c.UpdateTime().IsZero(); changed != (err == nil) {
				t.Fatalf("update time set = %v with err %v", changed, err)
			}
		})
	}
}

func TestSetQuantityRemoveEmpty(t *testing.T) {
	t.Parallel()
	c := Rehydrate("alice", []Item{{"a", 1}, {"b", 2}}, time.Time{})
	if err := c.SetQuantity("b", 7, lim, now); err != nil {
		t.Fatal(err)
	}
	if err := c.SetQuantity("zzz", 1, lim, now); !errors.Is(err, ErrItemNotFound) {
		t.Fatalf("absent product: %v", err)
	}
	if err := c.SetQuantity("a", 0, lim, now); !errors.Is(err, ErrInvalidQuantity) {
		t.Fatalf("zero: %v", err)
	}
	c.Remove("a", now)
	c.Remove("absent", now)
	if want := []Item{{"b", 7}}; !slices.Equal(c.Items(), want) {
		t.Fatalf("items = %v, want %v", c.Items(), want)
	}
	c.Empty(now)
	if len(c.Items()) != 0 {
		t.Fatal("not empty")
	}
}

func TestItemsIsACopy(t *testing.T) {
	t.Parallel()
	c := Rehydrate("alice", []Item{{"a", 1}}, time.Time{})
	c.Items()[0].Quantity = 99
	if c.Quantity("a") != 1 {
		t.Fatal("caller changed the cart through Items")
	}
}

func TestPrice(t *testing.T) {
	t.Parallel()
	usd := func(n int64) Money { return Money{Units: n, Currency: "USD"} }
	products := map[string]Product{
		"mug":  {ID: "mug", Name: "Mug", Price: usd(1250)},
		"pot":  {ID: "pot", Name: "Pot", Price: usd(4999)},
		"euro": {ID: "euro", Name: "Euro thing", Price: Money{Units: 100, Currency: "EUR"}},
	}
	tests := []struct {
		name         string
		items        []Item
		wantSubtotal int64
		wantHas      bool
	}{
		{"all priced", []Item{{"mug", 3}, {"pot", 2}}, 3*1250 + 2*4999, true},
		{"one unpriced", []Item{{"mug", 3}, {"gone", 1}}, 0, false},
		{"mixed currency", []Item{{"mug", 1}, {"euro", 1}}, 0, false},
		{"empty", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := Price(Rehydrate("alice", tt.items, now), products)
			if err != nil {
				t.Fatal(err)
			}
			if pc.HasSubtotal != tt.wantHas || pc.Subtotal.Units != tt.wantSubtotal {
				t.Fatalf("subtotal = %v (set %v), want %d (set %v)", pc.Subtotal, pc.HasSubtotal, tt.wantSubtotal, tt.wantHas)
			}
			for _, it := range pc.Items {
				p, known := products[it.ProductID]
				if it.Priced != known {
					t.Errorf("%s priced = %v", it.ProductID, it.Priced)
				}
				if known && it.LineTotal.Units != p.Price.Units*int64(it.Quantity) {
					t.Errorf("%s line total = %d", it.ProductID, it.LineTotal.Units)
				}
			}
		})
	}
}

func TestPriceOverflow(t *testing.T) {
	t.Parallel()
	products := map[string]Product{"gold": {ID: "gold", Price: Money{Units: math.MaxInt64 / 2, Currency: "USD"}}}
	if _, err := Price(Rehydrate("alice", []Item{{"gold", 3}}, now), products); err == nil {
		t.Fatal("want an overflow error")
	}
}
