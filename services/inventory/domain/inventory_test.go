package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eventshop/eventshop/services/inventory/domain"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestStockMoves(t *testing.T) {
	t.Parallel()
	s := domain.Stock{ProductID: "mug", Available: 10, TotalStocked: 10}
	s, err := s.Reserve(4)
	if err != nil || s.Available != 6 || s.Reserved != 4 {
		t.Fatalf("reserve = %+v, %v", s, err)
	}
	if _, err := s.Reserve(7); !errors.Is(err, domain.ErrInsufficientStock) {
		t.Fatalf("reserve over available: %v", err)
	}
	if _, err := s.Reserve(0); !errors.Is(err, domain.ErrInvalidQuantity) {
		t.Fatalf("reserve 0: %v", err)
	}
	s, _ = s.Commit(3)
	s, _ = s.Release(1)
	if s.Available != 7 || s.Reserved != 0 || s.Sold != 3 || s.Check() != nil {
		t.Fatalf("after commit and release = %+v (%v)", s, s.Check())
	}
	if _, err := s.Release(1); !errors.Is(err, domain.ErrInvalidQuantity) {
		t.Fatalf("release of nothing reserved: %v", err)
	}
	s, _ = s.Unsell(1)
	if s.Available != 8 || s.Sold != 2 || s.Check() != nil {
		t.Fatalf("after unsell = %+v (%v)", s, s.Check())
	}
	if _, err := s.Unsell(3); !errors.Is(err, domain.ErrInvalidQuantity) {
		t.Fatalf("unsell of more than sold: %v", err)
	}
	s, err = s.SetAvailable(20)
	if err != nil || s.TotalStocked != 22 || s.Check() != nil {
		t.Fatalf("restock = %+v, %v", s, err)
	}
	s, _ = s.SetAvailable(0)
	if s.TotalStocked != 2 || s.Check() != nil {
		t.Fatalf("write-off = %+v", s)
	}
	if _, err := s.SetAvailable(-1); !errors.Is(err, domain.ErrInvalidQuantity) {
		t.Fatalf("negative stock: %v", err)
	}
	if err := (domain.Stock{Available: 1, TotalStocked: 2}).Check(); !errors.Is(err, domain.ErrInvalidQuantity) {
		t.Fatalf("units that do not add up: %v", err)
	}
}

func TestLinesMergeAndSort(t *testing.T) {
	t.Parallel()
	got, err := domain.Lines([]domain.Line{{"mug", 1}, {"kettle", 2}, {"mug", 3}})
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Line{{"kettle", 2}, {"mug", 4}}
	if !slices.Equal(got, want) {
		t.Fatalf("lines = %v, want %v", got, want)
	}
	for _, bad := range [][]domain.Line{nil, {{"", 1}}, {{"mug", 0}}, {{"mug", -2}}} {
		if _, err := domain.Lines(bad); !errors.Is(err, domain.ErrInvalidQuantity) {
			t.Errorf("Lines(%v): %v", bad, err)
		}
	}
}

func TestReservationLife(t *testing.T) {
	t.Parallel()
	r := domain.NewReservation("r1", "o1", []domain.Line{{"mug", 1}}, now, time.Minute)
	if _, changed := r.Expire(now.Add(59 * time.Second)); changed {
		t.Fatal("expired before its time")
	}
	c, changed, err := r.Commit(now)
	if err != nil || !changed || c.Status != domain.StatusCommitted {
		t.Fatalf("commit = %+v %v %v", c, changed, err)
	}
	if _, changed, err := c.Commit(now); err != nil || changed {
		t.Fatalf("repeat commit = %v %v", changed, err)
	}
	if rc, from, changed := c.Release(now); !changed || from != domain.StatusCommitted || rc.Status != domain.StatusReleased {
		t.Fatalf("release of a committed reservation = %+v from %v changed %v; want its sold units back", rc, from, changed)
	}
	if _, changed := c.Expire(now.Add(time.Hour)); changed {
		t.Fatal("a committed reservation expired")
	}

	e, changed := r.Expire(now.Add(time.Minute))
	if !changed || e.Status != domain.StatusExpired {
		t.Fatalf("expire = %+v %v", e, changed)
	}
	if _, _, err := e.Commit(now); !errors.Is(err, domain.ErrIllegalState) {
		t.Fatalf("commit after expiry: %v", err)
	}
	if _, _, changed := e.Release(now); changed {
		t.Fatal("release after expiry gave units back twice")
	}
	revived, err := e.Revive(now)
	if err != nil || revived.Status != domain.StatusHeld {
		t.Fatalf("revive = %+v, %v", revived, err)
	}
	if _, err := r.Revive(now); !errors.Is(err, domain.ErrIllegalState) {
		t.Fatalf("revive of a held reservation: %v", err)
	}

	rel, from, changed := r.Release(now)
	if !changed || from != domain.StatusHeld || rel.Status != domain.StatusReleased {
		t.Fatalf("release = %+v from %v changed %v", rel, from, changed)
	}
	if _, _, changed := rel.Release(now); changed {
		t.Fatal("second release changed stock")
	}
	if _, _, err := domain.Tombstone("t", "o2", now).Commit(now); !errors.Is(err, domain.ErrIllegalState) {
		t.Fatalf("commit of a tombstone: %v", err)
	}
}
