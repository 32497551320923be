package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func product(id, name, desc string, categories ...string) Product {
	if len(categories) == 0 {
		categories = []string{"misc"}
	}
	return Product{
		ID: id, Name: name, Description: desc, Categories: categories,
		Price: Money{Units: 1000, Currency: "USD"}, WeightGrams: 100,
	}
}

func ids(ps []Product) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func TestNewCatalogRejectsInvalidProducts(t *testing.T) {
	t.Parallel()
	ok := product("mug", "Mug", "A mug.")
	tests := []struct {
		name     string
		products []Product
		want     string
	}{
		{"bad id", []Product{ok, product("Big Mug", "Big mug", "")}, `product 1 ("Big Mug")`},
		{"duplicate id", []Product{ok, ok}, "used twice"},
		{"zero price", []Product{func() Product { p := ok; p.Price.Units = 0; return p }()}, "price 0 is not positive"},
		{"mixed currency", []Product{ok, func() Product { p := product("cup", "Cup", ""); p.Price.Currency = "EUR"; return p }()}, "currency EUR differs"},
		{"no name", []Product{product("x", " ", "")}, "name is empty"},
		{"no weight", []Product{func() Product { p := ok; p.WeightGrams = 0; return p }()}, "weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCatalog(tt.products)
			if !errors.Is(err, ErrInvalidProduct) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidProduct mentioning %q", err, tt.want)
			}
		})
	}
}

func TestProductsBatch(t *testing.T) {
	t.Parallel()
	c, err := NewCatalog([]Product{product("a", "A", ""), product("b", "B", ""), product("c", "C", "")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Products([]string{"c", "a", "c"})
	if err != nil || !slices.Equal(ids(got), []string{"c", "a"}) {
		t.Fatalf("Products = %v, %v; want [c a] in request order, once each", ids(got), err)
	}
	_, err = c.Products([]string{"a", "nope", "zip"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("err = %v, want ErrNotFound naming nope", err)
	}
}

func TestCatalogHandsOutCopies(t *testing.T) {
	t.Parallel()
	p := product("a", "A", "")
	p.Attributes = map[string]string{"color": "red"}
	c, _ := NewCatalog([]Product{p})
	got, _ := c.Product("a")
	got.Attributes["color"] = "blue"
	got.Categories[0] = "changed"
	again, _ := c.Product("a")
	if again.Attributes["color"] != "red" || again.Categories[0] != "misc" {
		t.Fatal("a caller changed the catalog through a returned product")
	}
}

func TestListPaginationWalksEveryProductOnce(t *testing.T) {
	t.Parallel()
	var products []Product
	for i := range 47 {
		cat := "even"
		if i%2 == 1 {
			cat = "Odd"
		}
		products = append(products, product(fmt.Sprintf("p%02d", i), fmt.Sprintf("Product %02d", i), "", cat))
	}
	c, err := NewCatalog(products)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		category  string
		pageSize  int
		wantTotal int
		wantPages int
	}{
		{"", 0, 47, 3},
		{"", 10, 47, 5},
		{"", 1000, 47, 1},
		{"odd", 5, 23, 5},
		{"EVEN", 24, 24, 1},
		{"none", 5, 0, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.category, tt.pageSize), func(t *testing.T) {
			var seen []string
			token, pages := "", 0
			for {
				page, err := c.List(tt.category, tt.pageSize, token)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if page.TotalSize != tt.wantTotal {
					t.Fatalf("TotalSize = %d, want %d", page.TotalSize, tt.wantTotal)
				}
				seen = append(seen, ids(page.Products)...)
				if token = page.NextPageToken; token == "" {
					break
				}
			}
			if pages != tt.wantPages || len(seen) != tt.wantTotal {
				t.Fatalf("%d pages, %d products; want %d pages, %d products", pages, len(seen), tt.wantPages, tt.wantTotal)
			}
			if !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
				t.Fatalf("products out of order or repeated: %v", seen)
			}
		})
	}
}

func TestPageTokenBoundToQuery(t *testing.T) {
	t.Parallel()
	var products []Product
	for i := range 10 {
		products = append(products, product(fmt.Sprintf("p%d", i), fmt.Sprintf("Lamp %d", i), "", "lighting"))
	}
	c, _ := NewCatalog(products)
	first, err := c.List("", 3, "")
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	tests := []struct {
		name string
		run  func() error
	}{
		{"other category", func() error { _, err := c.List("lighting", 3, first.NextPageToken); return err }},
		{"search with list token", func() error { _, err := c.Search("lamp", 3, first.NextPageToken); return err }},
		{"garbage", func() error { _, err := c.List("", 3, "not-a-token!"); return err }},
		{"truncated", func() error { _, err := c.List("", 3, first.NextPageToken[:5]); return err }},
	}
	for _, tt := range tests {
		if err := tt.run(); !errors.Is(err, ErrInvalidPageToken) {
			t.Errorf("%s: err = %v, want ErrInvalidPageToken", tt.name, err)
		}
	}
	// The same query with another page size keeps working.
	if _, err := c.List("", 5, first.NextPageToken); err != nil {
		t.Errorf("same query, other page size: %v", err)
	}

	s1, _ := c.Search("lamp", 3, "")
	if _, err := c.Search("LAMP ", 3, s1.NextPageToken); err != nil {
		t.Errorf("search token rejected for the same query spelled differently: %v", err)
	}
	if _, err := c.Search("lam", 3, s1.NextPageToken); !errors.Is(err, ErrInvalidPageToken) {
		t.Errorf("search token accepted for another query: %v", err)
	}
}

func TestSearchRanking(t *testing.T) {
	t.Parallel()
	c, err := NewCatalog([]Product{
		product("desc-word", "Kettle", "Pairs well with any teapot or tea set."),
		product("name-sub", "Steamer Basket", "Bamboo, two tiers."),
		product("name-prefix", "Teapot Classic", "Cast iron."),
		product("name-word-b", "Tea Towel", "Linen."),
		product("name-word-a", "Green Tea", "Sencha leaves."),
		product("desc-prefix", "Cup", "For teatime."),
		product("desc-sub", "Spoon", "Stirs a steaming mug."),
		product("none", "Fork", "Stainless."),
		product("category-word", "Kyusu", "Side-handled pot.", "tea"),
		{ID: "attribute-prefix", Name: "Tin", Description: "Airtight.", Categories: []string{"storage"},
			Attributes: map[string]string{"for": "teabags"}, Price: Money{Units: 1000, Currency: "USD"}, WeightGrams: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.Search("TEA", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"name-word-a", "name-word-b", "name-prefix", "name-sub", "category-word", "attribute-prefix", "desc-word", "desc-prefix", "desc-sub"}
	if got := ids(page.Products); !slices.Equal(got, want) {
		t.Fatalf("ranking\n got %v\nwant %v", got, want)
	}
	if page.TotalSize != len(want) {
		t.Errorf("TotalSize = %d, want %d", page.TotalSize, len(want))
	}
}

func TestSearchMatchKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text, q string
		want    matchKind
	}{
		{"green tea", "tea", matchWord},
		{"tea", "tea", matchWord},
		{"teapot", "tea", matchPrefix},
		{"steam tea", "tea", matchWord}, // a later whole-word occurrence wins
		{"steamer", "tea", matchSubstring},
		{"pour-over kettle", "pour-over", matchWord},
		{"french press, 1 l", "french press", matchWord},
		{"café crème", "crème", matchWord},
		{"coffee", "tea", noMatch},
		{"", "tea", noMatch},
	}
	for _, tt := range tests {
		if got := matchIn(tt.text, tt.q); got != tt.want {
			t.Errorf("matchIn(%q, %q) = %v, want %v", tt.text, tt.q, got, tt.want)
		}
	}
}

func TestSearchEmptyQueryMatchesNothing(t *testing.T) {
	t.Parallel()
	c, _ := NewCatalog([]Product{product("a", "A", "")})
	page, err := c.Search("   ", 10, "")
	if err != nil || len(page.Products) != 0 || page.TotalSize != 0 {
		t.Fatalf("got %+v, %v", page, err)
	}
}

func TestCategories(t *testing.T) {
	t.Parallel()
	c, _ := NewCatalog([]Product{
		product("a", "A", "", "Kitchen", "coffee"),
		product("b", "B", "", "coffee"),
		product("c", "C", "", "audio", "Coffee"),
	})
	got := c.Categories()
	want := []Category{{"audio", 1}, {"coffee", 3}, {"Kitchen", 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("Categories = %v, want %v", got, want)
	}
}
