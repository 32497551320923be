package productfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventshop/eventshop/services/catalog/domain"
)

func TestEmbeddedCatalog(t *testing.T) {
	c, err := EmbeddedCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() < 30 {
		t.Errorf("%d products, want at least 30", c.Len())
	}
	if n := len(c.Categories()); n < 5 {
		t.Errorf("%d categories, want at least 5", n)
	}
	p, err := c.Product("espresso-machine")
	if err != nil {
		t.Fatal(err)
	}
	if p.Price.Currency != "USD" || p.ImageURL != "/static/products/espresso-machine.svg" {
		t.Errorf("espresso-machine = %+v", p)
	}
}

func TestLoadCatalogErrorsNameTheProduct(t *testing.T) {
	good := `{"id":"mug","name":"Mug","categories":["kitchen"],"price_cents":900,"currency":"USD","weight_grams":300}`
	tests := []struct {
		name, json string
		want       []string
		invalid    bool
	}{
		{"unknown field", `[` + good + `,{"id":"cup","name":"Cup","categories":["kitchen"],"price_cent":500,"currency":"USD","weight_grams":200}]`, []string{`product 1 ("cup")`, "price_cent"}, false},
		{"wrong type", `[{"id":"cup","price_cents":"5.00"}]`, []string{`product 0 ("cup")`}, false},
		{"negative price", `[{"id":"cup","name":"Cup","categories":["kitchen"],"price_cents":-1,"currency":"USD","weight_grams":200}]`, []string{`product 0 ("cup")`, "price"}, true},
		{"duplicate", `[` + good + `,` + good + `]`, []string{`product 1 ("mug")`, "twice"}, true},
		{"not an array", `{"id":"mug"}`, []string{"decode products"}, false},
		{"trailing data", `[` + good + `] []`, []string{"after the array"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCatalog(strings.NewReader(tt.json))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.invalid && !errors.Is(err, domain.ErrInvalidProduct) {
				t.Errorf("error %v does not wrap ErrInvalidProduct", err)
			}
		})
	}
}

func TestLoadCatalogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "products.json")
	body := `[{"id":"mug","name":"Mug","categories":["kitchen"],"price_cents":900,"currency":"USD","image_url":"https://cdn.example/mug.png","weight_grams":300}]`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCatalogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Product("mug"); p.ImageURL != "https://cdn.example/mug.png" {
		t.Errorf("image_url = %q", p.ImageURL)
	}
	if _, err := LoadCatalogFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("want an error for a missing file")
	}
}
