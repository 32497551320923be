package main

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixture: gateway -> order over gRPC, order -> payment -> order over two NATS
// hops, an error span, a link, and a projection span whose parent is not in the trace.
const fixture = "testdata/trace.json"

func loadFixture(t *testing.T) Trace {
	t.Helper()
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	trs, err := DecodeTraces(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != 1 {
		t.Fatalf("fixture holds %d traces, want 1", len(trs))
	}
	return trs[0]
}

func TestDecodeTraces(t *testing.T) {
	tr := loadFixture(t)
	if len(tr.Spans) != 8 {
		t.Fatalf("got %d spans, want 8", len(tr.Spans))
	}
	services := map[string]int{}
	for _, s := range tr.Spans {
		services[s.Service]++
	}
	if services["gateway"] != 2 || services["order"] != 4 || services["payment"] != 2 {
		t.Errorf("spans per service = %v", services)
	}
	root, ok := tr.Root()
	if !ok || root.SpanID != "a000000000000001" || root.Kind != "server" || root.Tags["url.path"] != "/api/v1/orders" {
		t.Errorf("root = %+v, %v", root, ok)
	}
	var errs int
	for _, s := range tr.Spans {
		if s.Error {
			errs++
		}
	}
	if errs != 1 {
		t.Errorf("%d error spans, want 1", errs)
	}
	if _, err := DecodeTraces(strings.NewReader(`{"data":[]}`)); !errors.Is(err, ErrNoTrace) {
		t.Errorf("empty answer: err = %v, want ErrNoTrace", err)
	}
}

func TestLayoutOneRowPerSpanParentsFirst(t *testing.T) {
	tr := loadFixture(t)
	rows := Layout(tr)
	if len(rows) != len(tr.Spans) {
		t.Fatalf("%d rows for %d spans", len(rows), len(tr.Spans))
	}
	seen := map[string]bool{}
	hops := 0
	for i, r := range rows {
		if seen[r.SpanID] {
			t.Errorf("span %s drawn twice", r.SpanID)
		}
		seen[r.SpanID] = true
		if r.Parent >= i {
			t.Errorf("row %d (%s) comes before its parent row %d", i, r.Name, r.Parent)
		}
		if r.Parent >= 0 && r.Depth != rows[r.Parent].Depth+1 {
			t.Errorf("row %d (%s) depth %d under a parent of depth %d", i, r.Name, r.Depth, rows[r.Parent].Depth)
		}
		if r.Hop {
			hops++
		}
	}
	if hops != 2 {
		t.Errorf("%d NATS hops, want 2 (command and reply)", hops)
	}
	want := []struct {
		name  string
		depth int
	}{
		{"POST api", 0},
		{"eventshop.order.v1.OrderService/PlaceOrder", 1},
		{"eventshop.order.v1.OrderService/PlaceOrder", 2},
		{"send cmd.payment.authorize", 3},
		{"process cmd.payment.authorize", 4},
		{"send evt.payment.authorized", 5},
		{"process evt.payment.authorized", 6},
		{"project eventshop.order.v1.OrderPlaced", 0}, // its parent is not in the trace
	}
	for i, w := range want {
		if rows[i].Name != w.name || rows[i].Depth != w.depth {
			t.Errorf("row %d = %q at depth %d, want %q at depth %d", i, rows[i].Name, rows[i].Depth, w.name, w.depth)
		}
	}
}

func TestRenderDecodesAtExpectedSize(t *testing.T) {
	tr := loadFixture(t)
	for _, width := range []int{0, 900} {
		var buf bytes.Buffer
		if err := Render(&buf, tr, RenderOptions{Width: width}); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatalf("width %d: the output is not a PNG: %v", width, err)
		}
		wantW := width
		if wantW == 0 {
			wantW = 1400
		}
		if b := img.Bounds(); b.Dx() != wantW || b.Dy() != ImageHeight(len(tr.Spans)) {
			t.Errorf("width %d: image is %dx%d, want %dx%d", width, b.Dx(), b.Dy(), wantW, ImageHeight(len(tr.Spans)))
		}
	}
	if err := Render(&bytes.Buffer{}, Trace{TraceID: "x"}, RenderOptions{}); !errors.Is(err, ErrNoTrace) {
		t.Errorf("empty trace: err = %v, want ErrNoTrace", err)
	}
}

// jaegerStub answers the two query API routes tracepic uses with the fixture.
func jaegerStub(t *testing.T) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "0af7651916cd43dd8448eb211c80319c" {
			http.Error(w, `{"errors":[{"code":404,"msg":"trace not found"}]}`, http.StatusNotFound)
			return
		}
		w.Write(body)
	})
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("service") != "gateway" {
			w.Write([]byte(`{"data":[]}`))
			return
		}
		w.Write(body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestClient(t *testing.T) {
	srv := jaegerStub(t)
	c := Client{BaseURL: srv.URL}
	ctx := context.Background()

	tr, err := c.Trace(ctx, "0af7651916cd43dd8448eb211c80319c")
	if err != nil || len(tr.Spans) != 8 {
		t.Fatalf("Trace: %d spans, %v", len(tr.Spans), err)
	}
	if _, err := c.Trace(ctx, "00000000000000000000000000000001"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing trace: err = %v, want the 404", err)
	}
	post := func(root Span) bool { return root.Tags["http.request.method"] == "POST" }
	get := func(root Span) bool { return root.Tags["http.request.method"] == "GET" }
	if tr, err := c.Latest(ctx, "gateway", post, 20); err != nil || tr.TraceID != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("Latest(gateway, POST) = %s, %v", tr.TraceID, err)
	}
	if _, err := c.Latest(ctx, "gateway", get, 20); !errors.Is(err, ErrNoTrace) {
		t.Errorf("Latest(gateway, GET): err = %v, want ErrNoTrace", err)
	}
	if _, err := c.Latest(ctx, "order", nil, 20); !errors.Is(err, ErrNoTrace) {
		t.Errorf("Latest(order): err = %v, want ErrNoTrace", err)
	}
}

func TestRunWritesPNG(t *testing.T) {
	srv := jaegerStub(t)
	out := filepath.Join(t.TempDir(), "trace.png")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-jaeger", srv.URL, "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v (stderr %s)", err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Width != 1400 || cfg.Height != ImageHeight(8) {
		t.Errorf("%s is %dx%d", out, cfg.Width, cfg.Height)
	}
	if !strings.Contains(stdout.String(), "8 spans") {
		t.Errorf("stdout = %q", stdout.String())
	}
}
