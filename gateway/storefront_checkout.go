package gateway

// Checkout: the form, the shipping quote and placing the order.

import (
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
)

type checkoutBody struct {
	Cart           *cartv1.Cart
	Address        *commonv1.Address
	Card           string
	Cards          []struct{ Token, Label string }
	Quote          *shippingv1.GetQuoteResponse
	IdempotencyKey string
	Error          string
}

func (g *Gateway) checkoutBody(r *http.Request, sess *session, d *pageData) (*checkoutBody, error) {
	body := &checkoutBody{
		Cards: TestCards,
		Card:  r.PostFormValue("card"),
		Address: &commonv1.Address{
			Name:        r.PostFormValue("name"),
			Street:      r.PostFormValue("street"),
			City:        r.PostFormValue("city"),
			PostalCode:  r.PostFormValue("postal_code"),
			CountryCode: strings.ToUpper(strings.TrimSpace(r.PostFormValue("country_code"))),
		},
		IdempotencyKey: r.PostFormValue("idempotency_key"),
	}
	if body.Address.Name == "" && sess.claims.Name != "" {
		body.Address.Name = sess.claims.Name
	}
	if body.Address.CountryCode == "" {
		body.Address.CountryCode = "US"
	}
	if body.Card == "" {
		body.Card = TestCards[0].Token
	}
	if body.IdempotencyKey == "" {
		body.IdempotencyKey = randomToken()
	}
	d.Body = body
	if g.ups.cart == nil {
		d.down(upCart)
		return body, nil
	}
	resp, err := g.ups.cart.GetCart(callCtx(r, sess), &cartv1.GetCartRequest{})
	if unavailable(err) {
		d.down(upCart)
		return body, nil
	}
	body.Cart = resp.GetCart()
	return body, err
}

func (g *Gateway) handleCheckout(w http.ResponseWriter, r *http.Request) {
	sess := g.requireUser(w, r)
	if sess == nil {
		return
	}
	d := g.newPageData(r, sess, "Checkout")
	if _, err := g.checkoutBody(r, sess, d); g.failed(w, r, sess, err) {
		return
	}
	if g.ups.order == nil {
		d.down(upOrder)
	}
	g.render(w, r, http.StatusOK, "checkout", d)
}

func cartLines(c *cartv1.Cart) []*commonv1.LineItem {
	var items []*commonv1.LineItem
	for _, it := range c.GetItems() {
		items = append(items, &commonv1.LineItem{ProductId: it.GetProductId(), Quantity: it.GetQuantity()})
	}
	return items
}

// handleCheckoutPost either quotes shipping for the form's address or places the
// order; a placed order empties the cart and leads to the live order page.
func (g *Gateway) handleCheckoutPost(w http.ResponseWriter, r *http.Request) {
	sess := g.requirePost(w, r)
	if sess == nil {
		return
	}
	d := g.newPageData(r, sess, "Checkout")
	body, err := g.checkoutBody(r, sess, d)
	if g.failed(w, r, sess, err) {
		return
	}
	ctx := callCtx(r, sess)
	if len(body.Cart.GetItems()) == 0 {
		g.render(w, r, http.StatusOK, "checkout", d)
		return
	}

	if r.PostFormValue("action") == "quote" {
		if g.ups.shipping == nil {
			d.down(upShipping)
		} else {
			q, err := g.ups.shipping.GetQuote(ctx, &shippingv1.GetQuoteRequest{Items: cartLines(body.Cart), Address: body.Address})
			switch {
			case err == nil:
				body.Quote = q
			case unavailable(err):
				d.down(upShipping)
			case status.Code(err) == codes.InvalidArgument:
				body.Error = "We cannot quote that address: " + fieldMessages(err)
			default:
				if g.failed(w, r, sess, err) {
					return
				}
			}
		}
		g.render(w, r, http.StatusOK, "checkout", d)
		return
	}

	if g.ups.order == nil {
		d.down(upOrder)
		g.render(w, r, http.StatusServiceUnavailable, "checkout", d)
		return
	}
	resp, err := g.ups.order.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		IdempotencyKey:  body.IdempotencyKey,
		Items:           cartLines(body.Cart),
		ShippingAddress: body.Address,
		PaymentToken:    body.Card,
	})
	switch {
	case err == nil:
	case unavailable(err):
		d.down(upOrder)
		g.render(w, r, http.StatusServiceUnavailable, "checkout", d)
		return
	case status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.FailedPrecondition || status.Code(err) == codes.NotFound:
		body.Error = "Your order was not placed: " + fieldMessages(err)
		g.render(w, r, http.StatusBadRequest, "checkout", d)
		return
	default:
		if g.failed(w, r, sess, err) {
			return
		}
	}
	// The order froze the cart's lines; an emptying failure only leaves the cart
	// as it was, so it is reported, not fatal.
	if _, err := g.ups.cart.EmptyCart(ctx, &cartv1.EmptyCartRequest{}); err != nil {
		g.sessions.setFlash(r.Context(), sess, "Your order is placed, but your cart could not be emptied.")
	}
	http.Redirect(w, r, "/orders/"+url.PathEscape(resp.GetOrderId()), http.StatusSeeOther)
}
