package gateway

// The cart page and its changes.

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
)

type cartBody struct {
	Cart *cartv1.Cart
}

func (g *Gateway) handleCart(w http.ResponseWriter, r *http.Request) {
	sess := g.requireUser(w, r)
	if sess == nil {
		return
	}
	d := g.newPageData(r, sess, "Your cart")
	body := &cartBody{}
	d.Body = body
	if g.ups.cart == nil {
		d.down(upCart)
	} else {
		resp, err := g.ups.cart.GetCart(callCtx(r, sess), &cartv1.GetCartRequest{})
		if unavailable(err) {
			d.down(upCart)
		} else if g.failed(w, r, sess, err) {
			return
		}
		body.Cart = resp.GetCart()
	}
	g.render(w, r, http.StatusOK, "cart", d)
}

// cartChange runs one cart mutation from a form and goes back to the cart (or to
// where the form says), with a message when the change was refused.
func (g *Gateway) cartChange(w http.ResponseWriter, r *http.Request, change func(context.Context, *session) error, done string) {
	sess := g.requirePost(w, r)
	if sess == nil {
		return
	}
	back := safeNext(r.PostFormValue("back"))
	if r.PostFormValue("back") == "" {
		back = "/cart"
	}
	var err error
	if g.ups.cart == nil {
		err = errNotDeployed(upCart)
	} else {
		err = change(callCtx(r, sess), sess)
	}
	switch {
	case err == nil:
		g.sessions.setFlash(r.Context(), sess, done)
	case unavailable(err):
		g.sessions.setFlash(r.Context(), sess, "The cart service is unavailable right now; your cart was not changed.")
	case status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.NotFound || status.Code(err) == codes.FailedPrecondition:
		g.sessions.setFlash(r.Context(), sess, "Your cart was not changed: "+fieldMessages(err))
	default:
		if g.failed(w, r, sess, err) {
			return
		}
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func formQuantity(r *http.Request) int32 {
	n, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("quantity")), 10, 32)
	if err != nil {
		// Zero fails the service's validation with a message naming the field.
		return 0
	}
	return int32(n)
}

func (g *Gateway) handleCartAdd(w http.ResponseWriter, r *http.Request) {
	g.cartChange(w, r, func(ctx context.Context, _ *session) error {
		_, err := g.ups.cart.AddItem(ctx, &cartv1.AddItemRequest{ProductId: r.PostFormValue("product_id"), Quantity: formQuantity(r)})
		return err
	}, "Added to your cart.")
}

func (g *Gateway) handleCartUpdate(w http.ResponseWriter, r *http.Request) {
	g.cartChange(w, r, func(ctx context.Context, _ *session) error {
		_, err := g.ups.cart.UpdateItemQuantity(ctx, &cartv1.UpdateItemQuantityRequest{ProductId: r.PathValue("id"), Quantity: formQuantity(r)})
		return err
	}, "Quantity updated.")
}

func (g *Gateway) handleCartRemove(w http.ResponseWriter, r *http.Request) {
	g.cartChange(w, r, func(ctx context.Context, _ *session) error {
		_, err := g.ups.cart.RemoveItem(ctx, &cartv1.RemoveItemRequest{ProductId: r.PathValue("id")})
		return err
	}, "Removed from your cart.")
}
