// Package domain holds the stock rules: units move between available, reserved and
// sold, never below zero, and a reservation holds every line of an order or nothing.
// It does no I/O; storage applies the same moves as conditional SQL updates.
package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

var (
	// ErrNotFound means there is no stock for a product, or no reservation for an order.
	ErrNotFound = errors.New("not found")
	// ErrInsufficientStock means fewer units are available than asked for.
	ErrInsufficientStock = errors.New("insufficient stock")
	// ErrInvalidQuantity means a quantity is not positive, or a stock level is negative.
	ErrInvalidQuantity = errors.New("invalid quantity")
	// ErrIllegalState means a reservation's status does not allow the operation, e.g.
	// committing an expired reservation.
	ErrIllegalState = errors.New("illegal reservation state")
)

// Stock is one product's units. Available + Reserved + Sold = TotalStocked: every unit
// ever stocked (the seed plus every restock) is in exactly one place.
type Stock struct {
	ProductID    string
	Available    int64
	Reserved     int64
	Sold         int64
	TotalStocked int64
}

// Check returns ErrInvalidQuantity when a count is negative or the units do not add up.
func (s Stock) Check() error {
	if s.Available < 0 || s.Reserved < 0 || s.Sold < 0 || s.Available+s.Reserved+s.Sold != s.TotalStocked {
		return fmt.Errorf("%w: %s available %d reserved %d sold %d of %d stocked",
			ErrInvalidQuantity, s.ProductID, s.Available, s.Reserved, s.Sold, s.TotalStocked)
	}
	return nil
}

// Reserve moves q units from available to reserved. It returns ErrInvalidQuantity or
// ErrInsufficientStock.
func (s Stock) Reserve(q int64) (Stock, error) {
	if q <= 0 {
		return s, fmt.Errorf("%w: reserve %d of %s", ErrInvalidQuantity, q, s.ProductID)
	}
	if s.Available < q {
		return s, fmt.Errorf("%w: %s has %d, %d asked", ErrInsufficientStock, s.ProductID, s.Available, q)
	}
	s.Available -= q
	s.Reserved += q
	return s, nil
}

// Release moves q reserved units back to available. It returns ErrInvalidQuantity
// when fewer than q are reserved.
func (s Stock) Release(q int64) (Stock, error) {
	if q <= 0 || s.Reserved < q {
		return s, fmt.Errorf("%w: release %d of %d reserved %s", ErrInvalidQuantity, q, s.Reserved, s.ProductID)
	}
	s.Reserved -= q
	s.Available += q
	return s, nil
}

// Unsell moves q sold units back to available: the stock of a sale that a
// cancelled order gives back. It returns ErrInvalidQuantity when fewer than q are sold.
func (s Stock) Unsell(q int64) (Stock, error) {
	if q <= 0 || s.Sold < q {
		return s, fmt.Errorf("%w: unsell %d of %d sold %s", ErrInvalidQuantity, q, s.Sold, s.ProductID)
	}
	s.Sold -= q
	s.Available += q
	return s, nil
}

// Commit moves q reserved units to sold. It returns ErrInvalidQuantity when fewer
// than q are reserved.
func (s Stock) Commit(q int64) (Stock, error) {
	if q <= 0 || s.Reserved < q {
		return s, fmt.Errorf("%w: commit %d of %d reserved %s", ErrInvalidQuantity, q, s.Reserved, s.ProductID)
	}
	s.Reserved -= q
	s.Sold += q
	return s, nil
}

// SetAvailable sets the available units to n (an admin's count); the difference is a
// restock (or a write-off) and is added to TotalStocked, so the units still add up. It
// returns ErrInvalidQuantity for a negative n.
func (s Stock) SetAvailable(n int64) (Stock, error) {
	if n < 0 {
		return s, fmt.Errorf("%w: available %d for %s", ErrInvalidQuantity, n, s.ProductID)
	}
	s.TotalStocked += n - s.Available
	s.Available = n
	return s, nil
}

// Line is a quantity of one product.
type Line struct {
	ProductID string
	Quantity  int64
}

// Lines merges lines of the same product and sorts them by product id, the order in
// which storage locks stock rows (so two reservations never deadlock). It returns
// ErrInvalidQuantity for an empty list, an empty product id or a non-positive quantity.
func Lines(in []Line) ([]Line, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%w: no lines", ErrInvalidQuantity)
	}
	sum := make(map[string]int64, len(in))
	for _, l := range in {
		if l.ProductID == "" || l.Quantity <= 0 {
			return nil, fmt.Errorf("%w: %q x %d", ErrInvalidQuantity, l.ProductID, l.Quantity)
		}
		sum[l.ProductID] += l.Quantity
	}
	out := make([]Line, 0, len(sum))
	for id, q := range sum {
		out = append(out, Line{ProductID: id, Quantity: q})
	}
	slices.SortFunc(out, func(a, b Line) int { return strings.Compare(a.ProductID, b.ProductID) })
	return out, nil
}

// Status is where a reservation stands.
type Status int

const (
	StatusHeld Status = iota + 1
	StatusCommitted
	StatusReleased
	StatusExpired
)

func (s Status) String() string {
	switch s {
	case StatusHeld:
		return "held"
	case StatusCommitted:
		return "committed"
	case StatusReleased:
		return "released"
	case StatusExpired:
		return "expired"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Reservation holds units of several products for one order until it is committed,
// released, or expires. A released reservation without lines is a tombstone: the
// order was compensated before anything was held, and a late reserve is refused.
type Reservation struct {
	ID         string
	OrderID    string
	Status     Status
	Lines      []Line
	ExpireTime time.Time
	CreateTime time.Time
	UpdateTime time.Time
}

// NewReservation holds lines for orderID until now+ttl.
func NewReservation(id, orderID string, lines []Line, now time.Time, ttl time.Duration) Reservation {
	return Reservation{ID: id, OrderID: orderID, Status: StatusHeld, Lines: lines,
		ExpireTime: now.Add(ttl), CreateTime: now, UpdateTime: now}
}

// Tombstone is the reservation of an order released before anything was held.
func Tombstone(id, orderID string, now time.Time) Reservation {
	return Reservation{ID: id, OrderID: orderID, Status: StatusReleased, ExpireTime: now, CreateTime: now, UpdateTime: now}
}

// Commit turns held units into sold ones: changed reports whether the stock must move
// (false for a repeat). It returns ErrIllegalState for a released or expired
// reservation, whose units may already belong to another order.
func (r Reservation) Commit(now time.Time) (next Reservation, changed bool, err error) {
	switch r.Status {
	case StatusCommitted:
		return r, false, nil
	case StatusHeld:
		r.Status = StatusCommitted
		r.UpdateTime = now
		return r, true, nil
	}
	return r, false, fmt.Errorf("%w: commit a %s reservation of order %s", ErrIllegalState, r.Status, r.OrderID)
}

// Revive holds an expired reservation's lines again, for a commit that arrives after
// the expiry: storage must first take the units back from available (all of them, or
// the commit fails). It returns ErrIllegalState unless the reservation expired.
func (r Reservation) Revive(now time.Time) (Reservation, error) {
	if r.Status != StatusExpired {
		return r, fmt.Errorf("%w: revive a %s reservation of order %s", ErrIllegalState, r.Status, r.OrderID)
	}
	r.Status = StatusHeld
	r.UpdateTime = now
	return r, nil
}

// Release gives the order's units back, the compensation of a cancelled order: from
// is where they come from (reserved for a held reservation, sold for a committed
// one) and changed whether the stock must move. A committed reservation is given
// back too because a commit the saga stopped waiting for may still be carried out
// before the release that compensates it; refusing then would keep the cancelled
// order's stock sold. A released or expired reservation has nothing to give back.
func (r Reservation) Release(now time.Time) (next Reservation, from Status, changed bool) {
	if r.Status != StatusHeld && r.Status != StatusCommitted {
		return r, r.Status, false
	}
	from = r.Status
	r.Status = StatusReleased
	r.UpdateTime = now
	return r, from, true
}

// Expire gives held units back once the reservation is past its expiry time: changed
// reports whether it did.
func (r Reservation) Expire(now time.Time) (next Reservation, changed bool) {
	if r.Status != StatusHeld || now.Before(r.ExpireTime) {
		return r, false
	}
	r.Status = StatusExpired
	r.UpdateTime = now
	return r, true
}
