// Package domain holds the shipping rules: which destinations are served, what a
// parcel costs, and the life of a shipment. It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"sort"
)

// Currency is the currency every quote is made in.
const Currency = "USD"

var (
	// ErrUnsupportedDestination means no zone serves the destination country.
	ErrUnsupportedDestination = errors.New("unsupported destination")
	// ErrEmptyParcel means a quote was asked for no items.
	ErrEmptyParcel = errors.New("parcel has no items")
	// ErrBadItem means an item has a non-positive quantity or a negative weight.
	ErrBadItem = errors.New("bad parcel item")
)

// Zone groups destinations that cost the same to reach. Amounts are in minor units of
// Currency.
type Zone struct {
	Name string
	// Base is charged once per parcel.
	Base int64
	// PerItem is charged for every unit in the parcel (handling).
	PerItem int64
	// PerKg is charged for every started kilogram of total weight.
	PerKg int64
	// Days is the estimated delivery time.
	Days int32
}

var (
	domestic = Zone{Name: "domestic", Base: 499, PerItem: 50, PerKg: 100, Days: 3}
	northAm  = Zone{Name: "north-america", Base: 999, PerItem: 75, PerKg: 250, Days: 6}
	europe   = Zone{Name: "europe", Base: 1499, PerItem: 100, PerKg: 400, Days: 8}
	world    = Zone{Name: "world", Base: 1999, PerItem: 100, PerKg: 600, Days: 12}
)

// zones maps an ISO 3166-1 alpha-2 country code to its zone. A country not listed is
// not served.
var zones = map[string]Zone{
	"US": domestic,
	"CA": northAm, "MX": northAm,
	"AT": europe, "BE": europe, "CH": europe, "DE": europe, "DK": europe, "ES": europe,
	"FI": europe, "FR": europe, "GB": europe, "IE": europe, "IT": europe, "NL": europe,
	"NO": europe, "PL": europe, "PT": europe, "SE": europe,
	"AU": world, "BR": world, "IN": world, "JP": world, "KR": world, "NZ": world,
	"SG": world, "ZA": world,
}

// ZoneFor returns the zone serving country. It returns ErrUnsupportedDestination for a
// country no zone serves.
func ZoneFor(country string) (Zone, error) {
	z, ok := zones[country]
	if !ok {
		return Zone{}, fmt.Errorf("%w: country %q", ErrUnsupportedDestination, country)
	}
	return z, nil
}

// SupportedCountries lists the served country codes, sorted.
func SupportedCountries() []string {
	cs := make([]string, 0, len(zones))
	for c := range zones {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// Item is one line of a parcel: how many units, and what one unit weighs.
type Item struct {
	ProductID   string
	Quantity    int64
	WeightGrams int64
}

// Quote is the price and estimated delivery time of one parcel.
type Quote struct {
	// Cost in minor units of Currency.
	Cost int64
	Days int32
	Zone string
}

// QuoteParcel prices a parcel of items to country. The result depends only on its
// arguments. It returns ErrUnsupportedDestination, ErrEmptyParcel or ErrBadItem.
func QuoteParcel(country string, items []Item) (Quote, error) {
	z, err := ZoneFor(country)
	if err != nil {
		return Quote{}, err
	}
	if len(items) == 0 {
		return Quote{}, ErrEmptyParcel
	}
	var units, grams int64
	for _, it := range items {
		if it.Quantity <= 0 || it.WeightGrams < 0 {
			return Quote{}, fmt.Errorf("%w: %s quantity %d weight %dg", ErrBadItem, it.ProductID, it.Quantity, it.WeightGrams)
		}
		units += it.Quantity
		grams += it.Quantity * it.WeightGrams
	}
	kg := (grams + 999) / 1000 // every started kilogram
	return Quote{
		Cost: z.Base + z.PerItem*units + z.PerKg*kg,
		Days: z.Days,
		Zone: z.Name,
	}, nil
}
