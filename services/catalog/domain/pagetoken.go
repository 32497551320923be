package domain

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
)

// A page token is base64url(version | offset | hash of the query). The hash binds a
// token to the query that issued it, so reusing it for another query fails loudly
// instead of silently skipping or repeating products. Tokens are opaque to clients
// but not secret: they carry nothing a client could not compute.
const tokenVersion = 1

const tokenLen = 1 + 4 + 8

func queryKey(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func encodePageToken(offset int, key uint64) string {
	var b [tokenLen]byte
	b[0] = tokenVersion
	binary.BigEndian.PutUint32(b[1:5], uint32(offset))
	binary.BigEndian.PutUint64(b[5:], key)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodePageToken(token string, key uint64) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return 0, fmt.Errorf("%w: malformed", ErrInvalidPageToken)
	}
	if binary.BigEndian.Uint64(b[5:]) != key {
		return 0, fmt.Errorf("%w: issued for a different query", ErrInvalidPageToken)
	}
	offset := binary.BigEndian.Uint32(b[1:5])
	if offset > 1<<24 {
		return 0, fmt.Errorf("%w: offset out of range", ErrInvalidPageToken)
	}
	return int(offset), nil
}
