package gateway

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// getProductImage asks productImage for /static/products/{file}.
func getProductImage(file string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/static/products/x.svg", nil)
	req.SetPathValue("file", file)
	rec := httptest.NewRecorder()
	productImage(rec, req)
	return rec
}

// TestProductImages checks that every catalog product has an embedded, self-contained
// SVG illustration, and that anything else is 404.
func TestProductImages(t *testing.T) {
	raw, err := os.ReadFile("../services/catalog/productfile/products.json")
	if err != nil {
		t.Fatal(err)
	}
	var products []struct {
		ID       string `json:"id"`
		ImageURL string `json:"image_url"`
	}
	if err := json.Unmarshal(raw, &products); err != nil {
		t.Fatal(err)
	}
	if len(products) == 0 {
		t.Fatal("no products in the catalog")
	}

	for _, p := range products {
		t.Run(p.ID, func(t *testing.T) {
			if want := "/static/products/" + p.ID + ".svg"; p.ImageURL != "" && p.ImageURL != want {
				t.Errorf("image_url %q, want %q", p.ImageURL, want)
			}
			rec := getProductImage(p.ID + ".svg")
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200 (is web/static/products/%s.svg missing?)", rec.Code, p.ID)
			}
			h := rec.Header()
			if ct := h.Get("Content-Type"); ct != "image/svg+xml" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := h.Get("Cache-Control"); cc != "public, max-age=86400" {
				t.Errorf("Cache-Control %q", cc)
			}
			if csp := h.Get("Content-Security-Policy"); csp != "default-src 'none'; style-src 'unsafe-inline'" {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			body := rec.Body.Bytes()
			lower := strings.ToLower(string(body))
			for _, bad := range []string{"<script", `href="http`, "foreignobject"} {
				if strings.Contains(lower, bad) {
					t.Errorf("SVG contains %q", bad)
				}
			}
			checkSVG(t, body)
		})
	}

	for _, file := range []string{
		"no-such-product.svg",
		"..%2fpages.go",
		"../pages.go",
		"..%2fweb%2fstatic%2fproducts%2fespresso-machine.svg",
		"espresso-machine.png",
		"espresso-machine",
		"Espresso-Machine.svg",
		".svg",
		"",
	} {
		if rec := getProductImage(file); rec.Code != http.StatusNotFound {
			t.Errorf("%q: status %d, want 404", file, rec.Code)
		}
	}
}

// checkSVG parses body as XML: well-formed, root <svg> in the SVG namespace,
// viewBox "0 0 320 240".
func checkSVG(t *testing.T, body []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(body))
	root := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || root {
			continue
		}
		root = true
		if se.Name.Local != "svg" || se.Name.Space != "http://www.w3.org/2000/svg" {
			t.Fatalf("root element %s:%s, want svg in the SVG namespace", se.Name.Space, se.Name.Local)
		}
		viewBox := ""
		for _, a := range se.Attr {
			if a.Name.Local == "viewBox" {
				viewBox = a.Value
			}
		}
		if viewBox != "0 0 320 240" {
			t.Errorf("viewBox %q, want \"0 0 320 240\"", viewBox)
		}
	}
	if !root {
		t.Fatal("no root element")
	}
}
