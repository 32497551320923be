package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	codepb "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/eventshop/eventshop/gateway/openapi"
	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// Scopes and roles the API requires.
const (
	ScopeCart        = auth.ScopeCart
	ScopeOrdersRead  = auth.ScopeOrdersRead
	ScopeOrdersWrite = auth.ScopeOrdersWrite
	RoleAdmin        = auth.RoleAdmin
)

// access is what a route requires and which upstream serves it.
type access struct {
	upstream string
	// authRequired rejects anonymous calls with 401; otherwise a token is optional
	// but still verified when sent.
	authRequired bool
	scope        string
	role         string
}

// routeAccess classifies an API request. ok is false for a path no rule covers.
// Every route a proto annotation declares must be listed here, or it answers 404:
// a new route is closed until someone decides who may call it.
func routeAccess(method, path string) (access, bool) {
	rest, found := strings.CutPrefix(path, "/api/v1/")
	if !found {
		return access{}, false
	}
	first, _, _ := strings.Cut(rest, "/")
	switch {
	case first == "products" || strings.HasPrefix(first, "products:") || first == "categories" || rest == "search/products":
		return access{upstream: upCatalog}, true
	case first == "cart":
		return access{upstream: upCart, authRequired: true, scope: ScopeCart}, true
	case first == "orders":
		if method == http.MethodGet || method == http.MethodHead {
			return access{upstream: upOrder, authRequired: true, scope: ScopeOrdersRead}, true
		}
		return access{upstream: upOrder, authRequired: true, scope: ScopeOrdersWrite}, true
	case first == "stock":
		return access{upstream: upInventory}, true
	case rest == "shipping/quote":
		return access{upstream: upShipping}, true
	case rest == "best-sellers":
		return access{upstream: upOrder}, true
	case rest == "admin/sales":
		return access{upstream: upOrder, authRequired: true, role: RoleAdmin}, true
	case first == "admin":
		return access{upstream: upInventory, authRequired: true, role: RoleAdmin}, true
	}
	return access{}, false
}

// apiHandler serves /api/v1/: the OpenAPI document, then access control in front of
// the grpc-gateway mux.
func (g *Gateway) apiHandler() (http.Handler, error) {
	mux := runtime.NewServeMux(
		// Routing headers reach the services as metadata so the mesh can route every
		// hop of a tester's request (resilience.PropagatedHeaders carries them on).
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			for _, h := range resilience.PropagatedHeaders {
				if strings.EqualFold(key, h) {
					return h, true
				}
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithErrorHandler(g.grpcErrorHandler),
		runtime.WithRoutingErrorHandler(func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
			writeError(w, code, status.New(httpToCode(code), http.StatusText(code)))
		}),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	ctx := context.Background()
	regs := []struct {
		name     string
		register func(context.Context, *runtime.ServeMux) error
	}{
		{upCatalog, func(ctx context.Context, m *runtime.ServeMux) error {
			return catalogv1.RegisterCatalogServiceHandler(ctx, m, g.ups.by[upCatalog].conn)
		}},
		{upCart, func(ctx context.Context, m *runtime.ServeMux) error {
			return cartv1.RegisterCartServiceHandler(ctx, m, g.ups.by[upCart].conn)
		}},
		{upOrder, func(ctx context.Context, m *runtime.ServeMux) error {
			return orderv1.RegisterOrderServiceHandler(ctx, m, g.ups.by[upOrder].conn)
		}},
		{upInventory, func(ctx context.Context, m *runtime.ServeMux) error {
			return inventoryv1.RegisterInventoryServiceHandler(ctx, m, g.ups.by[upInventory].conn)
		}},
		{upShipping, func(ctx context.Context, m *runtime.ServeMux) error {
			return shippingv1.RegisterShippingServiceHandler(ctx, m, g.ups.by[upShipping].conn)
		}},
	}
	for _, reg := range regs {
		if g.ups.by[reg.name].conn == nil {
			continue
		}
		if err := reg.register(ctx, mux); err != nil {
			return nil, err
		}
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/openapi.json" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writeError(w, http.StatusMethodNotAllowed, status.New(codes.Unimplemented, "method not allowed"))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(openapi.Document)
			return
		}
		acc, ok := routeAccess(r.Method, r.URL.Path)
		if !ok {
			writeError(w, http.StatusNotFound, status.New(codes.NotFound, "no such API route"))
			return
		}
		claims, err := g.bearerClaims(r)
		if errors.Is(err, auth.ErrIssuerUnavailable) {
			// Not the caller's fault: the keys to check the token cannot be fetched.
			writeError(w, http.StatusServiceUnavailable, status.New(codes.Unavailable, "token issuer unavailable"))
			return
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, status.New(codes.Unauthenticated, "invalid bearer token"))
			return
		}
		if claims == nil && acc.authRequired {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			writeError(w, http.StatusUnauthorized, status.New(codes.Unauthenticated, "a bearer token is required"))
			return
		}
		if acc.scope != "" && !claims.HasScope(acc.scope) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+acc.scope+`"`)
			writeError(w, http.StatusForbidden, status.Newf(codes.PermissionDenied, "missing scope %q", acc.scope))
			return
		}
		if acc.role != "" && !claims.HasRole(acc.role) {
			writeError(w, http.StatusForbidden, status.Newf(codes.PermissionDenied, "missing role %q", acc.role))
			return
		}
		if !g.limits.allowUser(w, claims) {
			return
		}
		if g.ups.by[acc.upstream].conn == nil {
			writeError(w, http.StatusServiceUnavailable, status.Convert(errNotDeployed(acc.upstream)))
			return
		}
		if claims != nil {
			r = r.WithContext(auth.ContextWithClaims(r.Context(), claims))
		}
		if id, ok := orderEventsPath(r); ok {
			// Streaming has no grpc-gateway mapping: the same server-sent events as
			// the order page, for callers with a bearer token instead of a session.
			// A watch refused before its first event answers the JSON error of any
			// other call, which API clients handle; none opens an empty stream.
			ctx := metadata.AppendToOutgoingContext(r.Context(), "authorization", r.Header.Get("Authorization"))
			g.streamOrderEvents(ctx, w, claims.Subject, id, func(w http.ResponseWriter, err error) bool {
				g.grpcErrorHandler(r.Context(), nil, nil, w, r, err)
				return true
			})
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// orderEventsPath returns the order id of GET /api/v1/orders/{id}/events.
func orderEventsPath(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/orders/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/events")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// errNoBearer is returned for an Authorization header that is not a bearer token.
var errNoBearer = errors.New("authorization is not a bearer token")

// bearerClaims verifies the request's bearer token. It returns nil claims and a nil
// error when there is no Authorization header, and an error for a malformed header
// or a token the verifier rejects.
func (g *Gateway) bearerClaims(r *http.Request) (*auth.Claims, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return nil, nil
	}
	if len(h) > 1 {
		return nil, errNoBearer
	}
	scheme, raw, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(raw) == "" {
		return nil, errNoBearer
	}
	return g.verifier.Verify(r.Context(), strings.TrimSpace(raw))
}

// errorBody is the JSON error every API failure answers with.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	// Code is the HTTP status, Status the gRPC code name (Google API style).
	Code    int          `json:"code"`
	Status  string       `json:"status"`
	Message string       `json:"message"`
	Fields  []fieldError `json:"fields,omitempty"`
}

// fieldError names one invalid request field, from errdetails.BadRequest.
type fieldError struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

func writeError(w http.ResponseWriter, httpCode int, st *status.Status) {
	name, ok := codepb.Code_name[int32(st.Code())]
	if !ok {
		name = codepb.Code_UNKNOWN.String()
	}
	body := errorBody{Error: errorDetail{Code: httpCode, Status: name, Message: st.Message()}}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				body.Error.Fields = append(body.Error.Fields, fieldError{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	if st.Code() == codes.Unavailable && httpCode == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(httpCode)
	json.NewEncoder(w).Encode(body)
}

// grpcErrorHandler maps a gRPC error (from an upstream or from decoding the request)
// to its HTTP status and the JSON error body; a body over the cap becomes 413.
func (g *Gateway) grpcErrorHandler(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if bodyTooLarge(r) {
		writeError(w, http.StatusRequestEntityTooLarge, status.Newf(codes.InvalidArgument, "request body exceeds %d bytes", g.cfg.MaxBodyBytes))
		return
	}
	st := status.Convert(err)
	code := runtime.HTTPStatusFromCode(st.Code())
	if st.Code() == codes.Internal || st.Code() == codes.Unknown {
		g.logger.ErrorContext(ctx, "upstream internal error", "path", r.URL.Path, "error", st.Message())
		st = status.New(st.Code(), "internal error")
	}
	writeError(w, code, st)
}

// httpToCode is the gRPC code closest to an HTTP status the router produced itself.
func httpToCode(code int) codes.Code {
	switch code {
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusBadRequest:
		return codes.InvalidArgument
	}
	return codes.Unknown
}

// retryAfter formats a delay as whole seconds, at least 1.
func retryAfter(secs float64) string {
	n := int(secs + 0.999)
	if n < 1 {
		n = 1
	}
	return strconv.Itoa(n)
}
