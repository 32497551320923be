package gateway

// The admin page: sales and stock.

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

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
		g.sessions.setFlash(r.Context(), sess, "Stock not changed: available must be a whole number.")
	case g.ups.inventory == nil:
		err = errNotDeployed(upInventory)
	default:
		_, err = g.ups.inventory.SetStock(callCtx(r, sess), &inventoryv1.SetStockRequest{ProductId: id, Available: n})
		if err == nil {
			g.sessions.setFlash(r.Context(), sess, fmt.Sprintf("Stock of %s set to %d.", id, n))
		}
	}
	switch {
	case err == nil:
	case unavailable(err):
		g.sessions.setFlash(r.Context(), sess, "The inventory service is unavailable right now; stock was not changed.")
	case status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.NotFound:
		g.sessions.setFlash(r.Context(), sess, "Stock not changed: "+fieldMessages(err))
	default:
		if g.failed(w, r, sess, err) {
			return
		}
	}
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}
