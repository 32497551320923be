package domain_test

import (
	"testing"

	"github.com/eventshop/eventshop/services/order/domain"
)

func BenchmarkPlace(b *testing.B) {
	p := placeParams()
	var o domain.Order
	for b.Loop() {
		if _, err := o.Place(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRehydrateCompleted(b *testing.B) {
	history := happyPath(6)
	for b.Loop() {
		if _, err := domain.Rehydrate(history); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFromSnapshot(b *testing.B) {
	s := fixtures()[6].load(b).Snapshot()
	for b.Loop() {
		if _, err := domain.FromSnapshot(s); err != nil {
			b.Fatal(err)
		}
	}
}
