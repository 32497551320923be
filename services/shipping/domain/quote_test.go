package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eventshop/eventshop/services/shipping/domain"
)

func TestQuoteParcel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		country string
		items   []domain.Item
		want    domain.Quote
		wantErr error
	}{
		{
			name:    "domestic, one light item",
			country: "US",
			items:   []domain.Item{{ProductID: "mug", Quantity: 1, WeightGrams: 350}},
			want:    domain.Quote{Cost: 499 + 50 + 100, Days: 3, Zone: "domestic"},
		},
		{
			name:    "europe, started kilograms round up",
			country: "DE",
			items: []domain.Item{
				{ProductID: "mug", Quantity: 3, WeightGrams: 350},
				{ProductID: "grinder", Quantity: 1, WeightGrams: 1200},
			},
			// 4 units, 2250 g -> 3 kg
			want: domain.Quote{Cost: 1499 + 4*100 + 3*400, Days: 8, Zone: "europe"},
		},
		{
			name:    "weightless items pay handling only",
			country: "CA",
			items:   []domain.Item{{ProductID: "gift-card", Quantity: 2}},
			want:    domain.Quote{Cost: 999 + 2*75, Days: 6, Zone: "north-america"},
		},
		{name: "unsupported country", country: "AQ", items: []domain.Item{{ProductID: "mug", Quantity: 1}}, wantErr: domain.ErrUnsupportedDestination},
		{name: "lower-case code is not a country", country: "us", items: []domain.Item{{ProductID: "mug", Quantity: 1}}, wantErr: domain.ErrUnsupportedDestination},
		{name: "no items", country: "US", wantErr: domain.ErrEmptyParcel},
		{name: "zero quantity", country: "US", items: []domain.Item{{ProductID: "mug"}}, wantErr: domain.ErrBadItem},
		{name: "negative weight", country: "US", items: []domain.Item{{ProductID: "mug", Quantity: 1, WeightGrams: -1}}, wantErr: domain.ErrBadItem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.QuoteParcel(tt.country, tt.items)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("quote = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestQuoteParcelIsDeterministicAndOrderFree(t *testing.T) {
	t.Parallel()
	a := []domain.Item{{ProductID: "a", Quantity: 2, WeightGrams: 700}, {ProductID: "b", Quantity: 1, WeightGrams: 5100}}
	b := []domain.Item{a[1], a[0]}
	first, err := domain.QuoteParcel("JP", a)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		again, err := domain.QuoteParcel("JP", b)
		if err != nil || again != first {
			t.Fatalf("quote changed: %+v, %v; first %+v", again, err, first)
		}
	}
}

func TestSupportedCountriesHaveZones(t *testing.T) {
	t.Parallel()
	for _, c := range domain.SupportedCountries() {
		if _, err := domain.ZoneFor(c); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
}

func TestShipmentLife(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	addr := domain.Address{Name: "A", Street: "S", City: "C", PostalCode: "P", CountryCode: "US"}
	q := domain.Quote{Cost: 649, Days: 3}

	s, created, err := domain.NewShipment(nil, "s1", "o1", "T1", addr, q, now)
	if err != nil || !created || s.Status != domain.StatusCreated || s.Cost != 649 || s.TrackingID != "T1" {
		t.Fatalf("first create = %+v, %v, %v", s, created, err)
	}
	again, created, err := domain.NewShipment(&s, "s2", "o1", "T2", addr, q, now)
	if err != nil || created || again.ID != "s1" || again.TrackingID != "T1" {
		t.Fatalf("second create = %+v, %v, %v; want the first parcel", again, created, err)
	}

	c, changed := domain.Cancel(&s, "o1", "x", now.Add(time.Minute))
	if !changed || c.Status != domain.StatusCancelled || c.ID != "s1" {
		t.Fatalf("cancel = %+v, %v", c, changed)
	}
	if _, changed := domain.Cancel(&c, "o1", "x", now); changed {
		t.Fatal("second cancel changed something")
	}
	if _, _, err := domain.NewShipment(&c, "s3", "o1", "T3", addr, q, now); !errors.Is(err, domain.ErrCancelled) {
		t.Fatalf("create after cancel: err = %v, want ErrCancelled", err)
	}

	tomb, changed := domain.Cancel(nil, "o2", "t2", now)
	if !changed || tomb.Status != domain.StatusCancelled || tomb.TrackingID != "" || tomb.OrderID != "o2" {
		t.Fatalf("cancel with nothing booked = %+v, %v; want a tombstone", tomb, changed)
	}
	if _, _, err := domain.NewShipment(&tomb, "s4", "o2", "T4", addr, q, now); !errors.Is(err, domain.ErrCancelled) {
		t.Fatalf("create after tombstone: err = %v, want ErrCancelled", err)
	}
}
