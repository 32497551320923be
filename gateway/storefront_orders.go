package gateway

// Order pages: the list, one order with its history and time travel, the live
// status stream and cancellation.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

type ordersBody struct {
	Orders    []*orderv1.Order
	NextToken string
	Paged     bool
}

func (g *Gateway) handleOrders(w http.ResponseWriter, r *http.Request) {
	sess := g.requireUser(w, r)
	if sess == nil {
		return
	}
	d := g.newPageData(r, sess, "Your orders")
	body := &ordersBody{Paged: r.URL.Query().Get("page") != ""}
	d.Body = body
	if g.ups.order == nil {
		d.down(upOrder)
	} else {
		resp, err := g.ups.order.ListOrders(callCtx(r, sess), &orderv1.ListOrdersRequest{PageSize: ordersPerPage, PageToken: r.URL.Query().Get("page")})
		if unavailable(err) {
			d.down(upOrder)
		} else if g.failed(w, r, sess, err) {
			return
		}
		body.Orders, body.NextToken = resp.GetOrders(), resp.GetNextPageToken()
	}
	g.render(w, r, http.StatusOK, "orders", d)
}

type orderBody struct {
	ID    string
	Order *orderv1.Order
	// AtVersion is set when the page shows the order as it was at that version.
	AtVersion int64
	History   []*orderv1.HistoryEntry
	// Recording is true while the read model has not seen a just-placed order.
	Recording bool
	Live      bool
	CanCancel bool
}

func (g *Gateway) handleOrder(w http.ResponseWriter, r *http.Request) {
	sess := g.requireUser(w, r)
	if sess == nil {
		return
	}
	id := r.PathValue("id")
	d := g.newPageData(r, sess, "Order")
	body := &orderBody{ID: id}
	d.Body = body
	if g.ups.order == nil {
		d.down(upOrder)
		g.render(w, r, http.StatusOK, "order", d)
		return
	}
	ctx := callCtx(r, sess)
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			g.renderError(w, r, http.StatusBadRequest, "version must be a positive number")
			return
		}
		resp, err := g.ups.order.GetOrderAt(ctx, &orderv1.GetOrderAtRequest{OrderId: id, Version: n})
		if unavailable(err) {
			d.down(upOrder)
		} else if g.failed(w, r, sess, err) {
			return
		}
		body.Order, body.AtVersion = resp.GetOrder(), n
	} else {
		resp, err := g.ups.order.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: id})
		switch {
		case err == nil:
			body.Order = resp.GetOrder()
		case unavailable(err):
			d.down(upOrder)
		case status.Code(err) == codes.NotFound:
			// The read model trails the event store by a moment: a just-placed
			// order may not be there yet. The event stream reloads the page once
			// it is (or keeps saying nothing for someone else's order).
			body.Recording = true
		default:
			if g.failed(w, r, sess, err) {
				return
			}
		}
	}
	if body.Order != nil || body.Recording {
		hist, err := g.ups.order.GetOrderHistory(ctx, &orderv1.GetOrderHistoryRequest{OrderId: id})
		if err == nil {
			body.History = hist.GetEntries()
		} else if unavailable(err) {
			d.down(upOrder)
		}
	}
	if body.Order != nil {
		st := body.Order.GetStatus()
		body.Live = body.AtVersion == 0 && !terminalStatus(st)
		body.CanCancel = body.AtVersion == 0 && !terminalStatus(st) && st != orderv1.OrderStatus_ORDER_STATUS_CANCELLING &&
			st < orderv1.OrderStatus_ORDER_STATUS_SHIPMENT_CREATED
	}
	if body.Recording {
		body.Live = true
	}
	d.Title = "Order " + shortID(id)
	g.render(w, r, http.StatusOK, "order", d)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// orderEvent is one server-sent status update of a live order page.
type orderEvent struct {
	Status       string `json:"status"`
	Label        string `json:"label"`
	CancelReason string `json:"cancelReason,omitempty"`
	Terminal     bool   `json:"terminal"`
	Version      int64  `json:"version"`
}

// handleOrderEvents streams the order's status as server-sent events until it is
// Completed or Cancelled (see streamOrderEvents).
//
// An order the user may not see answers 404 (and 401/403 for a session the
// service refuses) before any event, which stops the browser's EventSource for
// good. Any other failure (the service unavailable or restarting, the stream's
// maximum lifetime) ends the response after the retry hint, and the EventSource
// reconnects and gets the current status again: one watch per connection, no
// retry loop in the gateway.
func (g *Gateway) handleOrderEvents(w http.ResponseWriter, r *http.Request) {
	sess := g.sessionFrom(r)
	if sess == nil {
		http.Error(w, "login required", http.StatusUnauthorized)
		return
	}
	if !g.limits.allowUser(w, sess.claims) {
		return
	}
	g.streamOrderEvents(callCtx(r, sess), w, sess.claims.Subject, r.PathValue("id"), func(w http.ResponseWriter, err error) bool {
		code := orderEventsRefusal(err)
		if code != 0 {
			http.Error(w, http.StatusText(code), code)
		}
		return code != 0
	})
}

// streamOrderEvents relays the order service's WatchOrder stream of order id as
// server-sent events ("status", an orderEvent each), ending after the final one or
// after orderStreamMax. The service pushes each change its read model commits, so
// nothing here polls. ctx carries the caller's token. When the watch fails before
// its first event, refuse may answer instead (it reports whether it did); otherwise
// the stream opens and ends at once. The resilient client guards only the stream's
// establishment, so an open stream holds no bulkhead slot that unary calls need.
// Each stream takes one of user's Config.StreamsPerUser slots while it is open.
func (g *Gateway) streamOrderEvents(ctx context.Context, w http.ResponseWriter, user, id string, refuse func(http.ResponseWriter, error) bool) {
	if g.ups.order == nil {
		http.Error(w, "order service unavailable", http.StatusServiceUnavailable)
		return
	}
	release := g.limits.openStream(w, user)
	if release == nil {
		return
	}
	defer release()
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, orderStreamMax)
	defer cancel()
	go func() {
		select {
		case <-g.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()

	watch, err := g.ups.order.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: id})
	var resp *orderv1.WatchOrderResponse
	if err == nil {
		resp, err = watch.Recv()
	}
	if err != nil && refuse(w, err) {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	for last := int64(-1); err == nil; resp, err = watch.Recv() {
		o := resp.GetOrder()
		if o.GetVersion() <= last {
			continue
		}
		last = o.GetVersion()
		ev := orderEvent{Status: statusKey(o.GetStatus()), Label: statusLabel(o.GetStatus()), CancelReason: o.GetCancelReason(), Terminal: terminalStatus(o.GetStatus()), Version: o.GetVersion()}
		b, _ := json.Marshal(ev)
		fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
		fl.Flush()
		if ev.Terminal {
			return
		}
	}
}

// orderEventsRefusal is the HTTP status that answers an order event stream whose
// watch failed before its first event with err, or 0 when the stream should open
// (and end at once, if err is a passing failure, for the browser to reconnect).
func orderEventsRefusal(err error) int {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument:
		return http.StatusNotFound
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	}
	return 0
}

func (g *Gateway) handleOrderCancel(w http.ResponseWriter, r *http.Request) {
	sess := g.requirePost(w, r)
	if sess == nil {
		return
	}
	id := r.PathValue("id")
	if g.ups.order == nil {
		g.sessions.setFlash(r.Context(), sess, "The order service is unavailable right now; nothing was cancelled.")
		http.Redirect(w, r, "/orders/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	_, err := g.ups.order.CancelOrder(callCtx(r, sess), &orderv1.CancelOrderRequest{OrderId: id, Reason: "cancelled by the customer"})
	switch {
	case err == nil:
		g.sessions.setFlash(r.Context(), sess, "Your order is being cancelled.")
	case unavailable(err):
		g.sessions.setFlash(r.Context(), sess, "The order service is unavailable right now; nothing was cancelled.")
	case status.Code(err) == codes.FailedPrecondition:
		g.sessions.setFlash(r.Context(), sess, "This order can no longer be cancelled.")
	default:
		if g.failed(w, r, sess, err) {
			return
		}
	}
	http.Redirect(w, r, "/orders/"+url.PathEscape(id), http.StatusSeeOther)
}
