package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// Operation names in the report.
const (
	opListProducts = "ListProducts"
	opSearch       = "SearchProducts"
	opAddItem      = "AddItem"
	opPlaceOrder   = "PlaceOrder"
	opWatchOrder   = "WatchOrder"
	opToFinal      = "place->final"
)

// shopAPI is what a simulated shopper (or the admin) does, through the gateway's
// JSON API (-mode http) or straight to the services over gRPC (-mode grpc), so the
// scenarios run unchanged in either mode. Every call records its latency, or its
// error by code, in the run's stats.
type shopAPI interface {
	listProducts(ctx context.Context) ([]*catalogv1.Product, error)
	search(ctx context.Context, q string) error
	addItem(ctx context.Context, productID string) error
	clearCart(ctx context.Context)
	placeOrder(ctx context.Context, key, productID, cardToken string) (string, error)
	// watchOrder follows order id on a stream the shop pushes (never by polling)
	// and returns the last status it was sent: a final one when the stream ended
	// as it should, any other with an error when the stream broke.
	watchOrder(ctx context.Context, id string) (orderv1.OrderStatus, error)
	setStock(ctx context.Context, productID string, available int64) error
}

var _ shopAPI = (*shopClient)(nil)

// shopClient is a storefront user of the gateway's JSON API with a bearer token.
type shopClient struct {
	base  string
	cred  *credential
	http  *http.Client
	stats *stats
}

// statusError is a non-2xx answer of the gateway.
type statusError struct {
	op   string
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %.200s", e.op, e.code, e.body)
}

// call sends in (nil for none) and decodes the answer into out, recording latency
// and errors under op.
func (c *shopClient) call(ctx context.Context, op, method, path string, in, out proto.Message) error {
	var body []byte
	if in != nil {
		b, err := protojson.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		body = b
	}
	token := c.cred.current()
	err := c.send(ctx, op, method, path, body, token, out)
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusUnauthorized {
		if fresh, ok := c.cred.renew(ctx, token); ok {
			err = c.send(ctx, op, method, path, body, fresh, out)
		}
	}
	return err
}

func (c *shopClient) send(ctx context.Context, op, method, path string, body []byte, token string, out proto.Message) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.stats.fail(op, "transport")
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.stats.fail(op, "transport")
		return fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		c.stats.fail(op, "HTTP "+strconv.Itoa(resp.StatusCode))
		return &statusError{op: op, code: resp.StatusCode, body: string(b)}
	}
	c.stats.observe(op, time.Since(start))
	if out != nil {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, out); err != nil {
			c.stats.fail(op, "decode")
			return fmt.Errorf("%s: decode: %w", op, err)
		}
	}
	return nil
}

func (c *shopClient) listProducts(ctx context.Context) ([]*catalogv1.Product, error) {
	var out catalogv1.ListProductsResponse
	err := c.call(ctx, opListProducts, http.MethodGet, "/api/v1/products?pageSize=20", nil, &out)
	return out.GetProducts(), err
}

func (c *shopClient) search(ctx context.Context, q string) error {
	return c.call(ctx, opSearch, http.MethodGet, "/api/v1/search/products?query="+url.QueryEscape(q), nil, &catalogv1.SearchProductsResponse{})
}

func (c *shopClient) addItem(ctx context.Context, productID string) error {
	return c.call(ctx, opAddItem, http.MethodPost, "/api/v1/cart/items",
		&cartv1.AddItemRequest{ProductId: productID, Quantity: 1}, &cartv1.AddItemResponse{})
}

func (c *shopClient) clearCart(ctx context.Context) {
	_ = c.call(ctx, "ClearCart", http.MethodDelete, "/api/v1/cart", nil, nil)
}

func (c *shopClient) placeOrder(ctx context.Context, key, productID, cardToken string) (string, error) {
	var out orderv1.PlaceOrderResponse
	err := c.call(ctx, opPlaceOrder, http.MethodPost, "/api/v1/orders", placeOrderRequest(key, productID, cardToken), &out)
	return out.GetOrder().GetId(), err
}

// placeOrderRequest is one unit of productID shipped to the load tester.
func placeOrderRequest(key, productID, cardToken string) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{
		IdempotencyKey: key,
		Items:          []*commonv1.LineItem{{ProductId: productID, Quantity: 1}},
		ShippingAddress: &commonv1.Address{
			Name: "Load Tester", Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US",
		},
		PaymentToken: cardToken,
	}
}

// watchOrder reads the gateway's server-sent events of the order
// (GET /api/v1/orders/{id}/events, the order page's stream for bearer tokens). It
// records the time from request to final status under opWatchOrder.
func (c *shopClient) watchOrder(ctx context.Context, id string) (orderv1.OrderStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/orders/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", opWatchOrder, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cred.current())
	start := time.Now()
	// The shared client's timeout bounds a whole exchange, too short for a stream
	// that lasts until the saga ends; ctx bounds this one.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.stats.fail(opWatchOrder, "transport")
		}
		return 0, fmt.Errorf("%s: %w", opWatchOrder, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.stats.fail(opWatchOrder, "HTTP "+strconv.Itoa(resp.StatusCode))
		return 0, &statusError{op: opWatchOrder, code: resp.StatusCode, body: string(b)}
	}
	last := orderv1.OrderStatus_ORDER_STATUS_UNSPECIFIED
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Status   string `json:"status"`
			Terminal bool   `json:"terminal"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			c.stats.fail(opWatchOrder, "decode")
			return last, fmt.Errorf("%s: decode %q: %w", opWatchOrder, data, err)
		}
		last = eventStatus(ev.Status)
		if ev.Terminal {
			c.stats.observe(opWatchOrder, time.Since(start))
			return last, nil
		}
	}
	if ctx.Err() == nil {
		c.stats.fail(opWatchOrder, "ended early")
	}
	return last, fmt.Errorf("%s: the event stream ended before the order was final: %w", opWatchOrder, cmp.Or(sc.Err(), io.ErrUnexpectedEOF))
}

// eventStatus is the order status of an event stream's status key; only the final
// ones matter here.
func eventStatus(key string) orderv1.OrderStatus {
	switch key {
	case "completed":
		return orderv1.OrderStatus_ORDER_STATUS_COMPLETED
	case "cancelled":
		return orderv1.OrderStatus_ORDER_STATUS_CANCELLED
	}
	return orderv1.OrderStatus_ORDER_STATUS_UNSPECIFIED
}

func (c *shopClient) setStock(ctx context.Context, productID string, available int64) error {
	return c.call(ctx, "SetStock", http.MethodPut, "/api/v1/admin/stock/"+url.PathEscape(productID),
		&inventoryv1.SetStockRequest{ProductId: productID, Available: available}, &inventoryv1.SetStockResponse{})
}

// retryable reports whether a failed call may succeed if sent again: the gateway or
// a service was unavailable, overloaded or timed out, or the connection broke. The
// gRPC codes retried are the ones the gateway answers with the HTTP codes retried.
func retryable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		switch se.code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInternalServerError:
			return true
		}
		return false
	}
	if st, ok := status.FromError(err); ok && err != nil {
		switch st.Code() {
		case codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown:
			return true
		}
		return false
	}
	return err != nil
}
