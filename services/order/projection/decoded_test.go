package projection

import (
	"fmt"
	"testing"
)

// Decoded texts give the same value as decoding afresh, stay bounded however many
// texts pass, and a malformed text is an error every time.
func TestDecodedTexts(t *testing.T) {
	d := newDecodedTexts[addressJSON]()
	text := func(i int) string { return fmt.Sprintf(`{"name":"n%d","city":"c"}`, i) }
	for round := range 2 {
		for i := range 3 * decodedGeneration {
			a, err := d.decode(text(i))
			if err != nil || a.Name != fmt.Sprintf("n%d", i) || a.City != "c" {
				t.Fatalf("round %d, text %d: %+v, %v", round, i, a, err)
			}
			if n := len(d.cur) + len(d.prev); n > 2*decodedGeneration {
				t.Fatalf("%d texts remembered, bound is %d", n, 2*decodedGeneration)
			}
		}
	}
	for range 2 {
		if _, err := d.decode(`{"name":`); err == nil {
			t.Fatal("malformed text decoded")
		}
	}
}
