package domain

import (
	"fmt"
	"testing"
)

func benchCatalog(b *testing.B, n int) *Catalog {
	b.Helper()
	words := []string{"espresso", "kettle", "grinder", "lamp", "desk", "tent", "stove", "speaker", "book", "chair"}
	products := make([]Product, n)
	for i := range products {
		w := words[i%len(words)]
		products[i] = product(fmt.Sprintf("p-%d", i), fmt.Sprintf("%s model %d", w, i),
			fmt.Sprintf("A sturdy %s with a %s finish, item %d.", w, words[(i+3)%len(words)], i))
	}
	c, err := NewCatalog(products)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{40, 1000} {
		c := benchCatalog(b, n)
		b.Run(fmt.Sprintf("products=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Search("kettle", 20, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkList(b *testing.B) {
	c := benchCatalog(b, 1000)
	first, _ := c.List("", 20, "")
	for b.Loop() {
		if _, err := c.List("", 20, first.NextPageToken); err != nil {
			b.Fatal(err)
		}
	}
}
