package messaging

import "errors"

var (
	// ErrBadSubject is returned when a subject does not belong to the stream it is
	// published to (commands must start with "cmd.", events with "evt.").
	ErrBadSubject = errors.New("messaging: bad subject")
	// ErrUnknownType is the dead-letter reason for a message whose ce-type no handler
	// of the consumer accepts.
	ErrUnknownType = errors.New("messaging: unknown ce-type")
	// ErrNotCloudEvent is the dead-letter reason for a message without ce-id or with a
	// ce-specversion other than SpecVersion: nothing can deduplicate or trace it.
	ErrNotCloudEvent = errors.New("messaging: not a CloudEvents 1.0 message")
	// ErrMaxDeliver is the dead-letter reason for a message that was delivered
	// MaxDeliver times without a handler result, e.g. because it crashed the process.
	ErrMaxDeliver = errors.New("messaging: delivered too often without a result")
	// ErrHandlerPanic wraps a handler panic; it is treated like any handler error.
	ErrHandlerPanic = errors.New("messaging: handler panicked")
)

// permanentError marks a handler error that a retry cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the consumer dead-letters the message at once instead of
// redelivering it. It returns nil when err is nil; errors.Is/As still see err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
