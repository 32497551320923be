package grpctransport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/projection"
)

// Bounds of WatchOrder, unless WithWatchLimits sets others.
const (
	// DefaultWatchMaxDuration ends a watch that has not seen its order finish, so
	// a forgotten client cannot hold a stream (and a per-user slot) forever; the
	// client watches again. A saga that runs this long is stuck anyway.
	DefaultWatchMaxDuration = 10 * time.Minute
	// DefaultWatchesPerUser bounds the watches one user has open at once: a person
	// watches an order or two; this leaves room for many tabs and load tests.
	DefaultWatchesPerUser = 256
)

// Changes hands WatchOrder the changes the read model commits;
// *projection.Hub, fed by the projector of the same process, is the one in use.
type Changes interface {
	// Subscribe returns a subscription to the changes of orderID committed from then
	// on, whose channel is closed when the source shuts down.
	Subscribe(orderID string) *projection.Subscription
}

var _ Changes = (*projection.Hub)(nil)

// WatchLimits bounds WatchOrder; zero fields take the defaults.
type WatchLimits struct {
	// MaxDuration is the longest a watch lives (DefaultWatchMaxDuration).
	MaxDuration time.Duration
	// MaxPerUser is how many watches one user may have open (DefaultWatchesPerUser).
	MaxPerUser int
}

// Option configures NewServer.
type Option func(*Server)

// WithChanges enables WatchOrder, fed by c; without it (or with a nil c) WatchOrder
// answers Unavailable, as the read-model queries do without a read model.
func WithChanges(c Changes) Option { return func(s *Server) { s.changes = c } }

// WithWatchLimits sets WatchOrder's bounds.
func WithWatchLimits(l WatchLimits) Option {
	return func(s *Server) {
		if l.MaxDuration > 0 {
			s.watchMax = l.MaxDuration
		}
		if l.MaxPerUser > 0 {
			s.watchPerUser = l.MaxPerUser
		}
	}
}

// Errors of WatchOrder, mapped to codes in toStatus.
var (
	// errWatchExpired is the cause of a watch's context ending at its maximum duration.
	errWatchExpired = errors.New("watch reached its maximum duration")
	// errTooManyWatches refuses a watch to a caller who has the most open already.
	errTooManyWatches = errors.New("too many order watches open")
	// errWatchClosed ends a watch whose notifications stopped: the service is stopping.
	errWatchClosed = errors.New("order notifications closed")
)

// watchers counts the open watches per user.
type watchers struct {
	mu     sync.Mutex
	byUser map[string]int
}

// acquire takes one of user's limit slots; release gives it back. ok is false
// when user has limit open.
func (w *watchers) acquire(user string, limit int) (release func(), ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byUser == nil {
		w.byUser = map[string]int{}
	}
	if w.byUser[user] >= limit {
		return nil, false
	}
	w.byUser[user]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.byUser[user]--; w.byUser[user] <= 0 {
			delete(w.byUser, user)
		}
	}, true
}

// WatchOrder streams the caller's order from the read model: its current state, then
// each newer version the projection commits, and returns after sending a COMPLETED or
// CANCELLED order. It answers as GetOrder does for a missing caller (Unauthenticated)
// and for an order that does not exist or is another user's (NotFound, the same for
// both); an order placed but not yet projected is confirmed from the event store and
// waited for. It ends with Unavailable without a read model or when the service shuts
// down, ResourceExhausted when the caller has too many watches open,
// DeadlineExceeded after the server's maximum duration (the client watches again),
// and the status of the client's own cancellation or deadline.
//
// It never polls: it subscribes to the projector's changes before reading the row,
// so no change committed after that read is missed, and brings the order it read up
// to date with each change the projector hands it (a row inserted after that read
// comes with its change); it reads the row again only when a change cannot be
// replayed (see projection.Hub). A slow client never holds the projector back.
func (s *Server) WatchOrder(req *orderv1.WatchOrderRequest, stream orderv1.OrderService_WatchOrderServer) error {
	ctx := stream.Context()
	user := caller(ctx)
	if user == "" {
		return s.toStatus(ctx, app.ErrUnauthenticated)
	}
	if s.reads == nil || s.changes == nil {
		return s.toStatus(ctx, errNoReadModel)
	}
	release, ok := s.watching.acquire(user, s.watchPerUser)
	if !ok {
		return s.toStatus(ctx, errTooManyWatches)
	}
	defer release()
	ctx, cancel := context.WithTimeoutCause(ctx, s.watchMax, errWatchExpired)
	defer cancel()

	id := req.GetOrderId()
	sub := s.changes.Subscribe(id)
	defer sub.Close()
	o, err := s.readOwn(ctx, user, id)
	if errors.Is(err, app.ErrNotFound) {
		// The projection may lag the write (a client watches right after placing):
		// the event store says whether the caller's order exists, and the row follows.
		err = s.queries.CheckOwner(ctx, user, id)
	}
	if err != nil {
		return s.watchStatus(ctx, err)
	}
	sent := int64(-1)
	show := true
	for {
		if o != nil && show && o.GetVersion() > sent {
			if err := stream.Send(&orderv1.WatchOrderResponse{Order: o}); err != nil {
				return fmt.Errorf("watch order %q: send: %w", id, err)
			}
			sent = o.GetVersion()
			if terminal(o.GetStatus()) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return s.watchStatus(ctx, ctx.Err())
		case _, open := <-sub.C:
			if !open {
				return s.toStatus(ctx, errWatchClosed)
			}
		}
		var reread bool
		o, show, reread = catchUp(o, sub)
		if o != nil && o.GetUserId() != user {
			reread = true // readOwn answers NotFound, as it would have at first
		}
		if !reread {
			continue
		}
		show = true
		o, err = s.readOwn(ctx, user, id)
		if errors.Is(err, app.ErrNotFound) {
			continue // not projected yet
		}
		if err != nil {
			return s.watchStatus(ctx, err)
		}
	}
}

// catchUp applies to o (nil when the row was not there yet) the changes waiting in
// sub. show reports whether one of them changed what the order shows (a saga step
// that only moved its version is not sent on its own); reread, that o cannot be
// brought up to date from them.
func catchUp(o *orderv1.Order, sub *projection.Subscription) (next *orderv1.Order, show, reread bool) {
	changes, reread := sub.Take()
	if reread {
		return o, false, true
	}
	for _, c := range changes {
		if o != nil && c.To != 0 && c.To <= o.GetVersion() {
			continue // committed before the read that gave o
		}
		n, ok := c.Apply(o)
		if !ok {
			return o, false, true
		}
		o, show = n, show || c.Shown
	}
	return o, show, false
}

// readOwn returns user's order id from the read model; app.ErrNotFound (and no
// order) when the read model has no such order or it is another user's, so a
// stranger cannot tell the two apart.
func (s *Server) readOwn(ctx context.Context, user, id string) (*orderv1.Order, error) {
	o, err := s.reads.GetOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if o == nil || o.GetUserId() != user {
		return nil, app.ErrNotFound
	}
	return o, nil
}

// watchStatus is toStatus, except that the watch's own maximum duration is reported
// as such rather than as the caller's deadline.
func (s *Server) watchStatus(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errWatchExpired) {
		err = cause
	}
	return s.toStatus(ctx, err)
}

// terminal reports whether an order in st can change no more.
func terminal(st orderv1.OrderStatus) bool {
	return st == orderv1.OrderStatus_ORDER_STATUS_COMPLETED || st == orderv1.OrderStatus_ORDER_STATUS_CANCELLED
}
