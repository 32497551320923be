package gateway

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"regexp"
	"strings"

	"golang.org/x/text/currency"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/auth"
)

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static
var staticFS embed.FS

// pages holds one parsed template set per page, each with the shared layout.
type pages struct {
	byName map[string]*template.Template
}

var pageFuncs = template.FuncMap{
	"money":       formatMoney,
	"eventLabel":  eventLabel,
	"statusLabel": statusLabel,
	"statusKey":   statusKey,
	"terminal":    terminalStatus,
	"when":        formatTime,
	"add":         func(a, b int) int { return a + b },
	"stepRank":    stepRank,
	"shortIDs":    shortIDs,
}

// idPattern finds the UUIDs of orders, payments, reservations and shipments in an
// event's summary.
var idPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// shortIDs escapes s and shows each id in it by its last group of twelve digits (ids
// derived from one order share their leading, time-ordered digits), with the whole
// id in its title and a button that copies it (copy.js).
func shortIDs(s string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range idPattern.FindAllStringIndex(s, -1) {
		b.WriteString(template.HTMLEscapeString(s[last:m[0]]))
		id := s[m[0]:m[1]] // hexadecimal digits and dashes only: nothing to escape
		fmt.Fprintf(&b, `<code class="id" title="%s">…%s</code><button type="button" class="copy" data-copy="%s" aria-label="Copy %s">Copy</button>`, id, id[len(id)-12:], id, id)
		last = m[1]
	}
	b.WriteString(template.HTMLEscapeString(s[last:]))
	return template.HTML(b.String())
}

func newPages() (*pages, error) {
	names, err := fs.Glob(templateFS, "web/templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimPrefix(n, "web/templates/")
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(pageFuncs).ParseFS(templateFS, "web/templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", base, err)
		}
		p.byName[strings.TrimSuffix(base, ".html")] = t
	}
	return p, nil
}

// pageData is what every page template receives; Body is the page's own data.
type pageData struct {
	Title        string
	User         *auth.Claims
	IsAdmin      bool
	CSRF         string
	LoginEnabled bool
	Path         string
	// Query is the search the shopper ran on /products, kept in the search box.
	Query string
	Flash string
	// Unavailable names the services this page could not ask; the page renders
	// what it has and says which part is missing.
	Unavailable []string
	Body        any
}

func (d *pageData) down(service string) {
	for _, s := range d.Unavailable {
		if s == service {
			return
		}
	}
	d.Unavailable = append(d.Unavailable, service)
}

func (g *Gateway) newPageData(r *http.Request, sess *session, title string) *pageData {
	d := &pageData{Title: title, LoginEnabled: g.login != nil, Path: r.URL.RequestURI()}
	if r.URL.Path == "/products" {
		d.Query = r.URL.Query().Get("q")
	}
	if sess != nil {
		d.User = sess.claims
		d.IsAdmin = sess.claims.HasRole(RoleAdmin)
		d.CSRF = sess.rec.CSRF
		d.Flash = g.sessions.popFlash(r.Context(), sess)
	}
	return d
}

func (g *Gateway) render(w http.ResponseWriter, r *http.Request, code int, page string, d *pageData) {
	t, ok := g.pages.byName[page]
	if !ok {
		panic("gateway: no template " + page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		g.logger.ErrorContext(r.Context(), "render page", "page", page, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// renderError shows a page with only a message.
func (g *Gateway) renderError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	d := g.newPageData(r, g.sessionFrom(r), http.StatusText(code))
	d.Body = msg
	g.render(w, r, code, "error", d)
}

// moneyPrinter groups digits the way the storefront's shoppers read them.
var moneyPrinter = message.NewPrinter(language.AmericanEnglish)

// formatMoney writes an amount as a shopper reads it: the currency's symbol, digits
// grouped by thousands, and the currency's own number of decimals from
// golang.org/x/text (two for USD, none for JPY): "$1,798.00", "-€12.50", "¥1,200".
// A currency without a symbol, or a code x/text does not know, follows the number.
func formatMoney(m *commonv1.Money) string {
	if m == nil {
		return "—"
	}
	units := m.GetMinorUnits()
	sign := ""
	if units < 0 {
		sign, units = "-", -units
	}
	unit, err := currency.ParseISO(m.GetCurrencyCode())
	if err != nil {
		return sign + moneyPrinter.Sprintf("%d.%02d", units/100, units%100) + " " + m.GetCurrencyCode()
	}
	scale, _ := currency.Standard.Rounding(unit)
	div := int64(1)
	for range scale {
		div *= 10
	}
	amount := moneyPrinter.Sprintf("%d", units/div)
	if scale > 0 {
		amount += fmt.Sprintf(".%0*d", scale, units%div)
	}
	sym := moneyPrinter.Sprint(currency.NarrowSymbol(unit))
	if sym == unit.String() {
		// No symbol of its own: the code follows the number.
		return sign + amount + " " + sym
	}
	return sign + sym + amount
}

// eventLabel is the shopper's words for an event type: the message name without its
// package, split into words, without the "Order" that starts most order events:
// "eventshop.order.v1.OrderPaymentAuthorized" is "Payment authorized",
// "eventshop.saga.v1.StepSucceeded" is "Step succeeded".
func eventLabel(typ string) string {
	name := typ[strings.LastIndex(typ, ".")+1:]
	var words []string
	start := 0
	for i := 1; i <= len(name); i++ {
		if i == len(name) || (name[i] >= 'A' && name[i] <= 'Z') {
			words = append(words, name[start:i])
			start = i
		}
	}
	if len(words) > 2 && words[0] == "Order" {
		words = words[1:]
	}
	if len(words) == 0 {
		return typ
	}
	for i := 1; i < len(words); i++ {
		words[i] = strings.ToLower(words[i])
	}
	return strings.Join(words, " ")
}

// statusLabel is the shopper's word for an order status.
func statusLabel(s orderv1.OrderStatus) string {
	switch s {
	case orderv1.OrderStatus_ORDER_STATUS_PENDING:
		return "Pending"
	case orderv1.OrderStatus_ORDER_STATUS_PAYMENT_AUTHORIZED:
		return "Paid"
	case orderv1.OrderStatus_ORDER_STATUS_INVENTORY_RESERVED:
		return "Reserved"
	case orderv1.OrderStatus_ORDER_STATUS_SHIPMENT_CREATED:
		return "Shipped"
	case orderv1.OrderStatus_ORDER_STATUS_PAYMENT_CAPTURED:
		return "Charged"
	case orderv1.OrderStatus_ORDER_STATUS_COMPLETED:
		return "Completed"
	case orderv1.OrderStatus_ORDER_STATUS_CANCELLING:
		return "Cancelling"
	case orderv1.OrderStatus_ORDER_STATUS_CANCELLED:
		return "Cancelled"
	}
	return "Unknown"
}

// stepRank places a status on the page's five-step progress bar (Pending 1 ...
// Completed 5); a cancelled order has reached none of them.
func stepRank(s orderv1.OrderStatus) int {
	switch s {
	case orderv1.OrderStatus_ORDER_STATUS_PENDING:
		return 1
	case orderv1.OrderStatus_ORDER_STATUS_PAYMENT_AUTHORIZED:
		return 2
	case orderv1.OrderStatus_ORDER_STATUS_INVENTORY_RESERVED:
		return 3
	case orderv1.OrderStatus_ORDER_STATUS_SHIPMENT_CREATED, orderv1.OrderStatus_ORDER_STATUS_PAYMENT_CAPTURED:
		return 4
	case orderv1.OrderStatus_ORDER_STATUS_COMPLETED:
		return 5
	}
	return 0
}

// statusKey is a CSS-friendly status name.
func statusKey(s orderv1.OrderStatus) string { return strings.ToLower(statusLabel(s)) }

func terminalStatus(s orderv1.OrderStatus) bool {
	return s == orderv1.OrderStatus_ORDER_STATUS_COMPLETED || s == orderv1.OrderStatus_ORDER_STATUS_CANCELLED
}

func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format("2006-01-02 15:04:05 UTC")
}

// productImage serves a product's illustration, the embedded
// web/static/products/<id>.svg; a malformed or unknown id is 404. The SVG gets a
// Content-Security-Policy of its own, so that even if one ever carried script or
// external references, a browser opening it directly would run and fetch nothing.
func productImage(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	id, ok := strings.CutSuffix(file, ".svg")
	if !ok || !validProductID(id) {
		http.NotFound(w, r)
		return
	}
	svg, err := staticFS.ReadFile("web/static/products/" + id + ".svg")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Write(svg)
}

func validProductID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

// staticFiles serves the embedded CSS and JS.
func staticFiles() http.Handler {
	sub, err := fs.Sub(staticFS, "web/static")
	if err != nil {
		panic(err)
	}
	fsrv := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // files only, no listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		fsrv.ServeHTTP(w, r)
	}))
}

// salesBar is one bar of the server-rendered sales chart.
type salesBar struct {
	Label   string
	Units   int64
	Revenue string
	Y       int
	Width   int
	TextY   int
}

const (
	chartBarHeight = 22
	chartGap       = 8
	chartWidth     = 420
)

// salesChart scales the bars to the best seller's units.
func salesChart(sales []*orderv1.ProductSales) (bars []salesBar, height int) {
	var top int64
	for _, s := range sales {
		top = max(top, s.GetUnits())
	}
	for i, s := range sales {
		w := 0
		if top > 0 {
			w = int(s.GetUnits() * chartWidth / top)
		}
		y := i * (chartBarHeight + chartGap)
		name := s.GetName()
		if name == "" {
			name = s.GetProductId()
		}
		bars = append(bars, salesBar{Label: name, Units: s.GetUnits(), Revenue: formatMoney(s.GetRevenue()), Y: y, Width: max(w, 2), TextY: y + 16})
	}
	return bars, len(sales) * (chartBarHeight + chartGap)
}
