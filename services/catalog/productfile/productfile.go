// Package productfile loads the product catalog from JSON: the file embedded in the
// binary, or one named at start-up. Every product is validated before the service
// starts, so a bad catalog fails the deployment, not a customer's request.
package productfile

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/eventshop/eventshop/services/catalog/domain"
)

//go:embed products.json
var embeddedProducts []byte

// productJSON is the file format of one product. Unknown fields are rejected, so a
// typo ("price_cent") fails loudly instead of zeroing a price.
type productJSON struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Categories  []string          `json:"categories"`
	PriceCents  int64             `json:"price_cents"`
	Currency    string            `json:"currency"`
	ImageURL    string            `json:"image_url"`
	Attributes  map[string]string `json:"attributes"`
	WeightGrams int32             `json:"weight_grams"`
}

// EmbeddedCatalog returns the catalog built into the binary. It returns an error
// only if the embedded file is invalid, which its tests rule out.
func EmbeddedCatalog() (*domain.Catalog, error) {
	c, err := LoadCatalog(bytes.NewReader(embeddedProducts))
	if err != nil {
		return nil, fmt.Errorf("embedded products.json: %w", err)
	}
	return c, nil
}

// LoadCatalogFile reads a catalog from the JSON file at path. It returns the file's
// open error, or LoadCatalog's error prefixed with path.
func LoadCatalogFile(path string) (*domain.Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("products file: %w", err)
	}
	defer f.Close()
	c, err := LoadCatalog(f)
	if err != nil {
		return nil, fmt.Errorf("products file %s: %w", path, err)
	}
	return c, nil
}

// LoadCatalog decodes a JSON array of products from r and validates them. A product
// without image_url gets /static/products/<id>.svg. It returns an error naming the
// first offending product (by index and id) for an unknown field, a type mismatch or
// a broken catalog rule (wrapping domain.ErrInvalidProduct), and an error for input
// that is not one JSON array.
func LoadCatalog(r io.Reader) (*domain.Catalog, error) {
	dec := json.NewDecoder(r)
	var raws []json.RawMessage
	if err := dec.Decode(&raws); err != nil {
		return nil, fmt.Errorf("decode products: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode products: unexpected data after the array")
	}
	products := make([]domain.Product, 0, len(raws))
	for i, raw := range raws {
		var pj productJSON
		pdec := json.NewDecoder(bytes.NewReader(raw))
		pdec.DisallowUnknownFields()
		if err := pdec.Decode(&pj); err != nil {
			return nil, fmt.Errorf("product %d (%q): %w", i, idOf(raw), err)
		}
		products = append(products, pj.toDomain())
	}
	return domain.NewCatalog(products)
}

func (pj productJSON) toDomain() domain.Product {
	img := pj.ImageURL
	if img == "" {
		img = "/static/products/" + pj.ID + ".svg"
	}
	return domain.Product{
		ID:          pj.ID,
		Name:        pj.Name,
		Description: pj.Description,
		Categories:  pj.Categories,
		Price:       domain.Money{Units: pj.PriceCents, Currency: pj.Currency},
		ImageURL:    img,
		Attributes:  pj.Attributes,
		WeightGrams: pj.WeightGrams,
	}
}

// idOf digs the id out of a product that failed to decode, for the error message.
func idOf(raw json.RawMessage) string {
	var v struct {
		ID any `json:"id"`
	}
	_ = json.Unmarshal(raw, &v)
	if v.ID == nil {
		return ""
	}
	return fmt.Sprint(v.ID)
}
