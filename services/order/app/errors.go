package app

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound reports an order that does not exist or that the caller may not
	// see: the two are deliberately the same, so a caller learns nothing about other
	// users' orders.
	ErrNotFound = errors.New("order not found")
	// ErrConcurrency reports an update that kept losing optimistic-concurrency races
	// and gave up after the repository's bounded number of attempts.
	ErrConcurrency = errors.New("order changed concurrently too often")
	// ErrUnavailable reports a dependency (catalog, shipping) that could not answer.
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrUnknownProduct matches every *UnknownProductError.
	ErrUnknownProduct = errors.New("unknown product")
	// ErrVersionOutOfRange reports a version beyond the end of an order's history.
	ErrVersionOutOfRange = errors.New("order version out of range")
	// ErrUnauthenticated reports a command or query without a verified caller.
	ErrUnauthenticated = errors.New("no verified caller")
)

// UnknownProductError names the first requested item whose product the catalog does
// not know. It matches ErrUnknownProduct with errors.Is.
type UnknownProductError struct {
	// Index is the 0-based position of the item in the request.
	Index     int
	ProductID string
}

func (e *UnknownProductError) Error() string {
	return fmt.Sprintf("items[%d]: unknown product %q", e.Index, e.ProductID)
}

// Is makes errors.Is(err, ErrUnknownProduct) hold.
func (e *UnknownProductError) Is(target error) bool { return target == ErrUnknownProduct }

// ErrInvalidPageToken reports a page token the read model did not issue.
var ErrInvalidPageToken = errors.New("invalid page token")
