package auth

// CachedTokens reports how many verified tokens v remembers (0 with the cache off).
func CachedTokens(v *Verifier) int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}
