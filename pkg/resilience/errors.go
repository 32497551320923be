package resilience

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrCircuitOpen means the target's breaker is open (or half-open with its probe
	// already in flight) and the call was not attempted. gRPC callers see it as
	// codes.Unavailable; errors.Is(err, ErrCircuitOpen) holds on both sides.
	ErrCircuitOpen = errors.New("circuit open")
	// ErrBulkheadFull means every slot for the target stayed busy for the bulkhead's
	// maximum wait and the call was not attempted. gRPC callers see it as
	// codes.ResourceExhausted; errors.Is(err, ErrBulkheadFull) holds on both sides.
	ErrBulkheadFull = errors.New("bulkhead full")
)

// rejection is a call refused before it reached the target. It is a gRPC status
// (so status.Code and status.FromError see the code) and unwraps to its sentinel.
type rejection struct {
	sentinel error
	st       *status.Status
}

func newRejection(target string, sentinel error, code codes.Code) *rejection {
	return &rejection{sentinel: sentinel, st: status.New(code, target+": "+sentinel.Error())}
}

func (e *rejection) Error() string              { return e.st.Message() }
func (e *rejection) GRPCStatus() *status.Status { return e.st }
func (e *rejection) Unwrap() error              { return e.sentinel }

// Outcomes handed to the breaker once the caller's error has been classified, so that
// gobreaker needs no knowledge of gRPC codes or NATS errors.
var (
	errFailure  = errors.New("target unhealthy")
	errExcluded = errors.New("not the target's fault")
)
