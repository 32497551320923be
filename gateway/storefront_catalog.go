package gateway

// The catalog pages: home (categories and featured products), product lists and
// search, one product.

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

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
