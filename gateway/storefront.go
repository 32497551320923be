package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
)

// Storefront tuning.
const (
	productsPerPage = 12
	ordersPerPage   = 20
	// orderStreamMax ends an event stream; the page's EventSource reconnects.
	orderStreamMax = 2 * time.Minute
)

// TestCards are the payment tokens the checkout offers (the payment service's
// simulated card network understands them).
var TestCards = []struct{ Token, Label string }{
	{"tok_visa", "Visa (approved)"},
	{"tok_mastercard", "Mastercard (approved)"},
	{"tok_chargeDeclined", "Card declined"},
	{"tok_insufficientFunds", "Insufficient funds"},
}

// routes assembles the whole HTTP surface.
func (g *Gateway) routes(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	limited := func(h http.Handler) http.Handler { return g.limits.perIP(limitBody(g.cfg.MaxBodyBytes, h)) }
	page := func(h http.HandlerFunc) http.Handler { return limited(h) }

	mux.Handle("/api/", limited(corsAPI(splitOrigins(g.cfg.CORSOrigins), api)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", g.handleReady)
	mux.Handle("GET /metrics", g.metrics.handler)
	mux.HandleFunc("GET /static/products/{file}", productImage)
	mux.Handle("GET /static/", staticFiles())
	// Browsers ask for /favicon.ico whatever the page says; the same icon answers.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})

	mux.Handle("GET /auth/login", page(g.handleLogin))
	mux.Handle("GET /auth/callback", page(g.handleCallback))
	mux.Handle("POST /auth/logout", page(g.handleLogout))

	mux.Handle("GET /{$}", page(g.handleHome))
	mux.Handle("GET /products", page(g.handleProducts))
	mux.Handle("GET /products/{id}", page(g.handleProduct))
	mux.Handle("GET /cart", page(g.handleCart))
	mux.Handle("POST /cart/items", page(g.handleCartAdd))
	mux.Handle("POST /cart/items/{id}", page(g.handleCartUpdate))
	mux.Handle("POST /cart/items/{id}/remove", page(g.handleCartRemove))
	mux.Handle("GET /checkout", page(g.handleCheckout))
	mux.Handle("POST /checkout", page(g.handleCheckoutPost))
	mux.Handle("GET /orders", page(g.handleOrders))
	mux.Handle("GET /orders/{id}", page(g.handleOrder))
	mux.Handle("GET /orders/{id}/events", page(g.handleOrderEvents))
	mux.Handle("POST /orders/{id}/cancel", page(g.handleOrderCancel))
	mux.Handle("GET /admin", page(g.handleAdmin))
	mux.Handle("POST /admin/stock", page(g.handleAdminStock))
	mux.Handle("/", page(func(w http.ResponseWriter, r *http.Request) {
		g.renderError(w, r, http.StatusNotFound, "There is no such page.")
	}))
	return g.metrics.middleware(securityHeaders(strings.HasPrefix(g.cfg.PublicURL, "https://"), g.validUTF8(mux)))
}

// handleReady answers 200 only when every deployed upstream reports SERVING.
func (g *Gateway) handleReady(w http.ResponseWriter, r *http.Request) {
	ready, report := g.ups.check(r.Context())
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Ready     bool             `json:"ready"`
		Upstreams []upstreamHealth `json:"upstreams"`
	}{ready, report})
}

// callCtx is the context for a call on behalf of the session's user: the access
// token travels as the authorization metadata the services verify.
func callCtx(r *http.Request, sess *session) context.Context {
	if sess == nil {
		return r.Context()
	}
	return metadata.AppendToOutgoingContext(r.Context(), "authorization", "Bearer "+sess.accessToken())
}

// requireUser returns the session, or redirects to login (after checking the
// per-user rate limit, which may answer 429).
func (g *Gateway) requireUser(w http.ResponseWriter, r *http.Request) *session {
	sess := g.sessionFrom(r)
	if sess == nil {
		next := r.URL.RequestURI()
		if r.Method != http.MethodGet {
			next = "/"
		}
		http.Redirect(w, r, "/auth/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return nil
	}
	if !g.limits.allowUser(w, sess.claims) {
		return nil
	}
	return sess
}

// requirePost checks the session and the CSRF token of a state-changing form.
func (g *Gateway) requirePost(w http.ResponseWriter, r *http.Request) *session {
	sess := g.sessionFrom(r)
	if sess == nil || !validCSRF(sess, r) {
		g.renderError(w, r, http.StatusForbidden, "The form has expired or did not come from this shop. Please reload the page and try again.")
		return nil
	}
	if !g.limits.allowUser(w, sess.claims) {
		return nil
	}
	return sess
}

// failed handles an upstream error that stops a page. It returns true when it wrote
// the response. Unavailable services are not handled here: pages degrade instead.
func (g *Gateway) failed(w http.ResponseWriter, r *http.Request, sess *session, err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unauthenticated:
		if sess != nil {
			g.sessions.delete(sess.id)
		}
		http.Redirect(w, r, "/auth/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	case codes.PermissionDenied:
		g.renderError(w, r, http.StatusForbidden, "You are not allowed to see this.")
	case codes.NotFound:
		g.renderError(w, r, http.StatusNotFound, "We could not find that.")
	case codes.InvalidArgument:
		g.renderError(w, r, http.StatusBadRequest, "That request is not valid: "+fieldMessages(err))
	default:
		if unavailable(err) {
			g.renderError(w, r, http.StatusServiceUnavailable, "A service this page needs is unavailable right now. Please try again shortly.")
			return true
		}
		g.logger.ErrorContext(r.Context(), "page upstream error", "path", r.URL.Path, "error", err)
		g.renderError(w, r, http.StatusInternalServerError, "Something went wrong on our side.")
	}
	return true
}

// fieldMessages lists a validation error's field violations for a person to read.
func fieldMessages(err error) string {
	st := status.Convert(err)
	var parts []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				parts = append(parts, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	if len(parts) == 0 {
		return st.Message()
	}
	return strings.Join(parts, "; ")
}

type homeBody struct {
	Categories []*catalogv1.Category
	Featured   []*catalogv1.Product
}

func (g *Gateway) handleHome(w http.ResponseWriter, r *http.Request) {
	sess := g.sessionFrom(r)
	d := g.newPageData(r, sess, "") // the home page is titled by the shop's name alone
	body := &homeBody{}
	d.Body = body
	if g.ups.catalog == nil {
		d.down(upCatalog)
	} else {
		cats, err := g.ups.catalog.ListCategories(r.Context(), &catalogv1.ListCategoriesRequest{})
		if err != nil {
			if !unavailable(err) && g.failed(w, r, sess, err) {
				return
			}
			d.down(upCatalog)
		}
		body.Categories = cats.GetCategories()
		if err == nil {
			if body.Featured, err = g.featured(r.Context()); err != nil {
				d.down(upCatalog)
			}
		}
	}
	g.render(w, r, http.StatusOK, "home", d)
}

// featuredCount is how many products the home page features.
const featuredCount = 8

// CuratedFeatured is what the home page features when too few products have sold
// yet (a new shop, or the order service down): one or two of each department.
var CuratedFeatured = []string{
	"espresso-machine", "wireless-headphones", "camping-tent", "chef-knife",
	"designing-data-intensive", "standing-desk", "burr-grinder", "turntable",
}

// featured returns the home page's products: the best sellers the order service
// names, best first, topped up from CuratedFeatured. A product the catalog no
// longer has is left out.
func (g *Gateway) featured(ctx context.Context) ([]*catalogv1.Product, error) {
	var ids []string
	if g.ups.order != nil {
		// Without the order service the curated list stands alone.
		if resp, err := g.ups.order.ListBestSellers(ctx, &orderv1.ListBestSellersRequest{Limit: featuredCount}); err == nil {
			ids = resp.GetProductIds()
		}
	}
	for _, id := range CuratedFeatured {
		if len(ids) >= featuredCount {
			break
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	resp, err := g.ups.catalog.GetProducts(ctx, &catalogv1.GetProductsRequest{Ids: ids})
	if status.Code(err) != codes.NotFound {
		return resp.GetProducts(), err
	}
	var out []*catalogv1.Product
	for _, id := range ids {
		p, err := g.ups.catalog.GetProduct(ctx, &catalogv1.GetProductRequest{Id: id})
		switch {
		case status.Code(err) == codes.NotFound:
			continue
		case err != nil:
			return out, err
		}
		out = append(out, p.GetProduct())
	}
	return out, nil
}

type productsBody struct {
	Query, Category string
	Products        []*catalogv1.Product
	Total           int32
	NextToken       string
	Paged           bool
}

func (g *Gateway) handleProducts(w http.ResponseWriter, r *http.Request) {
	sess := g.sessionFrom(r)
	q := r.URL.Query()
	body := &productsBody{Query: strings.TrimSpace(q.Get("q")), Category: q.Get("category"), Paged: q.Get("page") != ""}
	title := "Products"
	if body.Query != "" {
		title = "Search: " + body.Query
	} else if body.Category != "" {
		title = body.Category
	}
	d := g.newPageData(r, sess, title)
	d.Body = body
	if g.ups.catalog == nil {
		d.down(upCatalog)
		g.render(w, r, http.StatusOK, "products", d)
		return
	}
	var err error
	if body.Query != "" {
		var resp *catalogv1.SearchProductsResponse
		resp, err = g.ups.catalog.SearchProducts(r.Context(), &catalogv1.SearchProductsRequest{Query: body.Query, PageSize: productsPerPage, PageToken: q.Get("page")})
		body.Products, body.Total, body.NextToken = resp.GetProducts(), resp.GetTotalSize(), resp.GetNextPageToken()
	} else {
		var resp *catalogv1.ListProductsResponse
		resp, err = g.ups.catalog.ListProducts(r.Context(), &catalogv1.ListProductsRequest{Category: body.Category, PageSize: productsPerPage, PageToken: q.Get("page")})
		body.Products, body.Total, body.NextToken = resp.GetProducts(), resp.GetTotalSize(), resp.GetNextPageToken()
	}
	if unavailable(err) {
		d.down(upCatalog)
	} else if g.failed(w, r, sess, err) {
		return
	}
	g.render(w, r, http.StatusOK, "products", d)
}

type productBody struct {
	Product *catalogv1.Product
	Stock   *inventoryv1.Stock
}

func (g *Gateway) handleProduct(w http.ResponseWriter, r *http.Request) {
	sess := g.sessionFrom(r)
	d := g.newPageData(r, sess, "Product")
	body := &productBody{}
	d.Body = body
	if g.ups.catalog == nil {
		d.down(upCatalog)
		g.render(w, r, http.StatusOK, "product", d)
		return
	}
	resp, err := g.ups.catalog.GetProduct(r.Context(), &catalogv1.GetProductRequest{Id: r.PathValue("id")})
	if unavailable(err) {
		d.down(upCatalog)
		g.render(w, r, http.StatusOK, "product", d)
		return
	}
	if g.failed(w, r, sess, err) {
		return
	}
	body.Product = resp.GetProduct()
	d.Title = body.Product.GetName()
	if g.ups.inventory == nil {
		d.down(upInventory)
	} else {
		st, err := g.ups.inventory.GetStock(callCtx(r, sess), &inventoryv1.GetStockRequest{ProductId: body.Product.GetId()})
		switch {
		case err == nil:
			body.Stock = st.GetStock()
		case unavailable(err):
			d.down(upInventory)
		}
		// Other errors (no stock record, stock not visible anonymously) just hide
		// the stock line.
	}
	g.render(w, r, http.StatusOK, "product", d)
}

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
		g.sessions.setFlash(sess, done)
	case unavailable(err):
		g.sessions.setFlash(sess, "The cart service is unavailable right now; your cart was not changed.")
	case status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.NotFound || status.Code(err) == codes.FailedPrecondition:
		g.sessions.setFlash(sess, "Your cart was not changed: "+fieldMessages(err))
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
		g.sessions.setFlash(sess, "Your order is placed, but your cart could not be emptied.")
	}
	http.Redirect(w, r, "/orders/"+url.PathEscape(resp.GetOrderId()), http.StatusSeeOther)
}

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
		g.sessions.setFlash(sess, "The order service is unavailable right now; nothing was cancelled.")
		http.Redirect(w, r, "/orders/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	_, err := g.ups.order.CancelOrder(callCtx(r, sess), &orderv1.CancelOrderRequest{OrderId: id, Reason: "cancelled by the customer"})
	switch {
	case err == nil:
		g.sessions.setFlash(sess, "Your order is being cancelled.")
	case unavailable(err):
		g.sessions.setFlash(sess, "The order service is unavailable right now; nothing was cancelled.")
	case status.Code(err) == codes.FailedPrecondition:
		g.sessions.setFlash(sess, "This order can no longer be cancelled.")
	default:
		if g.failed(w, r, sess, err) {
			return
		}
	}
	http.Redirect(w, r, "/orders/"+url.PathEscape(id), http.StatusSeeOther)
}

type adminBody struct {
	Stock       []*inventoryv1.Stock
	Sales       []*orderv1.ProductSales
	Bars        []salesBar
	ChartHeight int
	ChartWidth  int
}

func (g *Gateway) requireAdmin(w http.ResponseWriter, r *http.Request, sess *session) bool {
	if !sess.claims.HasRole(RoleAdmin) {
		g.renderError(w, r, http.StatusForbidden, "This page is for shop administrators.")
		return false
	}
	return true
}

func (g *Gateway) handleAdmin(w http.ResponseWriter, r *http.Request) {
	sess := g.requireUser(w, r)
	if sess == nil || !g.requireAdmin(w, r, sess) {
		return
	}
	d := g.newPageData(r, sess, "Admin")
	body := &adminBody{ChartWidth: chartWidth + 260}
	d.Body = body
	ctx := callCtx(r, sess)
	if g.ups.inventory == nil {
		d.down(upInventory)
	} else {
		resp, err := g.ups.inventory.ListStock(ctx, &inventoryv1.ListStockRequest{PageSize: 500})
		if unavailable(err) {
			d.down(upInventory)
		} else if g.failed(w, r, sess, err) {
			return
		}
		body.Stock = resp.GetStock()
		slices.SortFunc(body.Stock, func(a, b *inventoryv1.Stock) int { return strings.Compare(a.GetProductId(), b.GetProductId()) })
	}
	if g.ups.order == nil {
		d.down(upOrder)
	} else {
		resp, err := g.ups.order.ListSalesByProduct(ctx, &orderv1.ListSalesByProductRequest{Limit: 20})
		if unavailable(err) {
			d.down(upOrder)
		} else if g.failed(w, r, sess, err) {
			return
		}
		body.Sales = resp.GetSales()
		body.Bars, body.ChartHeight = salesChart(body.Sales)
	}
	g.render(w, r, http.StatusOK, "admin", d)
}

func (g *Gateway) handleAdminStock(w http.ResponseWriter, r *http.Request) {
	sess := g.requirePost(w, r)
	if sess == nil || !g.requireAdmin(w, r, sess) {
		return
	}
	id := r.PostFormValue("product_id")
	n, perr := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("available")), 10, 64)
	var err error
	switch {
	case perr != nil:
		g.sessions.setFlash(sess, "Stock not changed: available must be a whole number.")
	case g.ups.inventory == nil:
		err = errNotDeployed(upInventory)
	default:
		_, err = g.ups.inventory.SetStock(callCtx(r, sess), &inventoryv1.SetStockRequest{ProductId: id, Available: n})
		if err == nil {
			g.sessions.setFlash(sess, fmt.Sprintf("Stock of %s set to %d.", id, n))
		}
	}
	switch {
	case err == nil:
	case unavailable(err):
		g.sessions.setFlash(sess, "The inventory service is unavailable right now; stock was not changed.")
	case status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.NotFound:
		g.sessions.setFlash(sess, "Stock not changed: "+fieldMessages(err))
	default:
		if g.failed(w, r, sess, err) {
			return
		}
	}
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}
