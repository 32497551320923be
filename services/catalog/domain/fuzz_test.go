package domain

import (
	"errors"
	"testing"
)

// A page token comes from the client: any text. Decoding never panics, refuses with
// ErrInvalidPageToken, and an accepted token carries an offset in range that encodes
// back to the same token.
func FuzzCatalogPageToken(f *testing.F) {
	f.Add(encodePageToken(20, 7), uint64(7))
	f.Add(encodePageToken(1<<24+1, 7), uint64(7))
	f.Add("AAAA", uint64(0))
	f.Fuzz(func(t *testing.T, token string, key uint64) {
		offset, err := decodePageToken(token, key)
		if err != nil {
			if !errors.Is(err, ErrInvalidPageToken) {
				t.Fatalf("decodePageToken(%q): %v, not ErrInvalidPageToken", token, err)
			}
			return
		}
		if offset < 0 || offset > 1<<24 {
			t.Fatalf("accepted %q with offset %d out of range", token, offset)
		}
		if again, err := decodePageToken(encodePageToken(offset, key), key); err != nil || again != offset {
			t.Fatalf("offset %d re-encodes to %d, %v", offset, again, err)
		}
	})
}
