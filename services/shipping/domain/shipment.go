package domain

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound means an order has no shipment.
	ErrNotFound = errors.New("shipment not found")
	// ErrCancelled means the order's shipment was cancelled, so no parcel may be booked
	// for it any more (a create that arrives after its compensation).
	ErrCancelled = errors.New("shipment cancelled")
)

// Status is where a shipment stands.
type Status int

const (
	StatusCreated Status = iota + 1
	StatusCancelled
)

func (s Status) String() string {
	switch s {
	case StatusCreated:
		return "created"
	case StatusCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Address is a postal destination.
type Address struct {
	Name, Street, City, PostalCode, CountryCode string
}

// Shipment is one order's parcel. An order has at most one. A cancelled shipment with
// no tracking id is a tombstone: the order was compensated before any parcel was
// booked, and it stays so a late create is refused.
type Shipment struct {
	ID      string
	OrderID string
	// UserID owns the order; only they and admins may read the shipment (it holds
	// their address). Empty for shipments made before it was recorded: admins only.
	UserID     string
	TrackingID string
	Status     Status
	Address    Address
	// Cost in minor units of Currency.
	Cost       int64
	CreateTime time.Time
	UpdateTime time.Time
}

// NewShipment is what booking a parcel decides, given the order's current shipment
// (nil when it has none). An order that already has a booked parcel keeps it, so a
// repeated create is answered with the same parcel; created reports whether s is new.
// It returns ErrCancelled when the order's shipment was cancelled.
func NewShipment(current *Shipment, id, orderID, trackingID string, addr Address, q Quote, now time.Time) (s Shipment, created bool, err error) {
	if current != nil {
		if current.Status == StatusCancelled {
			return Shipment{}, false, fmt.Errorf("order %s: %w", orderID, ErrCancelled)
		}
		return *current, false, nil
	}
	return Shipment{
		ID: id, OrderID: orderID, TrackingID: trackingID, Status: StatusCreated,
		Address: addr, Cost: q.Cost, CreateTime: now, UpdateTime: now,
	}, true, nil
}

// Cancel is what cancelling an order's parcel decides, given its current shipment (nil
// when it has none): the shipment to store, cancelled. With nothing booked it returns
// a tombstone. Cancelling twice changes nothing; changed reports whether to store s.
func Cancel(current *Shipment, orderID, tombstoneID string, now time.Time) (s Shipment, changed bool) {
	if current == nil {
		return Shipment{ID: tombstoneID, OrderID: orderID, Status: StatusCancelled, CreateTime: now, UpdateTime: now}, true
	}
	if current.Status == StatusCancelled {
		return *current, false
	}
	s = *current
	s.Status = StatusCancelled
	s.UpdateTime = now
	return s, true
}
